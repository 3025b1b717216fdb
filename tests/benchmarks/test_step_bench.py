"""Micro-benchmarks: one timing chunk of every registered method at two sizes.

The table walks ``methods.REGISTRY`` at collection time, so a newly registered method is
benchmarked without editing this file. Each entry is a ``bench.suite.Case`` run through its
framework's backend (``bench.backends``, chosen by the method's ``framework``) exactly as the
worker runs it (``conftest.prepare``: configure, attach, compile, init, first batch, one warm-up
step); the benchmarked callable is one timing chunk of ``bench.loop``, K steps closed by one
``backend.sync`` (``bench.measure.timing.run_chunk``), so ``tox -e bench-compare`` gates the
quantity the reports show as ``step_ms`` (per-step time of a K-step chunk), times K.

Benchmark settings live here, not on the method classes: ``BENCH_SETTINGS`` maps a method
class (subclasses inherit the entry) to any of

* ``pde = (name, dim, params)``: the PDE to benchmark on (e.g. a parametric PDE for an
  operator method); default ``("heat", 2, {})``;
* ``sizes = {"small": n, "medium": n}``: ``n_per_axis`` per size; default 4 and 8;
* ``params = {...}``: method parameters for the benchmark; default the method's defaults;
* ``steps_per_call = K``: steps per benchmarked call; default ``STEPS_PER_CALL`` (10).

``extra_info`` of every entry: method, framework, size, n_per_axis, n_points, pde, dim, dtype,
params, device, ``steps_per_call`` (K) and ``step_ms`` (median call time / K; None with
``--benchmark-disable``), and the metrics the worker records at compile time and around the run
(``rec["metrics"]``): ``xla_temp_bytes`` / ``xla_total_bytes`` (XLA memory analysis of the
compiled step), ``flops_per_step`` (XLA cost analysis by ``bench.measure.xla``, or the torch
backend's FLOP count ``bench.backends.torch.count_flops``), ``lower_s``/``compile_s``, and the
device allocator peak where the backend has one (``device_peak_bytes``; None on the CPU).

``PINNBENCH_BENCH_SLEEP_MS`` (``conftest.injected_sleep_s``) adds that many milliseconds to
every step of the benchmarked chunk: the crafted slowdown ``tests/test_bench_compare.py`` checks
that ``bench-compare`` catches.

Run: ``python -m pytest tests/benchmarks --benchmark-only`` (statistics) or with
``--benchmark-disable`` (each chunk once, as CI on the CPU does); see ``tox.ini``.
"""

from __future__ import annotations

import math

import pytest

import methods
import pdes
from bench.backends import BACKENDS
from bench.suite import Case

DEFAULT_PDE = ("heat", 2, {})
DEFAULT_SIZES = {"small": 4, "medium": 8}
SIZES = tuple(DEFAULT_SIZES)
SEED = 0
#: steps per benchmarked call (one timing chunk) unless an entry sets its own
STEPS_PER_CALL = 10

#: per method class (subclasses inherit): pde / sizes / params of its benchmark
BENCH_SETTINGS: dict[type, dict] = {
    # an operator method is benchmarked on a parametric PDE (modes per axis)
    methods.nsm.Nsm: {"pde": ("nsm-poisson", 2, {"n_test": 8}), "sizes": {"small": 8, "medium": 16},
                      "params": {"width": 32, "depth": 2, "batch": 8}},
}


def bench_config(mcls) -> tuple[tuple[str, int, dict], dict[str, int], dict, int]:
    """(pde spec, sizes, params, steps per call) the benchmark uses for method class ``mcls``."""
    settings = next((BENCH_SETTINGS[c] for c in mcls.__mro__ if c in BENCH_SETTINGS), {})
    name, dim, params = settings.get("pde") or DEFAULT_PDE
    sizes = {**DEFAULT_SIZES, **settings.get("sizes", {})}
    return ((name, int(dim), dict(params)), sizes, dict(settings.get("params", {})),
            int(settings.get("steps_per_call", STEPS_PER_CALL)))


def bench_case(method: str, size: str, device: str = "cpu") -> Case:
    """The ``bench.suite.Case`` of one entry (seed 0, float32, the suite defaults otherwise)."""
    mcls = methods.get(method)
    (pde_name, dim, pde_params), sizes, params, _ = bench_config(mcls)
    return Case(suite="benchmarks", pde=pde_name, dim=dim, method=method, n_per_axis=sizes[size],
                seed=SEED, dtype="float32", device=device,
                pde_params=pde_params, method_params=params)


def _table():
    for name in methods.REGISTRY.names():
        for size in SIZES:
            yield pytest.param(name, size, id=f"{name}-{size}")


def test_every_registered_method_has_a_benchmark_entry():
    """The table has one runnable entry per registered method and size: a method that cannot
    run the shared PDE must name one it can (``BENCH_SETTINGS``), or its entries would be skips."""
    missing = []
    for name in methods.REGISTRY.names():
        mcls = methods.get(name)
        (pde_name, dim, pde_params), sizes, _, k = bench_config(mcls)
        reason = mcls.supports(pdes.build(pde_name, dim, **pde_params))
        if reason or mcls.framework not in BACKENDS or set(sizes) != set(SIZES) or k < 1:
            missing.append(f"{name}: {reason or 'no benchmark path or sizes'}")
    assert not missing, missing
    assert {p.values[0] for p in _table()} == set(methods.REGISTRY.names())


@pytest.mark.parametrize("method,size", list(_table()))
def test_step(benchmark, bench_runner, method, size):
    mcls = methods.get(method)
    (pde_name, dim, _), sizes, _, k = bench_config(mcls)
    if mcls.framework not in BACKENDS:
        pytest.skip(f"method {method!r}: framework {mcls.framework!r} has no backend "
                    f"(known: {', '.join(sorted(BACKENDS))})")
    if mcls.framework == "torch":
        pytest.importorskip("torch", reason=f"method {method!r} needs torch (pip install torch==2.13.0)")
    case = bench_case(method, size, bench_runner.device(mcls.framework))
    pde = pdes.build(case.pde, case.dim, **case.pde_params)
    reason = mcls.supports(pde)
    if reason:
        pytest.skip(f"method {method!r} does not support {pde_name} (dim {dim}): {reason}")
    M = mcls(pde, case.n_per_axis, case.method_params, case.dtype)
    run = bench_runner(case, k, M)
    info = run.info()
    sz = M.size_info()
    benchmark.extra_info.update(
        **info, method=method, framework=mcls.framework, size=size, n_per_axis=sizes[size],
        dtype=case.dtype, n_points=sz.get("n_points"), pde=pde_name, dim=dim, params=M.params,
    )
    benchmark.group = f"step-{size}"
    metrics = benchmark(run.chunk)
    run.record_timing(benchmark)
    assert math.isfinite(float(metrics["loss"]))
    # what the saved JSON must carry for this entry: size, memory and FLOPs
    assert sz.get("n_points", 0) > 0
    assert info["flops_per_step"] and info["flops_per_step"] > 0
    if mcls.framework == "jax":
        assert info["xla_temp_bytes"] is not None and info["xla_total_bytes"] > 0
