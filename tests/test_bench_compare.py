"""The tox ``bench`` and ``bench-compare`` envs, run for real (their commands read from tox.ini).

1. ``bench`` writes a pytest-benchmark JSON whose entries carry the XLA memory and FLOPs in
   ``extra_info``, and autosaves the run to the storage. (The table itself, one entry per
   registered method and size, is ``tests/benchmarks``, run in the default test run; only one
   entry is run here, to keep the three extra processes to one compile each.)
2. ``bench-compare`` against that saved run passes for the same code, and fails once a crafted
   slowdown (``PINNBENCH_BENCH_SLEEP_MS``: that many ms per step, slept inside the benchmarked
   callable, one K-step timing chunk) is injected.

The commands come from tox.ini with tox's substitutions applied here (so the test checks the envs
CI uses, without building tox virtualenvs). To keep the pass/fail separation far outside the
noise of a shared 2-core machine, the baseline and the unmodified run carry the same 10 ms pad
per step and the slowed run 100 ms, against a 150% median threshold: a false failure needs the
step to slow down ~10x between two runs a few seconds apart.
"""

from __future__ import annotations

import configparser
import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

SLEEP_ENV = "PINNBENCH_BENCH_SLEEP_MS"  # read by tests/benchmarks/conftest.py only
ROOT = Path(__file__).resolve().parents[1]
PAD_MS, SLOW_MS, THRESHOLD = 10, 100, 150
ONE = "[pinn-small]"  # the -k selection of the compare runs (brackets: not spinn-small)


def tox_commands(env: str, values: dict[str, str], posargs: list[str]) -> list[list[str]]:
    """``commands`` of ``[testenv:env]`` in tox.ini with {tox_root}, {env:X[:default]} and
    {posargs} substituted like tox does (only the forms tox.ini uses)."""
    cfg = configparser.ConfigParser(interpolation=None)
    cfg.read(ROOT / "tox.ini")
    raw = cfg.get(f"testenv:{env}", "commands")
    raw = raw.replace("\\\n", " ").replace("{tox_root}", str(ROOT))
    pattern = re.compile(r"\{env:(\w+)(?::([^{}]*))?\}")

    def sub(m):
        if m.group(1) in values:
            return values[m.group(1)]
        if m.group(2) is None:
            raise KeyError(f"tox.ini [testenv:{env}] needs ${m.group(1)}")
        return m.group(2)

    while pattern.search(raw):
        raw = pattern.sub(sub, raw)
    cmds = []
    for line in filter(None, (ln.strip() for ln in raw.splitlines())):
        argv = shlex.split(line.replace("{posargs}", "\0"))
        out = []
        for a in argv:
            out += posargs if a == "\0" else [a]
        if out[0] == "python":
            out[0] = sys.executable
        cmds.append(out)
    return cmds


def run_env(env: str, values: dict, posargs: list[str], sleep_ms: float):
    (cmd,) = tox_commands(env, values, posargs)
    # a fresh pytest, not one of this run's xdist workers (pytest-benchmark turns itself off
    # in a process that looks like an xdist worker)
    e = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_XDIST", "PYTEST_CURRENT"))}
    e[SLEEP_ENV] = str(sleep_ms)
    e["PYTHONPATH"] = str(ROOT) + os.pathsep + e.get("PYTHONPATH", "")
    return subprocess.run(cmd, cwd=ROOT, env=e, capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def baseline(tmp_path_factory):
    """One `tox -e bench` run (of the compare runs' selection) into a fresh storage."""
    tmp = tmp_path_factory.mktemp("bench")
    values = {"BENCH_STORAGE": str(tmp / "storage"), "BENCH_JSON": str(tmp / "bench.json")}
    out = run_env("bench", values, ["-p", "no:cacheprovider", "-k", ONE, "--benchmark-min-rounds=15",
                                    "--benchmark-max-time=0.05"], PAD_MS)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-2000:]
    return tmp, values, json.loads((tmp / "bench.json").read_text())


@pytest.mark.slow
def test_bench_env_writes_json_with_memory_and_flops_and_autosaves(baseline):
    tmp, values, data = baseline
    (b,) = data["benchmarks"]
    info = b["extra_info"]
    assert b["name"] == "test_step[pinn-small]"
    assert (info["method"], info["size"], info["framework"]) == ("pinn", "small", "jax")
    assert info["n_points"] == info["n_per_axis"] ** 3  # (2+1)-d heat, one point per grid cell
    assert info["xla_temp_bytes"] > 0 and info["xla_total_bytes"] > info["xla_temp_bytes"]
    assert info["flops_per_step"] > 0
    assert b["stats"]["rounds"] >= 15
    assert b["stats"]["median"] >= PAD_MS / 1e3  # the pad is inside the timed callable
    assert info["steps_per_call"] >= 1 and info["step_ms"] >= PAD_MS  # per step: median / K
    saved = list(Path(values["BENCH_STORAGE"]).glob("*/0001_*.json"))
    assert len(saved) == 1, "--benchmark-autosave wrote no run to the storage"
    assert json.loads(saved[0].read_text())["benchmarks"][0]["name"] == b["name"]


def _compare(baseline, sleep_ms):
    tmp, values, _ = baseline
    values = {**values, "BENCH_THRESHOLD": str(THRESHOLD), "BENCH_JSON": str(tmp / "compare.json")}
    return run_env("bench-compare", values, ["-p", "no:cacheprovider", "-k", ONE,
                                             "--benchmark-min-rounds=15"], sleep_ms)


@pytest.mark.slow
def test_compare_env_passes_unmodified_code(baseline):
    out = _compare(baseline, PAD_MS)
    text = out.stdout + out.stderr
    assert out.returncode == 0, text[-4000:]
    assert "Comparing against benchmarks from" in text
    assert "Performance has regressed" not in text


@pytest.mark.slow
def test_compare_env_fails_on_a_crafted_slowdown(baseline):
    out = _compare(baseline, SLOW_MS)
    text = out.stdout + out.stderr
    assert out.returncode != 0, text[-4000:]
    m = re.search(r"test_step\[pinn-small\] \(0001_\w*\) - Field 'median' has failed "
                  r"PercentageRegressionCheck: ([\d.]+) > ([\d.]+)", text)
    assert m, text[-4000:]
    assert float(m.group(2)) == THRESHOLD  # the env's threshold reached pytest-benchmark
    assert float(m.group(1)) > THRESHOLD
