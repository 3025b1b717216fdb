"""Executors: interleaving and rounds, interrupting the parent, submitit against local.

The ``local_smoke`` fixture runs the ``smoke`` suite through ``python -m bench run`` in a
subprocess, interrupts it twice (SIGINT, then SIGTERM after resuming) and resumes to the end;
the submitit test runs the same suite through submitit's local executor and compares.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bench import cli
from bench.executors import LocalExecutor, SubmititExecutor, interleave, make
from bench.suite import load

ROOT = Path(__file__).resolve().parents[1]


def _bench(*args, **kw):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-m", "bench", "run", *args], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kw)


def _records(d: Path) -> dict[str, dict]:
    return {p.stem: json.loads(p.read_text()) for p in sorted(d.glob("*.json"))}


def _interrupt_after_new_record(proc, d: Path, have: int, sig) -> str:
    """Wait until the sweep has written one more record than ``have``, then send ``sig``."""
    deadline = time.monotonic() + 300
    while len(list(d.glob("*.json"))) <= have:
        assert proc.poll() is None, proc.stdout.read()
        assert time.monotonic() < deadline
        time.sleep(0.05)
    proc.send_signal(sig)
    out, _ = proc.communicate(timeout=300)
    return out


@pytest.fixture(scope="module")
def local_smoke(tmp_path_factory):
    results = tmp_path_factory.mktemp("local")
    d = results / "smoke"
    ids = [c.case_id for c in load("smoke").cases]
    runs = []
    out = _interrupt_after_new_record(_bench("--suite", "smoke", "--results", str(results)), d, 0,
                                      signal.SIGINT)
    runs.append((out, _records(d)))
    out = _interrupt_after_new_record(_bench("--suite", "smoke", "--results", str(results)), d,
                                      len(runs[-1][1]), signal.SIGTERM)
    runs.append((out, _records(d)))
    p = _bench("--suite", "smoke", "--results", str(results))
    out, _ = p.communicate(timeout=600)
    runs.append((out, _records(d), p.returncode))
    return results, ids, runs


@pytest.mark.slow
def test_interrupted_sweep_resumes_without_loss_or_duplicates(local_smoke):
    results, ids, runs = local_smoke
    (out1, recs1), (out2, recs2), (out3, recs3, rc3) = runs
    assert "interrupted" in out1 and "interrupted" in out2, (out1, out2)
    # each signal lands while a case runs (a new one starts as soon as a record is written):
    # that case is finished and recorded, and no further case starts
    assert 1 <= len(recs1) <= 2 and len(recs1) < len(recs2) <= len(recs1) + 2
    assert rc3 == 0 and sorted(recs3) == sorted(ids)  # every case, each exactly once
    assert all(r["status"] == "ok" for r in recs3.values())
    # records written before an interruption are kept unchanged, never re-run
    for before in (recs1, recs2):
        for cid, rec in before.items():
            assert recs3[cid] == rec
    started = [line.split()[1] for out in (out1, out2, out3) for line in out.splitlines()
               if line.startswith("[") and " ..." in line]
    assert sorted(started) == sorted(ids)  # each case started once over the three runs
    assert out3.count("already recorded") == len(recs2)
    assert not list((results / "smoke").glob(".*.tmp"))


@pytest.mark.slow
def test_submitit_local_executor_matches_local(local_smoke, tmp_path):
    results, ids, runs = local_smoke
    local = runs[-1][1]
    cases = load("smoke").cases
    ex = SubmititExecutor(cluster="local", max_parallel=2, poll_s=0.2)
    events = []
    state = ex.run(cases, tmp_path, progress=lambda e, c, r: events.append((e, c.case_id)))
    recs = _records(tmp_path / "smoke")
    assert sorted(recs) == sorted(ids) == sorted(local)
    assert {k: r["status"] for k, r in recs.items()} == {k: r["status"] for k, r in local.items()}
    # same cases measured: identical case descriptions and deterministic FLOP counts
    for k, r in recs.items():
        assert r["case"] == local[k]["case"]
        assert r["metrics"]["flops_per_step"] == local[k]["metrics"]["flops_per_step"]
        assert r["runner"]["executor"] == "submitit" and r["runner"]["job_id"]
    assert sorted(c for e, c in events if e == "done") == sorted(ids)
    assert len(state.done) == len(ids)
    assert list((tmp_path / ".submitit").iterdir())  # job logs, outside the records
    # resume through submitit: nothing resubmitted
    events.clear()
    ex.run(cases, tmp_path, progress=lambda e, c, r: events.append((e, c.case_id)))
    assert [e for e, _ in events] == ["skip"] * len(ids)


def test_interleave_alternates_methods_and_rounds():
    cases = load("smoke", rounds=2).cases
    order = interleave(cases)
    assert sorted(c.case_id for c in order) == sorted(c.case_id for c in cases)
    assert [c.method for c in order] == ["pinn", "spinn"] * 4
    assert [c.round for c in order] == [0] * 4 + [1] * 4
    assert [c.n_per_axis for c in order[:4]] == [8, 8, 16, 16]
    r0 = {c.case_id for c in order if c.round == 0}
    assert {c.case_id for c in load("smoke").cases} == r0  # round 0 keeps the plain ids
    assert all(c.case_id.endswith("-r1") for c in order if c.round == 1)


@pytest.mark.parametrize("argv, needle", [
    (["--executor", "ray"], "'ray'"),
    (["--max-parallel", "0"], "--max-parallel"),
    (["--max-parallel", "4"], "local executor"),
    (["--slurm-partition", "gpu"], "--executor submitit"),
    (["--executor", "submitit", "--slurm-partition", "gpu"], "'gpu'"),
    (["--rounds", "0"], "--rounds"),
    (["--rounds", "101"], "101"),
    (["--seeds", "0"], "--seeds"),
    (["--timeout", "-1"], "--timeout"),
    (["--memory-limit", "nan"], "--memory-limit"),
    (["--methods", "nope"], "'nope'"),
    (["--device", "tpu"], "'tpu'"),
])
def test_bad_run_flags_are_one_line_errors_before_any_case(argv, needle, tmp_path, capsys):
    rc = None
    try:
        rc = cli.main(["run", "--suite", "smoke", "--results", str(tmp_path), *argv])
    except SystemExit as e:
        rc = e.code
    err = capsys.readouterr().err
    assert rc == 2 and needle in err and err.count("\n") == 1, err
    assert not list(tmp_path.iterdir())  # nothing ran


def test_make_rejects_unknown_executor():
    from bench.errors import BenchError

    with pytest.raises(BenchError, match="valid: local, submitit"):
        make("dask")
    assert isinstance(make("local"), LocalExecutor)


def test_summary_table_reports_failure_rate_over_seeds_and_rounds():
    from rich.console import Console

    def rec(seed, rnd, status, method="pinn"):
        case = {"pde": "heat", "dim": 1, "method": method, "n_per_axis": 8, "seed": seed, "round": rnd}
        return {"case_id": f"{method}{seed}{rnd}", "suite": "s", "status": status, "case": case,
                "metrics": {"step_ms": 1.0 + seed} if status == "ok" else {}, "size": {"n_points": 64}}

    recs = [rec(0, 0, "ok"), rec(1, 0, "nan"), rec(2, 0, "ok"), rec(0, 1, "oom"),
            rec(0, 0, "ok", "spinn"), rec(1, 0, "ok", "spinn")]
    console = Console(width=250, record=True)
    console.print(cli.summary_table(recs))
    rows = {line.split("│")[2].strip(): line for line in console.export_text().splitlines()
            if line.count("│") > 5}
    assert "2/4" in rows["pinn"] and "nan,ok,oom" in rows["pinn"]
    assert "0/2" in rows["spinn"]
    assert "2" in rows["pinn"].split("│")[5]  # ms/step: median of the ok runs (1 and 3 ms)


def test_summary_table_keeps_variants_of_one_method_apart():
    """causal with its eps schedule and its eps = 0 ablation are two rows, not one pooled median."""
    from rich.console import Console

    def rec(cid, params, step_ms, method="causal"):
        case = {"pde": "advection", "dim": 1, "method": method, "n_per_axis": 8, "seed": 0,
                "method_params": params}
        return {"case_id": cid, "suite": "s", "status": "ok", "case": case,
                "metrics": {"step_ms": step_ms}, "size": {"n_points": 64}}

    recs = [rec("a", {"eps": [1.0, 10.0]}, 2.0), rec("b", {"eps": [0.0]}, 30.0),
            rec("c", {"points": "random"}, 4.0, "spinn-lowrank"),
            rec("d", {"points": "gauss-legendre"}, 5.0, "spinn-lowrank")]
    console = Console(width=250, record=True)
    console.print(cli.summary_table(recs))
    rows = {line.split("│")[2].strip(): line.split("│")[5].strip()
            for line in console.export_text().splitlines() if line.count("│") > 5}
    # labels print as written, not as rich markup ("[points=random]" looks like a style tag)
    assert rows == {"causal [eps=[1.0, 10.0]]": "2", "causal [eps=[0.0]]": "30",
                    "spinn-lowrank [points=random]": "4", "spinn-lowrank [points=gauss-legendre]": "5"}
