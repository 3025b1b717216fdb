"""Fused steps (case key ``fused_steps``), the harness overhead and the roofline's peak.

Fused and unfused training take the same optimizer steps on the same points: the parameters
after the same number of steps agree to float32 rounding (XLA may fuse the scan body's
arithmetic differently from the single step's, so not bit for bit), with the loop's resampling
schedule unchanged. The worker runs in-process (``bench.worker.run``), as in test_runner.py.
"""

from __future__ import annotations

import json

import jax
import numpy as np
import pytest

import methods
import pdes
from bench import loop, record, worker
from bench.backends.jax import JaxBackend
from bench.measure import peak
from bench.suite import Case, SuiteError, parse

CASES = {  # method -> (pde, dim, n_per_axis, method params)
    "pinn": ("heat", 1, 4, {"width": 8, "depth": 2}),
    "spinn": ("helmholtz", 2, 8, {"width": 8, "depth": 2, "rank": 4}),
}


def _case(method, fused, steps=10, **mp):
    pde, dim, n, params = CASES[method]
    return Case(suite="t", pde=pde, dim=dim, method=method, n_per_axis=n, seed=0, eval_points=32,
                method_params={**params, **mp}, steps=steps, timing_samples=3, fused_steps=fused)


def _backend(case):
    b = JaxBackend(case)
    b.configure()
    M = methods.get(case.method)(pdes.build(case.pde, case.dim), case.n_per_axis, case.method_params)
    b.attach(M)
    rec = {"metrics": {}, "method": {}, "curve": []}
    b.compile(rec)
    return b, M, rec


def _leaves(state):
    return [np.asarray(x, np.float64) for x in jax.tree_util.tree_leaves(state["params"])]


def _close(a, b):
    for x, y in zip(_leaves(a), _leaves(b), strict=True):
        np.testing.assert_allclose(x, y, rtol=2e-4, atol=2e-5)


@pytest.mark.parametrize("method", sorted(CASES))
def test_one_fused_call_is_k_steps_on_the_same_points(method):
    b, _, rec = _backend(_case(method, 5))
    F, fused = b.fused()
    assert F == 5 and fused is not None and rec["metrics"]["fused_compile_s"] > 0
    batch = b.first_batch()
    s1 = b.init()  # a fresh state each time: on a GPU the step donates its input
    for _ in range(F):
        s1, m1 = b.step(s1, batch)
    s2, m2 = fused(b.init(), batch)
    _close(s1, s2)
    assert float(m2["loss"]) == pytest.approx(float(m1["loss"]), rel=1e-5)  # the last step's metrics
    # it did train: the parameters moved by far more than the tolerance
    assert max(np.abs(x - y).max() for x, y in zip(_leaves(b.init()), _leaves(s2))) > 1e-3


@pytest.mark.parametrize("method", sorted(CASES))
def test_fused_and_unfused_training_reach_the_same_parameters(method):
    """23 steps, points redrawn every 7: the fused loop (F = 3) runs whole calls where they fit
    and single steps before a draw or the budget, so both see the same batches."""
    out = {}
    for F in (1, 3):
        case = _case(method, F, steps=23, resample_every=7)
        b, M, rec = _backend(case)
        draws = []

        def resample(done, b=b, draws=draws):
            draws.append(done)
            return b.resample(done)

        r = loop.train(case, M, rec, b.step, b.sync, resample, lambda s: {}, b.init(), b.first_batch(),
                       fused=b.fused())
        out[F] = (r, draws, rec["metrics"])
    (r1, d1, m1), (r3, d3, m3) = out[1], out[3]
    assert r1.done == r3.done == 23 and d1 == d3 == [7, 14, 21]
    _close(r1.state, r3.state)
    assert m3["steps_per_sample"] % 3 == 0 or m3["steps_per_sample"] == 7
    for m in (m1, m3):
        assert 0 <= m["harness_overhead"] < 1 and m["loop_wall_s"] >= m["train_s"]


def test_a_suite_with_fused_steps_runs_end_to_end(tmp_path, monkeypatch):
    monkeypatch.setenv(peak.CACHE_ENV, str(tmp_path / "cache"))
    suite = parse({"pde": "heat", "dim": 1, "methods": ["pinn"], "n_per_axis": 4, "steps": 30,
                   "timing_samples": 3, "eval_points": 32, "fused_steps": 4,
                   "method": {"pinn": {"width": 8, "depth": 2, "resample_every": 10}}}, "fz")
    (case,) = suite.cases
    assert case.fused_steps == 4
    rec = worker.run(case, tmp_path / "r.json")
    m = rec["metrics"]
    assert rec["status"] == "ok" and m["steps_done"] == 30 and m["resamples"] == 2
    assert rec["case"]["fused_steps"] == 4 and m["fused_compile_s"] > 0
    assert m["step_ms"] > 0 and (m["steps_per_sample"] % 4 == 0 or m["steps_per_sample"] == 10)
    row = record.flat(json.loads((tmp_path / "r.json").read_text()))
    assert row["fused_steps"] == 4
    # the roofline: one definition, the record's value is the flat view's
    assert row["achieved_gflops"] == pytest.approx(peak.achieved_gflops(row["flops_per_step"], m["step_ms"]))
    assert m["achieved_gflops"] == pytest.approx(row["achieved_gflops"])
    assert rec["env"]["peak_gflops"] > 0 and not rec["env"]["peak_cached"]
    assert row["peak_fraction"] == pytest.approx(row["achieved_gflops"] / rec["env"]["peak_gflops"])
    assert 0 <= m["harness_overhead"] < 1


