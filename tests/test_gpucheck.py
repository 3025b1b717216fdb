"""``python -m bench gpu-check``: the subset and budgets derived from the suites, the time box,
the refusal without CUDA JAX, the limits on what --out holds, and the whole command end to end
on the CPU (``--device cpu --tiny``), so it cannot rot between GPU runs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest

from bench import cli, gpucheck, store
from bench import suite as msuite
from bench.errors import BenchError
from bench.measure import memory

ROOT = Path(__file__).resolve().parents[1]
VERDICTS = ("REPRODUCED", "NOT REPRODUCED", "NOT MEASURABLE HERE")


# -- the plan ------------------------------------------------------------------------------------

def test_spinn_claims_subset_is_derived_from_the_suite():
    suite = msuite.load("spinn-claims", device="gpu")
    plan = {p.suite: p for p in gpucheck.make_plans("gpu", False, gpucheck.TIME_BOX_S)}["spinn-claims"]
    ns = sorted({c.n_per_axis for c in suite.cases})
    small = [n for n in ns if n <= gpucheck.CLAIM_N]
    pdes = {(c.pde, c.dim) for c in suite.cases}
    assert small and max(ns) > gpucheck.CLAIM_N
    want = {(p, m, n) for p in pdes for m in ("pinn", "spinn") for n in small} | {(p, "pinn", max(ns)) for p in pdes}
    got = [((c.pde, c.dim), c.method, c.n_per_axis) for c in plan.all_cases]
    assert sorted(got) == sorted(want) and len(got) == len(want)
    # the claims' size first; the baseline at the largest size, with a few steps only, runs
    # after every other case of the check (a short box is spent on the claims and heat4d first)
    assert all(n == gpucheck.CLAIM_N for _, _, n in got[:2 * len(pdes)])
    big = [c for c in plan.all_cases if c.n_per_axis == max(ns)]
    assert plan.tail == big and all(c.steps == gpucheck.BIG_STEPS for c in big)
    order = [c for _, c in gpucheck.run_order(gpucheck.make_plans("gpu", False, gpucheck.TIME_BOX_S))]
    assert order[-len(big):] == big
    # everything else keeps the suite's configuration (networks, dtype, steps, evaluation)
    by_id = {(c.pde, c.dim, c.method, c.n_per_axis): c for c in suite.cases}
    for c in plan.all_cases:
        orig = by_id[(c.pde, c.dim, c.method, c.n_per_axis)]
        assert (c.method_params, c.dtype, c.eval_points, c.device) == (orig.method_params, orig.dtype,
                                                                       orig.eval_points, "gpu")
        assert c.steps == (gpucheck.BIG_STEPS if c in big else orig.steps)
        assert c.max_seconds == plan.train_s


def test_heat4d_subset_takes_every_other_size_and_the_budget_fits_the_box():
    suite = msuite.load("heat4d-gpu", device="gpu")
    plans = gpucheck.make_plans("gpu", False, gpucheck.TIME_BOX_S)
    plan = {p.suite: p for p in plans}["heat4d-gpu"]
    ladder = sorted({c.n_per_axis for c in suite.cases})
    assert sorted({c.n_per_axis for c in plan.cases}) == ladder[::2]
    assert ladder[0] in ladder[::2] and len(plan.cases) == 2 * len(ladder[::2])
    assert [c.n_per_axis for c in plan.cases] == sorted(c.n_per_axis for c in plan.cases)
    assert all(c.max_seconds <= min(orig.max_seconds for orig in suite.cases) for c in plan.cases)
    # the planned time: tests, every case's fixed cost and budget, the reports, within the box
    n = sum(len(p.all_cases) for p in plans)
    t = plans[0].train_s
    planned = (gpucheck.TESTS_ESTIMATE_S[False] + gpucheck.RESERVE_S[False]
               + n * (gpucheck.CASE_OVERHEAD_S["gpu"] + t))
    assert t >= gpucheck.MIN_CASE_TRAIN_S and planned <= gpucheck.TIME_BOX_S
    # a smaller box gives smaller budgets; case ids depend only on the arguments (resumable)
    small = gpucheck.make_plans("gpu", False, 300.0)
    assert small[0].train_s < t
    again = gpucheck.make_plans("gpu", False, gpucheck.TIME_BOX_S)
    assert [c.case_id for p in again for c in p.all_cases] == [c.case_id for p in plans for c in p.all_cases]


def test_time_box_skips_what_it_has_no_time_for(tmp_path, monkeypatch):
    """No worker starts once the box is spent: the cases are listed as skipped, with why."""
    from bench import executors

    def no_run(*a, **k):
        raise AssertionError("a case was started with the box spent")

    monkeypatch.setattr(executors.LocalExecutor, "run", no_run)
    plans = gpucheck.make_plans("cpu", True, gpucheck.TINY_TIME_BOX_S)
    run = gpucheck.run_plans(plans, tmp_path, time.monotonic() + 1.0, 0.0, True, True, say=lambda s: None)
    n = sum(len(p.all_cases) for p in plans)
    assert len(run.skipped) == n and all("time box" in s["why"] for s in run.skipped)
    assert {s["case_id"] for s in run.skipped} == {c.case_id for p in plans for c in p.all_cases}
    assert not any(run.done.values())


def test_dry_run_prints_the_plan_without_running(capsys, monkeypatch):
    monkeypatch.setattr(gpucheck, "run_gpu_tests", lambda *a: pytest.fail("ran the tests"))
    assert cli.main(["gpu-check", "--device", "cpu", "--dry-run"]) == 0
    out = capsys.readouterr().out
    plans = gpucheck.make_plans("cpu", False, gpucheck.TIME_BOX_S)
    assert all(c.case_id in out for p in plans for c in p.all_cases)
    assert f"{sum(len(p.all_cases) for p in plans)} cases; planned" in out


def test_gpu_test_files_are_those_with_a_gpu_marked_test():
    files = {p.name for p in gpucheck.gpu_test_files()}
    assert "test_nvml.py" in files
    assert "test_workflows.py" not in files  # names the marker in a string only
    assert "test_gpucheck.py" not in files


# -- refusal -------------------------------------------------------------------------------------

@pytest.mark.parametrize("n_gpus,plugin,needle", [
    (1, False, "pip install 'jax[cuda13]==0.10.2'"), (0, True, "no NVIDIA GPU visible")])
def test_gpu_check_refuses_without_cuda_jax_in_one_line(monkeypatch, capsys, n_gpus, plugin, needle):
    monkeypatch.setattr(memory, "nvml_device_count", lambda: n_gpus)
    from bench import devices

    monkeypatch.setattr(devices, "jax_has_cuda", lambda: plugin)
    monkeypatch.setattr(gpucheck, "main", lambda *a: pytest.fail("ran without a usable GPU"))
    assert cli.main(["gpu-check", "--device", "gpu"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("bench: error: --device gpu") and needle in err and err.count("\n") == 1


def test_bad_time_box_is_a_one_line_error(capsys):
    assert cli.main(["gpu-check", "--device", "cpu", "--tiny", "--time-box", "-3"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("bench: error: --time-box") and "-3" in err


# -- what --out holds ------------------------------------------------------------------------------

def test_out_drops_figures_that_break_the_size_limit(tmp_path, monkeypatch):
    rep = tmp_path / "reports"
    (rep / "s-gpu").mkdir(parents=True)
    (rep / "s-gpu.md").write_text("# r\n")
    gpucheck.pack_records([{"case_id": "a", "status": "ok"}], rep / "s-gpu" / "records.jsonl.gz")
    (rep / "s-gpu" / "fig-x.png").write_bytes(os.urandom(5000))
    monkeypatch.setattr(gpucheck, "MAX_FILE_BYTES", 3000)
    data = {"notes": []}
    listing = gpucheck.write_out(tmp_path / "out", rep, {"s": "s-gpu"}, "summary\n", data)
    names = {f["name"] for f in listing}
    assert "figures.tar" not in names and not (tmp_path / "out" / "figures.tar").exists()
    assert "figures left out" in data["notes"][0]
    assert names == {p.name for p in (tmp_path / "out").iterdir()}
    monkeypatch.setattr(gpucheck, "MAX_FILES", 3)
    with pytest.raises(BenchError, match="files"):
        gpucheck.write_out(tmp_path / "out2", rep, {"s": "s-gpu"}, "summary\n", {"notes": []})


# -- end to end on the CPU -------------------------------------------------------------------------

def test_tiny_cpu_run_end_to_end(tmp_path):
    """The command as CI runs it: every stage, the files and their limits, the summary with the
    three claims' verdict lines; then the folder unpacks into reports and records."""
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    # --time-box: a loaded shared machine must not turn cases into skips (the tiny budgets are
    # capped, so the cases and their ids are those of the default box)
    proc = subprocess.run([sys.executable, "-m", "bench", "gpu-check", "--device", "cpu", "--tiny",
                           "--out", str(out), "--time-box", "400"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    files = sorted(out.iterdir())
    assert len(files) <= gpucheck.MAX_FILES and all(f.is_file() for f in files)
    assert all(f.stat().st_size <= gpucheck.MAX_FILE_BYTES for f in files)
    names = {f.name for f in files}
    assert {"gpu-check-summary.txt", "gpu-check.json", "spinn-claims-check-cpu.md", "heat4d-gpu-check-cpu.md",
            "spinn-claims-check-cpu.records.jsonl.gz", "heat4d-gpu-check-cpu.records.jsonl.gz"} <= names
    assert not (tmp_path / "reports").exists() and not (tmp_path / "results").exists()  # --tiny: scratch only

    summary = (out / "gpu-check-summary.txt").read_text()
    assert summary in proc.stdout
    assert len(summary.splitlines()) <= 40 and max(map(len, summary.splitlines())) <= 160
    for label in ("62x wall-clock", "1,394x FLOPs", "29x memory"):
        line = next(ln for ln in summary.splitlines() if ln.strip().startswith(label))
        assert any(v in line for v in VERDICTS), line
    assert "29x memory by definition" in summary and "memory definition that reproduces 29x" in summary
    assert "gpu tests (pytest -m gpu): skipped" in summary  # no GPU here: skipped, not failed

    data = json.loads((out / "gpu-check.json").read_text())
    assert data["tests"]["skipped"] >= 1 and data["tests"]["failures"] == 0
    assert {f["name"] for f in data["files"]} == names
    ids = {c for p in data["plans"] for c in p["cases"]}
    recs = [r for f in files if f.name.endswith(".jsonl.gz") for r in gpucheck.read_packed(f)]
    assert {r["case_id"] for r in recs} | {s["case_id"] for s in data["skipped"]} == ids
    assert not data["skipped"] and {r["status"] for r in recs} == {"ok"}
    for r in recs:
        m = r["metrics"]
        assert m["step_ms"] > 0 and m["xla_total_bytes"] > 0
        assert m["nvml_energy_per_step_j"] is None and m["nvml_energy_reason"].startswith("not a GPU run")
    md = (out / "spinn-claims-check-cpu.md").read_text()
    assert "## Claims" in md and "## GPU check" in md and "NVML over the timed window" in md
    if "figures.tar" in names:
        with tarfile.open(out / "figures.tar") as tf:
            members = tf.getnames()
        assert members and all(len(Path(m).parts) == 2 and m.endswith(".png") for m in members)
        assert all(Path(m).as_posix() in md + (out / "heat4d-gpu-check-cpu.md").read_text() for m in members)

    reports, results = tmp_path / "rep", tmp_path / "res"
    assert cli.main(["gpu-check", "--unpack", str(out), "--reports", str(reports), "--results", str(results)]) == 0
    assert (reports / "spinn-claims-check-cpu.md").read_text() == md
    assert (reports / "spinn-claims-check-cpu" / "records.jsonl.gz").is_file()
    assert {r["case_id"] for r in store.load_records(results)} == {r["case_id"] for r in recs}
