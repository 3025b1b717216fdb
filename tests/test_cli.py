"""End to end through the CLI: run, export, resume, a killed worker, bad input."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]

TINY = """
description = "two tiny cases"
pde = "heat"
dim = 1
methods = ["pinn", "spinn"]
n_per_axis = [6]
steps = 6
timing_samples = 2
eval_points = 64
timeout_s = 120
[method.pinn]
width = 8
depth = 1
[method.spinn]
width = 8
depth = 1
rank = 4
"""


def bench(*args, env=None, check=False):
    e = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    p = subprocess.run([sys.executable, "-m", "bench", *args], cwd=ROOT, env=e, capture_output=True,
                       text=True, timeout=600)
    if check and p.returncode != 0:
        raise AssertionError(f"bench {args} failed ({p.returncode}):\n{p.stdout}\n{p.stderr}")
    return p


@pytest.fixture(scope="module")
def smoke(smoke_run):
    """The session's one real smoke run (tests/conftest.py): (results dir, process)."""
    cwd, p = smoke_run
    return cwd / "results", p


@pytest.mark.slow
def test_smoke_runs_end_to_end_and_records_every_case(smoke):
    results, p = smoke
    recs = [json.loads(f.read_text()) for f in sorted((results / "smoke").glob("*.json"))]
    assert len(recs) == 4
    assert {r["status"] for r in recs} == {"ok"}
    for r in recs:
        m = r["metrics"]
        assert m["step_ms"] > 0 and m["n_samples"] >= 3
        assert m["xla_temp_bytes"] > 0 and m["flops_per_step"] > 0
        assert m["compile_s"] > 0 and m["peak_rss_bytes"] > 50 * 2**20
        assert 0 < m["rel_l2"] < 10
        assert m["nvml_peak_bytes"] is None and "NVML" in r["memory_sources"]["nvml_peak_bytes"]
        assert r["size"]["n_points"] == r["case"]["n_per_axis"] ** 2
        assert r["size"]["n_points_kind"] == {"pinn": "random", "spinn": "grid"}[r["case"]["method"]]
        assert r["env"]["versions"]["jax"] and r["env"]["cpu_model"] is not None
        assert r["curve"][0]["step"] == 1 and r["curve"][-1]["step"] == r["case"]["steps"]
    assert "summary" in p.stdout and "records:" in p.stdout


@pytest.mark.slow
def test_export_rows_equal_the_records(smoke, tmp_path):
    results, _ = smoke
    out = tmp_path / "x.csv"
    bench("export", "--results", str(results), "-o", str(out), check=True)
    df = pd.read_csv(out)
    need = ["suite", "case_id", "pde", "dim", "method", "n_per_axis", "n_points", "seed", "steps", "status",
            "step_ms", "step_ms_iqr", "compile_s", "xla_temp_bytes", "flops_per_step", "peak_rss_bytes",
            "nvml_peak_bytes", "device_peak_bytes", "rel_l2"]
    assert set(need) <= set(df.columns)
    assert len(df) == 4
    for _, row in df.iterrows():
        rec = json.loads((results / "smoke" / f"{row.case_id}.json").read_text())
        assert row.step_ms == pytest.approx(rec["metrics"]["step_ms"])
        assert row.rel_l2 == pytest.approx(rec["metrics"]["rel_l2"])
        assert pd.isna(row.nvml_peak_bytes)  # not available on CPU: empty, never 0
    pq = tmp_path / "x.parquet"
    bench("export", "--results", str(results), "--format", "parquet", "-o", str(pq), check=True)
    assert len(pd.read_parquet(pq)) == 4


@pytest.mark.slow
def test_rerun_skips_recorded_cases(smoke):
    results, _ = smoke
    files = sorted((results / "smoke").glob("*.json"))
    before = {f: f.stat().st_mtime_ns for f in files}
    p = bench("run", "--suite", "smoke", "--results", str(results), "--device", "cpu", check=True)
    assert p.stdout.count("skipped") == 4
    assert {f: f.stat().st_mtime_ns for f in files} == before


@pytest.mark.slow
def test_killed_worker_becomes_an_error_record_and_the_suite_goes_on(tmp_path):
    suite = tmp_path / "tiny.toml"
    suite.write_text(TINY)
    p = bench("run", "--suite", str(suite), "--results", str(tmp_path / "r"), "--device", "cpu",
              env={"PINNBENCH_INJECT": "kill@-pinn-"})
    assert p.returncode == 0, p.stderr
    recs = {r["case"]["method"]: r for r in
            (json.loads(f.read_text()) for f in (tmp_path / "r" / "tiny").glob("*.json"))}
    assert recs["pinn"]["status"] == "error" and "SIGKILL" in recs["pinn"]["error"]
    # what was measured before the kill (the compiled step's analysis) is kept
    assert recs["pinn"]["metrics"]["xla_temp_bytes"] > 0
    assert recs["spinn"]["status"] == "ok"
    # a rerun retries only the crashed case
    p = bench("run", "--suite", str(suite), "--results", str(tmp_path / "r"), "--device", "cpu", check=True)
    assert p.stdout.count("skipped") == 1
    rec = json.loads(next((tmp_path / "r" / "tiny").glob("*pinn*.json")).read_text())
    assert rec["status"] == "ok"


