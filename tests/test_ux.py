"""At the keyboard: live progress (terminal and pipe), dry-run estimates, CLI conventions,
plugins (methods and PDEs from outside the repository), tidy exports, the Python API."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pytest
from rich.console import Console

from bench import api, cli
from bench.estimate import Estimate, estimate_cases
from bench.progress import HEARTBEAT_S, RunProgress, fmt_duration
from bench.suite import load

ROOT = Path(__file__).resolve().parents[1]
TINY = """description = "tiny"
pde = "heat"
dim = 1
methods = ["pinn"]
n_per_axis = [8]
steps = 400
timing_samples = 3
eval_points = 64
[method.pinn]
width = 8
depth = 1
"""


class Clock:
    def __init__(self):
        self.t = 0.0

    def __call__(self):
        return self.t


def _cases(n=2):
    return load("smoke").cases[:n]


def _rec(case, status="ok", step_ms=1.0):
    return {"case_id": case.case_id, "suite": case.suite, "status": status, "case": case.to_dict(),
            "metrics": {"step_ms": step_ms, "rel_l2": 0.1, "xla_temp_bytes": 1024}, "error": None}


# -- progress ---------------------------------------------------------------------------------
def test_progress_on_a_terminal_shows_phase_step_loss_budget_and_eta():
    buf, clock = io.StringIO(), Clock()
    console = Console(file=buf, force_terminal=True, width=160, color_system=None)
    cases = _cases()
    est = {c.case_id: Estimate(10.0, "flops") for c in cases}
    p = RunProgress(console, cases, est, clock=clock)
    assert p.live
    p("start", cases[0], None)
    clock.t = 4.0
    p.tick(cases[0], {"phase": "train", "step": 120, "steps": 400, "loss": 0.0321, "train_s": 3.5,
                      "max_seconds": 60.0, "wall_s": 4.0})
    p._bar.refresh()
    shown = buf.getvalue()
    assert "train" in shown and "step 120/400" in shown and "loss 0.0321" in shown
    assert "train 3.5 s / 60 s" in shown
    assert p.eta() == pytest.approx(6.0 + 10.0)  # this case's remainder plus the next one
    assert "ETA 0:16" in shown and "0/2" in shown
    clock.t = 20.0  # it took twice its estimate: the next one's ETA scales with that
    p("done", cases[0], _rec(cases[0]))
    assert p.eta() == pytest.approx(20.0)
    p.close()
    assert "[1/2]" in buf.getvalue() and "ok" in buf.getvalue()


def test_progress_in_a_pipe_is_plain_lines_with_elapsed_eta_and_a_heartbeat():
    buf, clock = io.StringIO(), Clock()
    console = Console(file=buf, force_terminal=False, width=200)
    cases = _cases()
    p = RunProgress(console, cases, {c.case_id: Estimate(5.0, "record") for c in cases}, clock=clock)
    assert not p.live
    p("start", cases[0], None)
    clock.t = 1.0
    p.tick(cases[0], {"phase": "train", "step": 3, "steps": 400, "loss": 1.0, "train_s": 0.5})
    assert "step 3/400" not in buf.getvalue()  # no chatter before the heartbeat interval
    clock.t = HEARTBEAT_S + 2
    p.tick(cases[0], {"phase": "train", "step": 300, "steps": 400, "loss": 0.5, "train_s": 50.0})
    p("done", cases[0], _rec(cases[0]))
    p("skip", cases[1], _rec(cases[1]))
    lines = buf.getvalue().splitlines()
    assert "\x1b[" not in buf.getvalue()  # no terminal control codes in a log
    assert lines[0].startswith(f"[1/2] {cases[0].case_id} ...")
    assert any("step 300/400" in ln and "ETA" in ln for ln in lines)
    assert any(ln.startswith(f"{cases[0].case_id}: ok") and "elapsed 1:02" in ln for ln in lines)
    assert lines[-1] == f"[2/2] {cases[1].case_id} already recorded (ok), skipped"


def test_runner_feeds_live_progress_from_the_worker(tmp_path):
    from bench.runner import RunState, run_case

    suite = tmp_path / "tiny.toml"
    suite.write_text(TINY.replace("steps = 400", "steps = 3000"))
    (case,) = load(str(suite)).cases
    ticks = []
    rec = run_case(case, RunState(on_tick=lambda c, info: ticks.append(info)))
    assert rec["status"] == "ok"
    assert ticks and all(t["wall_s"] >= 0 for t in ticks)
    train = [t for t in ticks if t["phase"] == "train"]
    assert train, [t["phase"] for t in ticks]
    assert all(0 < t["step"] <= 3000 and t["steps"] == 3000 and t["loss"] > 0 for t in train)
    assert [t["step"] for t in train] == sorted(t["step"] for t in train)


def test_fmt_duration():
    assert [fmt_duration(s) for s in (0, 7.4, 185, 3723, None)] == ["0:00", "0:07", "3:05", "1:02:03", "?"]


# -- dry-run estimates ------------------------------------------------------------------------
def test_dry_run_prints_a_positive_estimate_per_case_and_a_total(tmp_path, capsys):
    rc = cli.main(["run", "--suite", "smoke", "--results", str(tmp_path), "--dry-run", "--device", "cpu"])
    out = capsys.readouterr().out.splitlines()
    assert rc == 0
    cases = load("smoke").cases
    rows = [ln for ln in out if "estimate ~" in ln]
    assert len(rows) == len(cases)
    assert all("(flops (lower bound))" in ln or "(budget)" in ln for ln in rows)
    assert "estimated total ~" in out[-1] and "estimates, not measurements" in out[-1]
    assert not list(tmp_path.iterdir())  # nothing ran, nothing written


def test_estimates_prefer_an_earlier_record_of_the_case_and_cap_at_the_budget(tmp_path):
    from dataclasses import replace

    cases = _cases()
    rec = {**_rec(cases[0]), "runner": {"wall_s": 42.0}}
    d = tmp_path / cases[0].suite
    d.mkdir()
    (d / f"{cases[0].case_id}.json").write_text(json.dumps(rec))
    capped = replace(cases[1], max_seconds=3.0, steps=10**9)
    est = estimate_cases([capped], tmp_path / "none", flops=False)
    assert est[capped.case_id].source == "budget" and est[capped.case_id].seconds > 3.0
    est = estimate_cases([cases[0]], tmp_path, flops=False)
    assert est[cases[0].case_id] == Estimate(42.0, "record")


# -- CLI conventions --------------------------------------------------------------------------
@pytest.mark.parametrize("argv, needle", [
    (["run", "--suite", "smoke", "--devic", "cpu"], "--devic"),
    (["run", "--suite", "smoke", "--method", "pinn"], "--method"),
    (["export", "--res", "x"], "--res"),
    (["export", "--what", "rows"], "'rows'"),
])
def test_abbreviations_and_bad_choices_are_one_line_errors(argv, needle, capsys):
    with pytest.raises(SystemExit) as e:
        cli.main(argv)
    err = capsys.readouterr().err
    assert e.value.code == 2 and needle in err and err.count("\n") == 1, err


def test_version(capsys):
    with pytest.raises(SystemExit) as e:
        cli.main(["--version"])
    from bench import __version__

    assert e.value.code == 0 and capsys.readouterr().out.startswith(f"pinnbench {__version__}")


# -- plugins ----------------------------------------------------------------------------------
PLUGIN = '''
"""A tiny out-of-tree pinnbench plugin: one PDE and one method."""
from methods.pinn import Pinn
from pdes.heat import Heat


class PlugHeat(Heat):
    name = "plug-heat"
    description = "heat equation, registered by a plugin"


class PlugPinn(Pinn):
    name = "plug-pinn"
    description = "vanilla PINN, registered by a plugin"
'''


def test_plugin_method_and_pde_run_through_a_suite_end_to_end(tmp_path):
    site = tmp_path / "site"
    (site / "pbplug").mkdir(parents=True)
    (site / "pbplug" / "__init__.py").write_text(PLUGIN)
    dist = site / "pbplug-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: pbplug\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(textwrap.dedent("""\
        [pinnbench.methods]
        plug-pinn = pbplug:PlugPinn

        [pinnbench.pdes]
        plug-heat = pbplug:PlugHeat
        """))
    suite = tmp_path / "plug.toml"
    suite.write_text(TINY.replace('pde = "heat"', 'pde = "plug-heat"').replace('["pinn"]', '["plug-pinn"]')
                     .replace("[method.pinn]", "[method.plug-pinn]"))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), str(ROOT)])}
    listed = subprocess.run([sys.executable, "-m", "bench", "list"], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=300)
    assert "plug-pinn" in listed.stdout and "plug-heat" in listed.stdout, listed.stderr
    p = subprocess.run([sys.executable, "-m", "bench", "run", "--suite", str(suite), "--results",
                        str(tmp_path / "r"), "--device", "cpu"], cwd=tmp_path, env=env,
                       capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stdout + p.stderr
    (rec,) = [json.loads(f.read_text()) for f in (tmp_path / "r" / "plug").glob("*.json")]
    assert rec["status"] == "ok" and rec["case"]["method"] == "plug-pinn" and rec["case"]["pde"] == "plug-heat"
    assert rec["metrics"]["steps_done"] == 400


# -- exports ----------------------------------------------------------------------------------
def _records_on(device_name, nvml, curve_len):
    out = []
    for c in _cases():
        r = _rec(c)
        r["metrics"]["nvml_peak_bytes"] = nvml
        r["env"] = {"device_name": device_name, "versions": {"jax": "0.10.2"}, "git_commit": "abc",
                    "loadavg": [1.5, 1.0, 0.5], "cpu_model": "x", "cpu_count": 2}
        r["curve"] = [{"step": i + 1, "train_s": 0.1 * i, "loss": 1.0 / (i + 1)} for i in range(curve_len)]
        r["curve"][-1]["rel_l2"] = 0.2
        out.append(r)
    return out


def test_cases_export_has_env_columns_and_stable_dtypes_across_machines():
    cpu = api.frame(_records_on("CPU: x", None, 3), "cases")
    gpu = api.frame(_records_on("H200", 2**30, 3), "cases")
    for col in ("jax_version", "device_name", "cpu_model", "loadavg_1m", "git_commit"):
        assert col in cpu.columns
    assert cpu["jax_version"].iloc[0] == "0.10.2" and cpu["loadavg_1m"].iloc[0] == 1.5
    assert cpu["nvml_peak_bytes"].dtype == "float64"  # empty everywhere, still not object
    both = pd.concat([cpu, gpu], ignore_index=True)
    assert not [c for c in both.columns if pd.api.types.is_object_dtype(both[c])], both.dtypes
    assert str(both["status"].dtype) == "string" and str(both["n_per_axis"].dtype) == "Int64"


def test_curves_export_is_long_format_one_row_per_point(tmp_path):
    recs = _records_on("CPU: x", None, 4)
    df = api.frame(recs, "curves")
    assert len(df) == sum(len(r["curve"]) for r in recs)
    assert list(df.columns[:4]) == ["suite", "case_id", "pde", "dim"]
    assert df.groupby("case_id")["step"].apply(list).tolist() == [[1, 2, 3, 4]] * 2
    assert df["rel_l2"].notna().sum() == 2 and df["rel_l2"].dtype == "float64"
    env = api.frame(recs, "env")
    assert len(env) == 2 and set(env["jax_version"]) == {"0.10.2"}


@pytest.mark.parametrize("what", ["cases", "curves", "env"])
def test_export_command_writes_each_table(what, tmp_path):
    d = tmp_path / "res" / "smoke"
    d.mkdir(parents=True)
    for r in _records_on("CPU: x", None, 3):
        (d / f"{r['case_id']}.json").write_text(json.dumps(r))
    out = tmp_path / f"{what}.parquet"
    assert cli.main(["export", "--results", str(tmp_path / "res"), "--what", what, "--format", "parquet",
                     "-o", str(out)]) == 0
    df = pd.read_parquet(out)
    assert len(df) == {"cases": 2, "curves": 6, "env": 2}[what]


# -- the Python API ---------------------------------------------------------------------------
def test_api_plans_runs_and_loads_a_suite(tmp_path):
    suite = tmp_path / "tiny.toml"
    suite.write_text(TINY)
    s, ex, cases, est = api.plan(str(suite), results=tmp_path / "r", device="cpu")
    assert len(cases) == 1 and est[cases[0].case_id].seconds > 0
    recs = api.run(str(suite), results=tmp_path / "r", device="cpu", progress=False)
    assert [r["status"] for r in recs] == ["ok"]
    df = api.results(tmp_path / "r", suite="tiny")
    assert list(df["case_id"]) == [cases[0].case_id] and df["steps_done"].iloc[0] == 400
    # resuming: nothing re-runs
    f = tmp_path / "r" / "tiny" / f"{cases[0].case_id}.json"
    mtime = f.stat().st_mtime_ns
    again = api.run(str(suite), results=tmp_path / "r", device="cpu", progress=False)
    assert [r["case_id"] for r in again] == [r["case_id"] for r in recs]
    assert again[0]["metrics"]["step_ms"] == recs[0]["metrics"]["step_ms"] and f.stat().st_mtime_ns == mtime
    with pytest.raises(Exception, match="seeds must be a positive integer"):
        api.plan(str(suite), seeds=0)
    with pytest.raises(Exception, match="'rows' is not valid"):
        api.results(tmp_path / "r", what="rows")
