"""The micro-benchmarks' one runner: a case through its framework's backend, timed as the worker
times it.

The ``bench_runner`` fixture: ``bench_runner(case, steps_per_call)`` drives ``bench.backends``
as ``bench.worker`` does: ``configure``, ``attach``, ``compile(rec)`` (the XLA memory and cost
analysis, or the torch FLOP count, that the worker records), then inside ``memory_probe``
``init``, ``first_batch`` and one warm-up step (allocation; excluded from the statistics). The
benchmarked callable is one timing chunk of ``bench.loop``: ``bench.measure.timing.run_chunk``,
K = ``steps_per_call`` steps closed by one ``backend.sync``, GC off (pytest-benchmark's timer
knows nothing about asynchronous dispatch; the sync is what makes the chunk's time the
device's). K is fixed per entry, not sized from a measured step time, so a baseline and a later
run time the same amount of work.

``PINNBENCH_BENCH_SLEEP_MS`` (read here only, used by ``tests/test_bench_compare.py``) adds that
many milliseconds to every step of the chunk (one sleep of K x ms inside the benchmarked
callable, after the sync): a crafted slowdown that the ``bench-compare`` tox env must catch.

The framework settings a backend's ``configure`` changes process-wide (JAX matmul precision and
x64, torch threads, matmul precision and TF32) are restored after each test that used the
``bench_runner`` fixture.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

import pytest

SLEEP_ENV = "PINNBENCH_BENCH_SLEEP_MS"


def injected_sleep_s() -> float:
    """The crafted slowdown per step, in seconds (``PINNBENCH_BENCH_SLEEP_MS``; 0 when unset)."""
    raw = os.environ.get(SLEEP_ENV, "").strip()
    if not raw:
        return 0.0
    try:
        ms = float(raw)
    except ValueError:
        raise ValueError(f"{SLEEP_ENV}={raw!r} is not a number of milliseconds") from None
    if ms < 0:
        raise ValueError(f"{SLEEP_ENV}={raw!r} must not be negative")
    return ms / 1e3


def bench_device(framework: str) -> str:
    """The case device a benchmark of ``framework`` runs on here: ``gpu`` where the framework
    sees a CUDA device in this process, else ``cpu``."""
    if framework == "torch":
        import torch

        return "gpu" if torch.cuda.is_available() else "cpu"
    if framework == "jax":
        import jax

        return "gpu" if jax.default_backend() == "gpu" else "cpu"
    return "cpu"


@dataclass
class Prepared:
    """A compiled, warmed-up case: ``chunk()`` is the benchmarked callable."""

    backend: object
    state: object
    batch: object
    steps_per_call: int
    sleep_s: float
    metrics: dict  #: ``rec["metrics"]``: what the worker records at compile time and around the run
    env: dict      #: ``backend.configure()``'s environment facts

    def chunk(self):
        """One timing chunk as ``bench.loop`` times it (``run_chunk``: K steps, one sync, GC
        off), plus the injected sleep."""
        from bench.measure.timing import no_gc, run_chunk

        b = self.backend
        with no_gc():
            self.state, metrics = run_chunk(b.step, b.sync, self.state, self.batch, self.steps_per_call)
        if self.sleep_s:
            time.sleep(self.sleep_s * self.steps_per_call)
        return metrics

    def info(self) -> dict:
        """``extra_info`` of the entry: the recorded metrics, the device, K."""
        from bench.store import json_safe

        return {**json_safe(self.metrics), "device": self.env.get("device_name"),
                "device_platform": self.env.get("device_platform"),
                "torch_num_threads": self.env.get("torch_num_threads"),
                "steps_per_call": self.steps_per_call}

    def record_timing(self, benchmark) -> None:
        """The per-step ms of the benchmark (median chunk time / K) into ``extra_info``
        (``step_ms``, None when pytest-benchmark is disabled and kept no statistics)."""
        stats = getattr(benchmark, "stats", None)
        median = getattr(getattr(stats, "stats", None), "median", None)
        benchmark.extra_info["step_ms"] = (median * 1e3 / self.steps_per_call
                                           if median is not None else None)


def prepare(case, steps_per_call: int, M=None) -> Prepared:
    """``case`` (a ``bench.suite.Case``) built, compiled and warmed up through its backend;
    ``M``: the method already built from it (else built here, as the worker builds it)."""
    import methods
    import pdes
    from bench import backends, record
    from bench.measure.timing import run_chunk

    cls = methods.get(case.method)
    backend = backends.get(cls.framework)(case)
    _save_framework_settings(cls.framework)
    env = backend.configure()
    if M is None:
        M = cls(pdes.build(case.pde, case.dim, **case.pde_params), case.n_per_axis,
                case.method_params, case.dtype)
    backend.attach(M)
    rec = record.skeleton(case, method={})
    backend.compile(rec)
    with backend.memory_probe(rec):
        state, batch = backend.init(), backend.first_batch()
        state, _ = run_chunk(backend.step, backend.sync, state, batch, 1)  # warm-up: allocation
    return Prepared(backend, state, batch, int(steps_per_call), injected_sleep_s(), rec["metrics"], env)


#: restorers of the framework settings ``prepare`` let a backend change (run after each test)
_RESTORE: list = []


def _save_framework_settings(framework: str) -> None:
    """Queue the restore of the settings a backend's ``configure`` sets process-wide (JAX
    matmul precision and x64; torch threads, matmul precision, TF32), read before it runs."""
    import jax

    prec, x64 = jax.config.jax_default_matmul_precision, jax.config.jax_enable_x64

    def jax_back():
        jax.config.update("jax_default_matmul_precision", prec)
        jax.config.update("jax_enable_x64", x64)

    _RESTORE.append(jax_back)
    if framework != "torch":
        return
    import torch

    saved = (torch.get_num_threads(), torch.get_float32_matmul_precision(),
             torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)

    def torch_back():
        torch.set_num_threads(saved[0])
        torch.set_float32_matmul_precision(saved[1])
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved[2:]

    _RESTORE.append(torch_back)


class Runner:
    """What the ``bench_runner`` fixture gives a benchmark: ``runner(case, k, M=None)`` is
    :func:`prepare`, ``runner.device(framework)`` is :func:`bench_device`."""

    def __call__(self, case, steps_per_call: int, M=None) -> Prepared:
        return prepare(case, steps_per_call, M)

    @staticmethod
    def device(framework: str) -> str:
        return bench_device(framework)


@pytest.fixture
def bench_runner():
    """A :class:`Runner`; the framework settings it lets a backend change are restored
    afterwards."""
    yield Runner()
    while _RESTORE:
        _RESTORE.pop()()