@pytest.mark.parametrize("args, needle", [
    (["run", "--suite", "nosuch"], "'nosuch'"),
    (["run", "--suite", "smoke", "--methods", "pinn,foo"], "'foo'"),
    (["run", "--suite", "smoke", "--seeds", "0"], "--seeds"),
    (["run", "--suite", "smoke", "--device", "tpu"], "'tpu'"),
    (["frobnicate"], "'frobnicate'"),
    (["export", "--format", "xls"], "'xls'"),
])
def test_bad_input_gives_one_line_error_and_exit_2(args, needle):
    p = bench(*args)
    assert p.returncode == 2
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1, p.stderr
    assert needle in lines[0]
    assert "valid" in lines[0] or "choose from" in lines[0] or "positive" in lines[0]


@pytest.mark.parametrize("text, needle", [
    ("pde = 'heat'\nmethods = ['pinn']\nn_per_axis = [4, 0]\n", "must be positive"),
    ("pde = 'heat'\nmethods = ['pinn']\nbogus = 1\n", "'bogus'"),
    ("pde = 'heat\nmethods = ['pinn']\n", "malformed TOML"),
    ("pde = 'wave'\nmethods = ['pinn']\n", "'wave'"),
])
def test_bad_suite_file_gives_one_line_error(tmp_path, text, needle):
    f = tmp_path / "bad.toml"
    f.write_text(text)
    p = bench("run", "--suite", str(f), "--dry-run")
    assert p.returncode == 2
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0], p.stderr


def test_list_names_every_suite_method_and_pde():
    import methods
    import pdes
    from bench.suite import available_suites
    from methods import optim

    out = bench("list", check=True).stdout
    for name in list(available_suites()) + methods.REGISTRY.names() + pdes.REGISTRY.names():
        assert f"  {name} " in out
    assert "INVALID" not in out
    # every optimizer with the (non-preset) methods that take it
    lines = {ln.split()[0]: ln for ln in out.splitlines() if ln.startswith("  ")}
    for name in optim.OPTIMIZERS:
        takers = [n for n in methods.REGISTRY.names() if methods.get(n).preset_of is None
                  and name in methods.get(n).optimizers()]
        assert name in lines and ", ".join(takers) in lines[name], name
    assert "pinn-fl" in lines["kfac"] and " pinn," not in lines["kfac"]


# -- which device a run uses -----------------------------------------------------------------------

@pytest.fixture
def gpu_machine(monkeypatch):
    """resolve_device on a pretend machine: (GPUs NVML sees, whether JAX has its CUDA plugin)."""
    from bench import devices
    from bench.measure import memory

    def set_(n_gpus: int, jax_cuda: bool):
        monkeypatch.setattr(memory, "nvml_device_count", lambda: n_gpus)
        monkeypatch.setattr(devices, "jax_has_cuda", lambda: jax_cuda)
        return devices

    return set_


@pytest.mark.parametrize("n,plugin,frameworks,want", [
    (0, False, {"jax"}, "cpu"), (0, True, {"jax"}, "cpu"),
    (1, True, {"jax"}, "gpu"), (2, True, {"jax", "torch"}, "gpu"),
    (1, False, {"torch"}, "gpu"),            # torch-only suite: JAX's build does not matter
])
def test_auto_device(gpu_machine, capsys, n, plugin, frameworks, want):
    assert gpu_machine(n, plugin).resolve_device("auto", frameworks) == want
    assert capsys.readouterr().err == ""


def test_auto_device_falls_back_to_cpu_and_says_why(gpu_machine, capsys):
    """A GPU that JAX cannot use: the run goes on the CPU (not as failed GPU cases), with a note."""
    assert gpu_machine(1, False).resolve_device("auto", {"jax"}) == "cpu"
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no CUDA plugin" in err and "running on the cpu" in err


@pytest.mark.parametrize("n,plugin,needle", [(0, True, "no NVIDIA GPU visible"),
                                             (1, False, "JAX has no CUDA plugin")])
def test_explicit_gpu_that_cannot_work_is_a_one_line_error(gpu_machine, n, plugin, needle):
    from bench.errors import BenchError

    cli = gpu_machine(n, plugin)
    with pytest.raises(BenchError, match=needle) as e:
        cli.resolve_device("gpu", {"jax"})
    assert "\n" not in str(e.value) and "valid here: cpu, auto" in str(e.value)
    assert cli.resolve_device("cpu", {"jax"}) == "cpu"


def test_jax_cuda_plugin_is_found_without_importing_jax_backends(tmp_path, monkeypatch):
    from bench import cli

    if cli.jax_has_cuda():
        pytest.skip("a CUDA plugin of JAX is installed here: nothing to find")
    monkeypatch.setattr(sys, "path", [p for p in sys.path])
    (tmp_path / "jax_cuda12_plugin").mkdir()
    (tmp_path / "jax_cuda12_plugin" / "__init__.py").write_text("raise RuntimeError('must not be imported')\n")
    sys.path.insert(0, str(tmp_path))
    assert cli.jax_has_cuda() is True
