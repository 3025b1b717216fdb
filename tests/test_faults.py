"""The fault drill: a suite where cases OOM, NaN, time out and crash; the sweep survives.

One run of 12 tiny cases through the local executor: every case ends with exactly one record
carrying the right status; a second run re-runs only the cases that crashed (SIGKILL,
SIGSEGV) and the one whose record was corrupted on disk; a third run runs nothing.
"""

from __future__ import annotations

import json

import pytest

from bench import store
from bench.executors import LocalExecutor
from bench.suite import load

DRILL = """\
description = "fault drill"
pde = "heat"
dim = 1
methods = ["pinn", "spinn"]
steps = 6
timing_samples = 2
eval_points = 32
timeout_s = 120

[method.pinn]
width = 8
depth = 2

[method.spinn]
width = 8
depth = 2
rank = 4

[[matrix]]          # 5 healthy cases; two of them get crashed by the inject hook
n_per_axis = [4, 6]
[[matrix]]
methods = ["pinn"]
n_per_axis = 5

[[matrix]]          # 2 diverging cases: NaN
n_per_axis = 7
method = { pinn = { lr = 1e30 }, spinn = { lr = 1e30 } }

[[matrix]]          # 2 cases that cannot start within a second: timeout
methods = ["pinn"]
n_per_axis = 8
seeds = 2
timeout_s = 1.0

[[matrix]]          # 2 cases over a 20 MB host memory limit: killed by the watchdog, oom
n_per_axis = 9
memory_limit_gb = 0.02

[[matrix]]          # 1 case whose compiled step needs more than the 0.5 GB limit: oom
methods = ["pinn"]
n_per_axis = 600
memory_limit_gb = 0.5
"""


def _files(results):
    return sorted((results / "drill").glob("*.json"))


@pytest.mark.slow
def test_drill(tmp_path, monkeypatch):
    path = tmp_path / "drill.toml"
    path.write_text(DRILL)
    cases = load(str(path)).cases
    assert len(cases) == 12
    by_id = {c.case_id: c for c in cases}
    killed = next(c for c in cases if c.method == "pinn" and c.n_per_axis == 4).case_id
    segv = next(c for c in cases if c.method == "spinn" and c.n_per_axis == 6).case_id
    monkeypatch.setenv("PINNBENCH_INJECT", f"kill@{killed},SIGSEGV@{segv}")
    results = tmp_path / "results"

    state = LocalExecutor().run(cases, results)
    assert not state.stop_requested
    files = _files(results)
    assert sorted(p.stem for p in files) == sorted(by_id)  # exactly one record per case
    recs = {p.stem: json.loads(p.read_text()) for p in files}
    expect = {}
    for cid, c in by_id.items():
        if cid in (killed, segv):
            expect[cid] = "error"
        elif c.method_params.get("lr") == 1e30:
            expect[cid] = "nan"
        elif c.timeout_s == 1.0:
            expect[cid] = "timeout"
        elif c.memory_limit_gb:
            expect[cid] = "oom"
        else:
            expect[cid] = "ok"
    assert {cid: r["status"] for cid, r in recs.items()} == expect
    assert "SIGKILL" in recs[killed]["error"] and recs[killed]["signal"] == "SIGKILL"
    assert "SIGSEGV" in recs[segv]["error"] and recs[segv]["signal"] == "SIGSEGV"
    for cid, r in recs.items():
        m = r["metrics"]
        if r["status"] == "nan":
            # replayed step by step: the first non-finite loss, at or before the chunk end
            assert m["nan_step_exact"] and 1 <= m["nan_step"] <= m["nan_detected_at_step"]
            assert f"step {m['nan_step']}" in r["error"]
        if r["status"] == "oom":  # the size that failed is named
            assert f"n_per_axis={by_id[cid].n_per_axis}" in r["error"]
            assert m["oom_phase"]
        if r["status"] == "timeout":
            assert "1 s timeout" in r["error"]
    big = next(cid for cid, c in by_id.items() if c.n_per_axis == 600)
    small_oom = [cid for cid, c in by_id.items() if c.n_per_axis == 9]
    assert all(recs[cid]["metrics"]["oom_rss_bytes"] > 0.02 * 2**30 for cid in small_oom)
    if "oom_rss_bytes" not in recs[big]["metrics"]:  # not killed first: refused before running
        assert "compiled memory analysis needs" in recs[big]["error"]

    # a half-written record (of a case that times out, so its re-run is quick): quarantined
    # and re-run, never silently dropped
    corrupt = next(cid for cid, s in expect.items() if s == "timeout")
    (results / "drill" / f"{corrupt}.json").write_text('{"case_id": "' + corrupt + '", "stat')
    monkeypatch.delenv("PINNBENCH_INJECT")
    before = {p.name: p.stat().st_mtime_ns for p in _files(results)}
    started = []

    def progress(event, case, rec):
        if event == "start":
            started.append(case.case_id)

    LocalExecutor().run(cases, results, progress=progress)
    assert sorted(started) == sorted([killed, segv, corrupt])
    assert len(list((results / "drill").glob(f"{corrupt}.json.corrupt-*"))) == 1
    after = {p.stem: json.loads(p.read_text()) for p in _files(results)}
    assert sorted(after) == sorted(by_id)
    assert after[killed]["status"] == after[segv]["status"] == "ok"
    assert after[corrupt]["status"] == "timeout"
    untouched = [p for p in _files(results) if p.stem not in (killed, segv, corrupt)]
    assert all(p.stat().st_mtime_ns == before[p.name] for p in untouched)

    # resume is idempotent: nothing left to run, nothing rewritten
    started.clear()
    mtimes = {p.name: p.stat().st_mtime_ns for p in _files(results)}
    LocalExecutor().run(cases, results, progress=progress)
    assert started == []
    assert {p.name: p.stat().st_mtime_ns for p in _files(results)} == mtimes
    assert not list((results / "drill").glob(".*.tmp"))


@pytest.mark.parametrize("status", store.FINAL)
def test_final_statuses_are_skipped_error_is_not(tmp_path, status):
    from bench.executors import to_run
    from bench.suite import Case

    c = Case(suite="s", pde="heat", dim=1, method="pinn", n_per_axis=4, seed=0)
    store.write_record(tmp_path, {"case_id": c.case_id, "suite": "s", "status": status})
    assert to_run(c, tmp_path, resume=True)["status"] == status
    assert to_run(c, tmp_path, resume=False) is None
    store.write_record(tmp_path, {"case_id": c.case_id, "suite": "s", "status": "error"})
    assert to_run(c, tmp_path, resume=True) is None
