"""Wall-clock timing of already-compiled steps.

One sample = K consecutive steps closed by one device synchronisation (sub-ms steps are
dispatch-bound, so K > 1); the per-step time of a sample is its time / K. Samples are reported
as median and inter-quartile range (REFERENCES.md 4.1). GC is disabled inside the window and
the clock is ``time.perf_counter_ns``.
"""

from __future__ import annotations

import gc
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


def chunk_plan(steps: int, samples: int) -> list[int]:
    """Split ``steps`` training steps (after the first) into ``samples`` timed chunks.

    Chunks have equal length K = (steps - 1) // samples (at least 1); the remainder runs as a
    last, untimed-for-statistics chunk. With fewer steps than samples every step is a sample.
    """
    rest = max(steps - 1, 0)
    if rest == 0:
        return []
    k = max(1, rest // max(samples, 1))
    n = rest // k
    plan = [k] * n
    if rest - k * n:
        plan.append(rest - k * n)
    return plan


class Timer:
    def __enter__(self):
        self.t0 = time.perf_counter_ns()
        return self

    def __exit__(self, *exc):
        self.ns = time.perf_counter_ns() - self.t0
        self.s = self.ns / 1e9
        self.ms = self.ns / 1e6
        return False
