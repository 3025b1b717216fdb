"""Micro-benchmarks: one training step of every registered method at two sizes.

The table walks ``methods.REGISTRY`` at collection time, so a newly registered method is
benchmarked without editing this file. Each case builds the method on a shared PDE (the (2+1)-d
heat equation unless ``BENCH_SETTINGS`` names another), compiles its step once and runs it once
(warm-up, excluded from the statistics), then benchmarks a callable that runs one step *and*
synchronises the device inside the callable: pytest-benchmark's timer does not know about
asynchronous dispatch, so without ``block_until_ready`` / ``torch.cuda.synchronize`` it would time
the enqueue only.

Benchmark settings live here, not on the method classes: ``BENCH_SETTINGS`` maps a method
class (subclasses inherit the entry) to any of

* ``pde = (name, dim, params)``: the PDE to benchmark on (e.g. a parametric PDE for an
  operator method); default ``("heat", 2, {})``;
* ``sizes = {"small": n, "medium": n}``: ``n_per_axis`` per size; default 4 and 8;
* ``params = {...}``: method parameters for the benchmark; default the method's defaults.

``extra_info`` of every entry: method, framework, size, n_per_axis, n_points, pde, dim,
device, ``xla_temp_bytes`` / ``xla_total_bytes`` (XLA memory analysis of the compiled step),
``flops_per_step`` (XLA cost analysis by ``bench.measure.xla``, or the torch backend's FLOP
count ``bench.backends.torch.count_flops``: the numbers the worker records), and the device allocator
peak where the backend has one (``device_peak_bytes``; None on the CPU).

``PINNBENCH_BENCH_SLEEP_MS`` (read here only, used by ``tests/test_bench_compare.py``) adds a
sleep of that many milliseconds inside the benchmarked callable: a crafted slowdown that the
``bench-compare`` tox env must catch.

Run: ``python -m pytest tests/benchmarks --benchmark-only`` (statistics) or with
``--benchmark-disable`` (each step once, as CI on the CPU does); see ``tox.ini``.
"""

from __future__ import annotations

import math
import os
import time

import pytest

import methods
import pdes

DEFAULT_PDE = ("heat", 2, {})
DEFAULT_SIZES = {"small": 4, "medium": 8}
SIZES = tuple(DEFAULT_SIZES)
SLEEP_ENV = "PINNBENCH_BENCH_SLEEP_MS"
SEED = 0

#: per method class (subclasses inherit): pde / sizes / params of its benchmark
BENCH_SETTINGS: dict[type, dict] = {
    # an operator method is benchmarked on a parametric PDE (modes per axis)
    methods.nsm.Nsm: {"pde": ("nsm-poisson", 2, {"n_test": 8}), "sizes": {"small": 8, "medium": 16},
                      "params": {"width": 32, "depth": 2, "batch": 8}},
}


def bench_config(mcls) -> tuple[tuple[str, int, dict], dict[str, int], dict]:
    """(pde spec, sizes, params) the benchmark uses for method class ``mcls``."""
    settings = next((BENCH_SETTINGS[c] for c in mcls.__mro__ if c in BENCH_SETTINGS), {})
    name, dim, params = settings.get("pde") or DEFAULT_PDE
    sizes = {**DEFAULT_SIZES, **settings.get("sizes", {})}
    return (name, int(dim), dict(params)), sizes, dict(settings.get("params", {}))


def injected_sleep_s() -> float:
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


def _with_sleep(fn, sleep_s: float):
    if not sleep_s:
        return fn

    def slowed():
        out = fn()
        time.sleep(sleep_s)
        return out

    return slowed


# -- framework paths: each returns (callable running one synchronised step, extra_info) ---------

def _jax_case(M):
    import jax

    from bench.measure.memory import jax_device_peak
    from bench.measure.xla import cost_stats, memory_stats

    key = jax.random.PRNGKey(SEED)
    k_init, k_sample = jax.random.split(key)
    # init and sample run eagerly: they are not timed, and eager ops are cached across cases
    # while a jit of each would compile anew for every method and size
    state = M.init(k_init)
    batch = jax.block_until_ready(M.sample(k_sample))
    on_gpu = jax.default_backend() == "gpu"
    # as in the worker: donate the state on a GPU (no donation on the CPU backend)
    compiled = jax.jit(M.step, donate_argnums=(0,) if on_gpu else ()).lower(state, batch).compile()
    holder = {"state": state}

    def one_step():
        s, metrics = compiled(holder["state"], batch)
        jax.block_until_ready((s, metrics))
        holder["state"] = s
        return metrics

    one_step()  # warm-up: first call allocates; excluded from the benchmark
    device = jax.devices()[0]
    info = {**memory_stats(compiled), **cost_stats(compiled), **jax_device_peak(device),
            "device": f"{device.platform}:{device.device_kind}"}
    return one_step, info


