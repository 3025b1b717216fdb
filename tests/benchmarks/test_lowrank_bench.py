"""pytest-benchmark: one spinn-lowrank training step on (4+1)-d heat.

256 points per axis is a virtual grid of 256^5 = 1.1e12 points; the step never forms it (the
loss is a sum of per-axis Gram matrices). The target is under one second on 2 CPU cores; the
size sweep gives step time against points per axis (expected about linear: the per-axis
networks and Grams are O(N)). Run with ``python -m pytest tests/benchmarks`` for timings; the
plain test run passes ``--benchmark-disable`` and runs each step once.
"""

import jax
import pytest

import methods
import pdes

# the heat4d suites' SPINN network (REFERENCES.md 2.4): per-axis 3x64 tanh MLPs of rank 32
NET = {"width": 64, "depth": 3, "rank": 32}


def _compiled_step(n: int, points: str = "random"):
    pde = pdes.build("heat", 4)
    M = methods.get("spinn-lowrank")(pde, n, {**NET, "points": points}, "float32")
    state = M.init(jax.random.PRNGKey(0))
    batch = jax.block_until_ready(M.sample(jax.random.PRNGKey(1)))
    step = jax.jit(M.step).lower(state, batch).compile()
    state, _ = jax.block_until_ready(step(state, batch))  # warm-up
    return step, state, batch, M


@pytest.mark.parametrize("n", [64, 256, 1024])
def test_lowrank_heat4d_step(benchmark, n):
    from bench.measure.memory import jax_device_peak
    from bench.measure.xla import cost_stats, memory_stats

    step, state, batch, M = _compiled_step(n)
    info = {**memory_stats(step), **cost_stats(step), **jax_device_peak(jax.devices()[0])}
    benchmark.extra_info.update(method="spinn-lowrank", pde="heat", dim=4, n_per_axis=n,
                                grid_points=M.size_info()["n_points"], **info)
    assert info["xla_total_bytes"] > 0 and info["flops_per_step"] > 0

    def run():
        return jax.block_until_ready(step(state, batch))

    _, metrics = benchmark(run)
    assert bool(jax.numpy.isfinite(metrics["loss"]))
