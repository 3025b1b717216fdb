"""Wall-clock timing of already-compiled steps.

One sample = K consecutive steps closed by one device synchronisation (sub-ms steps are
dispatch-bound, so K > 1); the per-step time of a sample is its time / K. Samples are reported
as median and inter-quartile range (REFERENCES.md 4.1). GC is disabled inside the window and
the clock is ``time.perf_counter_ns``.
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


class Timer:
    def __enter__(self):
        self.t0 = time.perf_counter_ns()
        return self

    def __exit__(self, *exc):
        self.ns = time.perf_counter_ns() - self.t0
        self.s = self.ns / 1e9
        self.ms = self.ns / 1e6
        return False
