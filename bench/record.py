"""The one record type: what a case's run leaves in ``results/<suite>/<case_id>.json``.

Written (partially, after every phase) by the worker, completed by the runner, written by the
executors through ``bench.store``, read by the reports. :func:`skeleton` is the only place a
record is started; the field names are the JSON keys of the committed records (unchanged).
:func:`flat` is the one flat view of a record: the export (``bench.store.flatten``) orders it,
the reports (``bench.report.tables.record_row``) add their reading of partial records and the
non-scalar parts (timing samples, curve).
"""

from __future__ import annotations

import time
from typing import Any, TypedDict


class Record(TypedDict, total=False):
    schema: int                     #: ``bench.store.SCHEMA_VERSION`` (added when written)
    case_id: str                    #: ``Case.case_id``: stable across runs, the file name
    suite: str
    case: dict[str, Any]            #: ``Case.to_dict()``: every case key
    status: str                     #: ok | oom | nan | timeout | error (``store.FINAL`` are final)
    error: str | None               #: one line, None when ok
    phase: str                      #: start | compile | compiled | first_step | train | done
    metrics: dict[str, Any]         #: the measured quantities (see README "What is measured")
    memory_sources: dict[str, str]  #: what each memory metric is, per backend
    curve: list[dict[str, Any]]     #: training curve points (step, train_s, loss, errors)
    env: dict[str, Any]             #: host, framework and device facts
    started: str
    pde: dict[str, Any]             #: ``PDE.describe()``
    method: dict[str, Any]          #: name, params, framework, points_kind, ``describe()``, n_params
    size: dict[str, Any]            #: n_per_axis and ``Method.size_info()``
    runner: dict[str, Any]          #: returncode, wall_s, timeout, executor, job id, ...
    traceback: str                  #: on a worker exception
    signal: str                     #: the signal that killed the worker


def skeleton(case, error: str = "worker did not finish", **fields) -> Record:
    """A new record of ``case``: status ``error`` with ``error`` until something better is
    known, empty metrics, curve and env, plus ``fields``."""
    rec: Record = {"case_id": case.case_id, "suite": case.suite, "case": case.to_dict(),
                   "status": "error", "error": error, "phase": "start",
                   "metrics": {}, "curve": [], "env": {}}
    rec.update(fields)  # type: ignore[typeddict-item]
    return rec


def now() -> str:
    """The records' timestamp format."""
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


def flat(rec: dict) -> dict:
    """The flat scalar fields of a record: identity and status, the exported case keys
    (``bench.case.export_columns``), size, device name, parameter count, git commit, the FLOPs
    every report shows (``bench.measure.xla.step_flops``: the compiler's count plus the method's
    loop correction; the raw count as ``flops_per_step_xla``), the roofline
    (``bench.measure.peak.roofline``: ``achieved_gflops``, ``peak_fraction``, ``peak_gflops``;
    computed, so a record older than them has achieved GFLOP/s but no peak), then every scalar
    metric."""
    from bench.case import export_columns
    from bench.measure.peak import roofline
    from bench.measure.xla import step_flops

    case = rec.get("case", {})
    m = rec.get("metrics", {}) or {}
    env = rec.get("env", {}) or {}
    size = rec.get("size", {}) or {}
    row = {
        "suite": rec.get("suite"), "case_id": rec.get("case_id"), **export_columns(case),
        "n_points": size.get("n_points"), "n_points_kind": size.get("n_points_kind"),
        "device_name": env.get("device_name"), "status": rec.get("status"),
        "error": rec.get("error"), "n_params": (rec.get("method") or {}).get("n_params"),
        "git_commit": env.get("git_commit"),
    }
    flops, calls = step_flops(m, rec.get("method"))
    row.update(flops_per_step=flops, flops_per_step_xla=m.get("flops_per_step"),
               flops_uncounted_calls=", ".join(calls))
    row.update(roofline(m, rec.get("method"), env), peak_gflops=env.get("peak_gflops"))
    for k, v in m.items():
        if not isinstance(v, (list, dict)):
            row.setdefault(k, v)
    return row
