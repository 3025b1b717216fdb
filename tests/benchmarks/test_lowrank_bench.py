"""pytest-benchmark: spinn-lowrank training steps on (4+1)-d heat.

256 points per axis is a virtual grid of 256^5 = 1.1e12 points; the step never forms it (the
loss is a sum of per-axis Gram matrices). The target is under one second per step on 2 CPU
cores; the size sweep gives step time against points per axis (expected about linear: the
per-axis networks and Grams are O(N)). Each entry is a ``bench.suite.Case`` run through the JAX
backend by the ``bench_runner`` fixture (``conftest.py``: the worker's compile and warm-up), and
the benchmarked callable is one timing chunk of ``bench.loop`` (``STEPS_PER_CALL`` steps, one
sync); ``extra_info`` carries the compiled step's XLA memory and FLOPs, K and the per-step ms.
Run with ``python -m pytest tests/benchmarks`` for timings; the plain test run passes
``--benchmark-disable`` and runs each chunk once.
"""

import jax
import pytest

from bench.suite import Case

# the heat4d suites' SPINN network (REFERENCES.md 2.4): per-axis 3x64 tanh MLPs of rank 32
NET = {"width": 64, "depth": 3, "rank": 32}
#: steps per benchmarked call (the largest size takes a fraction of a second per step)
STEPS_PER_CALL = 2


@pytest.mark.parametrize("n", [64, 256, 1024])
def test_lowrank_heat4d_step(benchmark, bench_runner, n):
    case = Case(suite="benchmarks", pde="heat", dim=4, method="spinn-lowrank", n_per_axis=n, seed=0,
                device=bench_runner.device("jax"), method_params={**NET, "points": "random"})
    run = bench_runner(case, STEPS_PER_CALL)
    info = run.info()
    benchmark.extra_info.update(method="spinn-lowrank", pde="heat", dim=4, n_per_axis=n,
                                grid_points=run.backend.M.size_info()["n_points"], **info)
    assert info["xla_total_bytes"] > 0 and info["flops_per_step"] > 0

    metrics = benchmark(run.chunk)
    run.record_timing(benchmark)
    assert bool(jax.numpy.isfinite(metrics["loss"]))
