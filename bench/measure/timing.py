"""Wall-clock timing of already-compiled programs: the one clock of the harness.

One sample = K consecutive steps closed by one device synchronisation (sub-ms steps are
dispatch-bound, so K > 1): :func:`run_chunk` runs such a chunk, and ``bench.loop`` (the
reported ``step_ms``) and the pytest-benchmark micro-benchmarks (``tests/benchmarks``) both
time it; the per-step time of a sample is its time / K. With fused steps (case key
``fused_steps = F``) the chunk's K steps are K / F compiled calls of F steps each
(``run_chunk``'s ``fused``): the per-step time is still the chunk's time / K, the dispatch
of F - 1 calls saved. Samples are reported as median and inter-quartile range (REFERENCES.md 4.1).
:func:`time_calls` times a program that is not a training step (a method's
``inference_programs``): the median of single synchronised calls. GC is disabled inside the
window and the clock is ``time.perf_counter_ns``.
"""

from __future__ import annotations

import gc
import math
import time
from contextlib import contextmanager

import numpy as np


@contextmanager
def no_gc():
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def summarize(samples_ms) -> dict:
    """Median, IQR, min and count of per-step samples in ms (None when there are none)."""
    a = np.asarray(list(samples_ms), float)
    if a.size == 0:
        return {"step_ms": None, "step_ms_iqr": None, "step_ms_min": None, "n_samples": 0}
    q1, med, q3 = np.percentile(a, [25, 50, 75])
    return {"step_ms": float(med), "step_ms_iqr": float(q3 - q1), "step_ms_min": float(a.min()),
            "n_samples": int(a.size)}


def chunk_size(steps_left: int, samples: int, est_step_s: float, target_s: float = 0.2) -> int:
    """Steps per timed sample: enough for about ``target_s`` of work (sub-ms steps are
    dispatch-bound, so they need many), but small enough that ``steps_left`` still gives
    ``samples`` samples. At least 1.
    """
    by_time = max(1, math.ceil(target_s / max(est_step_s, 1e-9)))
    by_steps = max(1, steps_left // max(samples, 1))
    return max(1, min(by_time, by_steps))


def run_chunk(step, sync, state, batch, k: int, fused=None, per_call: int = 1):
    """One timing sample: ``k`` optimizer steps, each on the state the previous one returned,
    then one ``sync((state, metrics))``. Returns the last ``(state, metrics)``. ``step(state,
    batch) -> (state, metrics)`` is one step; with ``fused`` (``fused(state, batch)`` runs
    ``per_call`` steps in one compiled call and returns the last step's metrics), the chunk is
    ``k // per_call`` fused calls, then the ``k % per_call`` remaining steps one call each. The
    caller holds the clock (and ``no_gc``) around it."""
    metrics = None
    blocks, rest = divmod(k, per_call) if fused is not None and per_call > 1 else (0, k)
    for _ in range(blocks):
        state, metrics = fused(state, batch)
    for _ in range(rest):
        state, metrics = step(state, batch)
    sync((state, metrics))
    return state, metrics


def time_calls(fn, sync, repeats: int, warmup: int = 1) -> float:
    """Median wall time in ms of ``repeats`` calls of ``fn()``, each closed by ``sync(out)``,
    after ``warmup`` untimed calls (first-call allocation); GC off inside each timed call."""
    for _ in range(warmup):
        sync(fn())
    ts = []
    for _ in range(max(1, int(repeats))):
        with no_gc(), Timer() as t:
            sync(fn())
        ts.append(t.ms)
    return float(np.median(ts))


class Timer:
    def __enter__(self):
        self.t0 = time.perf_counter_ns()
        return self

    def __exit__(self, *exc):
        self.ns = time.perf_counter_ns() - self.t0
        self.s = self.ns / 1e9
        self.ms = self.ns / 1e6
        return False
