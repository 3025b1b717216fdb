"""Budgets (steps, wall clock, target error), the exact NaN step, and the runner's record.

The budget tests run the worker in-process (``bench.worker.run``): the same code path as a
worker process, without paying a JAX start per case.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bench import worker
from bench.suite import Case

TINY = dict(suite="t", pde="heat", dim=1, n_per_axis=4, seed=0, eval_points=32,
            method_params={"width": 8, "depth": 2})


def _run(tmp_path: Path, **kw) -> dict:
    case = Case(**{**TINY, "method": "pinn", **kw})
    return worker.run(case, tmp_path / f"{case.case_id}.json")


def test_step_budget(tmp_path):
    r = _run(tmp_path, steps=7, timing_samples=3)
    m = r["metrics"]
    assert r["status"] == "ok" and m["stop_reason"] == "steps"
    assert m["steps_done"] == 7 == r["curve"][-1]["step"]
    assert m.get("time_to_target_s") is None


def test_wall_clock_budget_stops_after_first_chunk(tmp_path):
    r = _run(tmp_path, steps=10, timing_samples=5, max_seconds=1e-9)
    m = r["metrics"]
    assert r["status"] == "ok" and m["stop_reason"] == "max_seconds"
    # steps 1 and 2, one timed chunk of steps_per_sample steps, then the budget is spent
    assert m["steps_done"] == 2 + m["steps_per_sample"] < 10  # steps 1 and 2 run alone
    assert m["train_s"] >= 1e-9


def test_target_error_records_time_to_target(tmp_path):
    ref = _run(tmp_path, steps=6, timing_samples=3)
    first_eval = next(p for p in ref["curve"] if p["step"] > 1 and "rel_l2" in p)
    # a target that the first evaluated chunk already meets (its error, from the plain run)
    r = _run(tmp_path, steps=6, timing_samples=3, target_rel_l2=first_eval["rel_l2"] * (1 + 1e-6))
    m = r["metrics"]
    assert r["status"] == "ok" and m["stop_reason"] == "target"
    assert m["steps_to_target"] == first_eval["step"]
    assert 0 < m["time_to_target_s"] == pytest.approx(m["train_s"])
    # without a target (the reference run) no time-to-target is invented
    assert ref["metrics"]["stop_reason"] == "steps" and ref["metrics"].get("time_to_target_s") is None


def test_nan_step_is_the_step_it_appeared(tmp_path):
    bad = {"width": 8, "depth": 2, "lr": 1e30}
    chunked = _run(tmp_path, steps=10, timing_samples=2, method_params=bad)
    stepwise = _run(tmp_path, steps=10, timing_samples=10, method_params=bad)  # 1-step chunks
    for r in (chunked, stepwise):
        assert r["status"] == "nan" and r["metrics"]["nan_step_exact"]
    # the step-by-step run sees the loss after every step: its detection step is the truth
    assert stepwise["metrics"]["steps_per_sample"] == 1
    assert stepwise["metrics"]["nan_detected_at_step"] == stepwise["metrics"]["nan_step"]
    assert chunked["metrics"]["nan_step"] == stepwise["metrics"]["nan_step"]
    assert chunked["metrics"]["nan_detected_at_step"] >= chunked["metrics"]["nan_step"]


def test_points_are_redrawn_exactly_every_resample_every_steps(tmp_path):
    """resample_every = 3 draws at steps 3, 6, 9 whatever the chunk length the timing picked
    (1 or 3 steps here); resampling is timed as its own phase."""
    params = {"width": 8, "depth": 2, "resample_every": 3}
    for samples in (10, 2):  # chunks of 1 step, or chunks capped at 3 steps
        r = _run(tmp_path, steps=12, timing_samples=samples, method_params=params)
        m = r["metrics"]
        assert m["steps_per_sample"] <= 3
        assert m["resamples"] == 3 and m["resample_interval_mean"] == 3 and m["resample_s"] > 0
        assert m["step_ms_samples"] and m["steps_done"] == 12
    never = _run(tmp_path, steps=6, timing_samples=3, method_params={"width": 8, "depth": 2,
                                                                      "resample_every": 0})["metrics"]
    assert never["resamples"] == 0 and never["resample_interval_mean"] is None
    assert never["resample_s"] == 0


def test_nan_replay_draws_the_batches_of_the_timed_run():
    """The loop (any chunk length) and the NaN replay draw new points at the same steps: a
    fake step whose loss is NaN on the batch drawn at step 6 is located at step 7."""
    from types import SimpleNamespace

    import jax
    import jax.numpy as jnp

    from bench import loop

    k_sample = jax.random.PRNGKey(1)
    bad = jax.random.fold_in(k_sample, 6)

    def step(state, batch):
        return state + 1, {"loss": jnp.nan if bool(jnp.all(batch == bad)) else 1.0}

    draws = {}
    for samples in (1, 4, 20):
        case = SimpleNamespace(steps=20, timing_samples=samples, max_seconds=0, eval_every=0,
                               target_rel_l2=0)
        M = SimpleNamespace(params={"resample_every": 3}, curve_keys=())
        at = []

        def resample(done):
            at.append(done)
            return jax.random.fold_in(k_sample, done)

        rec = {"metrics": {}, "curve": []}
        r = loop.train(case, M, rec, step, lambda t: t, resample, lambda st: {}, 0, k_sample)
        assert r.stop == "nan" and r.done >= 7 and at[:2] == [3, 6]
        draws[samples] = at
    assert len({tuple(v) for v in draws.values()}) == 1  # same schedule whatever the chunks
    found = worker.locate_nan(step, lambda: 0, lambda: k_sample, lambda d: jax.random.fold_in(k_sample, d), 3, 20)
    assert found == 7
