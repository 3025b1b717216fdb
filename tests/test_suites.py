"""The SPINN-paper suites and spinn-claims: they parse, hold the paper's configurations and
ladders, show up in `bench list`, and each one's smallest case runs end to end through
`python -m bench run` (a tiny copy of it with 2 steps). A 3-d PINN at N = 128 ends as `oom`
from the compiled memory analysis, before anything runs.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

import methods
import pdes
from bench.suite import available_suites, load

ROOT = Path(__file__).resolve().parents[1]
PAPER_SUITES = {  # suite -> (pde, dim), SPINN paper S1-S7 (REFERENCES.md 1.1)
    "diffusion3d": ("diffusion", 2), "helmholtz3d": ("helmholtz", 3),
    "klein-gordon3d": ("klein-gordon", 2), "klein-gordon4d": ("klein-gordon", 3),
    "navier-stokes3d": ("navier-stokes", 2), "navier-stokes4d": ("navier-stokes", 3),
    "flow-mixing3d": ("flow-mixing", 2),
}
CLAIMS = ("spinn-claims", "spinn-claims-cpu")
NEW_SUITES = [*PAPER_SUITES, *(f"{s}-gpu" for s in PAPER_SUITES), *CLAIMS]


def n_points(case) -> int:
    return case.n_per_axis ** pdes.build(case.pde, case.dim, **case.pde_params).n_in


def ladder(suite, method):
    return sorted({c.n_per_axis for c in suite.cases if c.method == method})


@pytest.mark.parametrize("name", NEW_SUITES)
def test_suite_parses_with_both_methods(name):
    s = load(name)
    assert set(s.methods) == {"pinn", "spinn"}
    base = name.removesuffix("-gpu")
    if base in PAPER_SUITES:
        assert {(c.pde, c.dim) for c in s.cases} == {PAPER_SUITES[base]}
    assert all(c.dtype == "float32" for c in s.cases)


@pytest.mark.parametrize("name", [s for s in PAPER_SUITES if s.endswith("3d") and "navier" not in s])
def test_gpu_siblings_hold_the_paper_ladder(name):
    cpu, gpu = load(name), load(f"{name}-gpu")
    assert ladder(gpu, "spinn") == [16, 32, 64, 128, 256]
    assert ladder(gpu, "pinn") == [16, 32, 64, 128]  # 128: the oom case of the paper's figures
    assert max(ladder(cpu, "pinn")) <= 16 and max(ladder(cpu, "spinn")) <= 64


def test_claims_suites_use_the_paper_configs():
    gpu, cpu = load("spinn-claims"), load("spinn-claims-cpu")
    for s in (gpu, cpu):
        assert {(c.pde, c.dim) for c in s.cases} == {("diffusion", 2), ("helmholtz", 3),
                                                     ("klein-gordon", 2)}
        for c in s.cases:
            M = methods.get(c.method)(pdes.build(c.pde, c.dim), 4, c.method_params)
            import jax

            d = M.n_params(jax.eval_shape(M.init, jax.random.PRNGKey(0)))
            assert d == (50_177 if c.method == "pinn" else 44_832), (c.method, d)
            assert c.dtype == "float32"
        # every spinn size has a pinn partner at the same pde, dim, n_per_axis where pinn runs
        pairs = {(c.pde, c.dim, c.n_per_axis) for c in s.cases if c.method == "pinn"}
        assert pairs <= {(c.pde, c.dim, c.n_per_axis) for c in s.cases if c.method == "spinn"}
    assert ladder(gpu, "pinn") == ladder(gpu, "spinn") == [16, 32, 64, 128]
    assert ladder(cpu, "pinn") == [16, 32] and 64 in ladder(cpu, "spinn")


def test_bench_list_shows_every_pde_with_dims_and_every_suite():
    out = subprocess.run([sys.executable, "-m", "bench", "list"], cwd=ROOT, capture_output=True,
                         text=True, timeout=300, check=True).stdout
    for name in available_suites():
        assert f"  {name} " in out and "INVALID" not in out
    lines = {ln.split()[0]: ln for ln in out.splitlines() if ln.startswith("  ")}
    for name in pdes.REGISTRY.names():
        cls = pdes.get(name)
        dims = "any" if cls.dims is None else ",".join(map(str, cls.dims))
        assert f"dims {dims}" in lines[name], lines.get(name)


# -- end to end ---------------------------------------------------------------------------------
def toml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{json.dumps(k)} = {toml_value(x)}" for k, x in v.items()) + "}"
    raise TypeError(v)


def tiny_suite(cases, path: Path, **top) -> Path:
    """A suite file with one [[matrix]] entry per case, 2 steps each."""
    lines = [f"{k} = {toml_value(v)}" for k, v in
             {"description": "tiny copy", "methods": ["pinn"], "steps": 2, "timing_samples": 1,
              "eval_points": 64, "timeout_s": 600, **top}.items()]
    for c in cases:
        entry = {"pde": c.pde, "dim": c.dim, "pde_params": c.pde_params, "methods": [c.method],
                 "n_per_axis": c.n_per_axis, "dtype": c.dtype, "precision": c.precision,
                 "method": {c.method: c.method_params}}
        lines += ["", "[[matrix]]"] + [f"{k} = {toml_value(v)}" for k, v in entry.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


def run_cli(suite: Path, results: Path, cache: Path):
    env = {**os.environ, "PINNBENCH_CACHE": str(cache)}
    p = subprocess.run([sys.executable, "-m", "bench", "run", "--suite", str(suite), "--results",
                        str(results), "--device", "cpu"], cwd=ROOT, env=env, capture_output=True,
                       text=True, timeout=1500)
    assert p.returncode == 0, p.stderr[-2000:]
    return [json.loads(f.read_text()) for f in sorted((results / suite.stem).glob("*.json"))]


def smallest_case(name):
    """The suite's case with the fewest collocation points (ties: spinn, the paper's method)."""
    return min(load(name).cases, key=lambda c: (n_points(c), c.method != "spinn", c.n_per_axis))


# The GPU siblings are not run here: they hold the same PDEs, networks and parameters as the
# CPU suites (test_gpu_siblings_share_the_cpu_suites_configs), so the CPU run covers their code
# paths; only their sizes differ, and sizes that do not fit are `oom` by the compiled estimate
# (test_pinn_at_n128_in_3d_ends_as_oom_before_running).
CPU_SUITES = [*PAPER_SUITES, "spinn-claims-cpu"]


def check_smallest_cases_end_to_end(names, tmp_path):
    wanted = {name: smallest_case(name) for name in names}
    key = lambda c: (c.pde, c.dim, c.method, c.n_per_axis,  # noqa: E731
                     json.dumps(c.method_params, sort_keys=True))
    unique = list({key(c): c for c in wanted.values()}.values())
    recs = run_cli(tiny_suite(unique, tmp_path / "tiny.toml"), tmp_path / "res", tmp_path / "cache")
    assert len(recs) == len(unique)
    by_key = {key(pdes_case(r)): r for r in recs}
    for name, c in wanted.items():
        r = by_key[key(c)]
        m = r["metrics"]
        assert r["status"] == "ok", (name, r.get("error"))
        assert r["size"]["n_points"] == n_points(c)
        assert r["size"]["n_points_kind"] == {"pinn": "random", "spinn": "grid"}[c.method]
        assert m["steps_done"] == 2 and m["flops_per_step"] > 0 and m["xla_temp_bytes"] > 0
        assert math.isfinite(m["rel_l2"]) and m["rel_l2"] > 0
        if c.pde == "navier-stokes":  # multi-output: mean of the component errors
            comps = [m[f"rel_l2_c{i}"] for i in range(c.dim)]
            assert m["rel_l2"] == pytest.approx(sum(comps) / c.dim)
            assert r["pde"]["n_out"] == c.dim
    return recs


def pdes_case(rec):
    from bench.suite import Case

    return Case.from_dict(rec["case"])


@pytest.mark.slow
def test_cpu_suites_run_their_smallest_case_end_to_end(tmp_path):
    recs = check_smallest_cases_end_to_end(CPU_SUITES, tmp_path)
    assert {r["case"]["pde"] for r in recs} == {p for p, _ in PAPER_SUITES.values()}


@pytest.mark.parametrize("name", [s for s in PAPER_SUITES])
def test_gpu_siblings_share_the_cpu_suites_configs(name):
    """So the CPU suite's end-to-end run covers the sibling's PDE and networks."""
    cfg = lambda s: {(c.pde, c.dim, c.method, json.dumps(c.method_params, sort_keys=True),  # noqa: E731
                      json.dumps(c.pde_params, sort_keys=True)) for c in load(s).cases}
    assert cfg(name) == cfg(f"{name}-gpu")


def test_pinn_at_n128_in_3d_ends_as_oom_before_running(tmp_path):
    """~91 GiB of XLA temp (REFERENCES.md 4.6): compiled, checked, never executed."""
    import psutil

    if psutil.virtual_memory().available > 80 * 2**30:
        pytest.skip("this host has enough memory that the case would really run")
    case = next(c for c in load("klein-gordon3d-gpu").cases if c.method == "pinn" and c.n_per_axis == 128)
    recs = run_cli(tiny_suite([case], tmp_path / "oom.toml"), tmp_path / "res", tmp_path / "cache")
    (r,) = recs
    m = r["metrics"]
    assert r["status"] == "oom", r.get("error")
    assert "not run" in r["error"] and m["oom_phase"] == "compiled"
    assert m["xla_temp_bytes"] > 60 * 2**30 and m["xla_total_bytes"] > m["memory_available_bytes"]
    assert m.get("steps_done") is None and m.get("first_step_s") is None