def test_fused_steps_default_keeps_case_ids_and_bad_values_are_refused():
    base = {"pde": "heat", "dim": 1, "methods": ["pinn"], "steps": 10}
    ids = {F: parse({**base, "fused_steps": F}, "t").cases[0].case_id for F in (1, 2)}
    assert ids[1] == parse(base, "t").cases[0].case_id != ids[2]
    with pytest.raises(SuiteError, match="fused_steps = 0 must be positive|'fused_steps' = 0 must be positive"):
        parse({**base, "fused_steps": 0}, "t")
    with pytest.raises(SuiteError, match="more than resample_every = 5"):
        parse({**base, "fused_steps": 6, "method": {"pinn": {"resample_every": 5}}}, "t")
    with pytest.raises(SuiteError, match="torch backend runs one call per step"):
        parse({**base, "methods": ["pinn-torch"], "fused_steps": 2}, "t")


def test_achieved_gflops_and_peak_fraction():
    assert peak.achieved_gflops(2e9, 1000.0) == pytest.approx(2.0)  # 2 GFLOP in 1 s
    assert peak.achieved_gflops(2e6, 0.5) == pytest.approx(4.0)
    assert peak.achieved_gflops(None, 1.0) is None and peak.achieved_gflops(1e9, 0) is None
    assert peak.peak_fraction(5.0, 20.0) == pytest.approx(0.25) and peak.peak_fraction(5.0, None) is None
    # an old record (no peak in env) still gets its achieved GFLOP/s, with the loop correction
    r = peak.roofline({"flops_per_step": 1e9, "step_ms": 10.0}, {"flops_correction": 1e9}, {})
    assert r == {"achieved_gflops": pytest.approx(200.0), "peak_fraction": None}


class _FakeBackend:
    name = "fake"

    def __init__(self):
        self.calls = []

    def matmul_program(self, n, dtype):
        self.calls.append(n)
        return lambda: n

    def sync(self, out):
        pass


def test_peak_is_measured_once_per_fingerprint_and_cached(tmp_path, monkeypatch):
    monkeypatch.setenv(peak.CACHE_ENV, str(tmp_path))
    monkeypatch.delenv(peak.SWITCH_ENV, raising=False)
    env = {"hostname": "h", "cpu_model": "c", "cpu_affinity": 2, "device_name": "CPU: c (2 cores)"}
    b = _FakeBackend()
    first = peak.device_peak(b, env, "float32", "highest", "cpu")
    assert first["peak_gflops"] > 0 and not first["peak_cached"] and b.calls
    assert b.calls[0] == peak.SIZES["cpu"][0]
    n = len(b.calls)
    again = peak.device_peak(b, env, "float32", "highest", "cpu")
    assert again["peak_cached"] and again["peak_gflops"] == first["peak_gflops"] and len(b.calls) == n
    other = peak.device_peak(b, {**env, "cpu_affinity": 1}, "float32", "highest", "cpu")
    assert not other["peak_cached"] and len(b.calls) > n  # another fingerprint: measured again
    assert set(json.loads((tmp_path / "peak.json").read_text())) == {first["peak_key"], other["peak_key"]}
    monkeypatch.setenv(peak.SWITCH_ENV, "off")
    assert peak.device_peak(b, env, "float32", "highest", "cpu")["peak_gflops"] is None


def test_a_peak_measured_on_a_busy_machine_is_measured_again_when_quiet(tmp_path, monkeypatch):
    monkeypatch.setenv(peak.CACHE_ENV, str(tmp_path))
    monkeypatch.delenv(peak.SWITCH_ENV, raising=False)
    env = {"hostname": "h", "cpu_model": "c", "cpu_affinity": 2, "device_name": "d"}
    assert peak.stale({"loadavg": 3.0}, 2, 1.0) and not peak.stale({"loadavg": 3.0}, 2, 2.0)
    assert not peak.stale({"loadavg": 0.5}, 2, 0.0)  # measured quiet: kept
    key = peak.fingerprint(env, "fake", "float32", "highest")
    (tmp_path / "peak.json").write_text(json.dumps({key: {"gflops": 1e30, "loadavg": 1e9}}))
    b = _FakeBackend()
    got = peak.device_peak(b, env, "float32", "highest", "cpu")
    assert b.calls and not got["peak_cached"]  # busy entry, quieter now: measured again
    assert got["peak_gflops"] == 1e30  # ... and the higher of the two rates is kept