def _torch_case(M):
    import torch

    from bench.backends.torch import count_flops

    if hasattr(M, "device") and torch.cuda.is_available():
        M.device = "cuda"  # the torch protocol: the driver sets the device before init()
    on_cuda = torch.device(getattr(M, "device", "cpu")).type == "cuda"

    def sync():
        if on_cuda:  # there is nothing asynchronous to wait for on the CPU
            torch.cuda.synchronize()

    if not on_cuda:  # explicit, as the torch worker does (its default can differ per build)
        torch.set_num_threads(os.cpu_count() or 1)
    torch.manual_seed(SEED)
    state = M.init(SEED)
    batch = M.sample(SEED + 1)
    holder = {"state": state}

    def one_step():
        s, metrics = M.step(holder["state"], batch)
        sync()
        holder["state"] = s
        return metrics

    one_step()  # warm-up (lazy allocation, cuDNN/cuBLAS handles)
    info = {"xla_temp_bytes": None, "xla_total_bytes": None,
            "flops_per_step": count_flops(torch, one_step),
            "device": "cuda" if on_cuda else "cpu", "torch_num_threads": torch.get_num_threads()}
    if on_cuda:
        torch.cuda.reset_peak_memory_stats()
        one_step()
        info["device_peak_bytes"] = int(torch.cuda.max_memory_allocated())
    else:
        info["device_peak_bytes"] = None
    return one_step, info


FRAMEWORKS = {"jax": _jax_case, "torch": _torch_case}


def framework_case(framework: str):
    """The benchmark path for ``framework``, or None when this file does not know it."""
    return FRAMEWORKS.get(framework)


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
        (pde_name, dim, pde_params), sizes, _ = bench_config(mcls)
        reason = mcls.supports(pdes.build(pde_name, dim, **pde_params))
        if reason or framework_case(mcls.framework) is None or set(sizes) != set(SIZES):
            missing.append(f"{name}: {reason or 'no benchmark path or sizes'}")
    assert not missing, missing
    assert {p.values[0] for p in _table()} == set(methods.REGISTRY.names())


@pytest.fixture
def restore_torch_threads():
    """The torch path sets the thread count; give later tests the one they had."""
    import sys

    torch = sys.modules.get("torch")
    prev = torch.get_num_threads() if torch else None
    yield
    if torch is None:
        torch = sys.modules.get("torch")
    if torch is not None and prev is not None:
        torch.set_num_threads(prev)


@pytest.mark.parametrize("method,size", list(_table()))
def test_step(benchmark, restore_torch_threads, method, size):
    mcls = methods.get(method)
    (pde_name, dim, pde_params), sizes, params = bench_config(mcls)
    path = framework_case(mcls.framework)
    if path is None:
        pytest.skip(f"method {method!r}: framework {mcls.framework!r} has no benchmark path "
                    f"(known: {', '.join(sorted(FRAMEWORKS))})")
    if mcls.framework == "torch":
        pytest.importorskip("torch", reason=f"method {method!r} needs torch (pip install torch==2.13.0)")
    pde = pdes.build(pde_name, dim, **pde_params)
    reason = mcls.supports(pde)
    if reason:
        pytest.skip(f"method {method!r} does not support {pde_name} (dim {dim}): {reason}")
    M = mcls(pde, sizes[size], params, "float32")
    one_step, info = path(M)
    sz = M.size_info()
    benchmark.extra_info.update(
        method=method, framework=mcls.framework, size=size, n_per_axis=sizes[size], dtype="float32",
        n_points=sz.get("n_points"), pde=pde_name, dim=dim, params=M.params, **info,
    )
    benchmark.group = f"step-{size}"
    metrics = benchmark(_with_sleep(one_step, injected_sleep_s()))
    assert math.isfinite(float(metrics["loss"]))
    # what the saved JSON must carry for this entry: size, memory and FLOPs
    assert sz.get("n_points", 0) > 0
    assert info["flops_per_step"] and info["flops_per_step"] > 0
    if mcls.framework == "jax":
        assert info["xla_temp_bytes"] is not None and info["xla_total_bytes"] > 0
