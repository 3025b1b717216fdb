"""The worker's PyTorch path: one case of a ``framework = "torch"`` method, same record as JAX.

Differences from ``run_jax`` (bench/worker.py), each recorded: there is no compile phase (eager
PyTorch: ``lower_s``/``compile_s`` are None and the XLA fields stay None); FLOPs per step come
from the ``torch.utils.flop_counter`` formulas (FlopCounterMode's registry) over one step
on a copy of the state (shape-based; unsupported ops count zero, REFERENCES.md 4.3); timing
is synchronised with
``torch.cuda.synchronize()`` on a GPU (REFERENCES.md 4.1); on the CPU the thread count is set
to ``os.cpu_count()`` and recorded; peak memory is ``torch.cuda.max_memory_allocated`` (and
``max_memory_reserved``) after ``reset_peak_memory_stats`` on a GPU, plus the NVML sampler.
"""

from __future__ import annotations

import copy
import os

from bench import faults, loop
from bench.measure import env as menv
from bench.measure import memory as mmem
from bench.measure.timing import Timer

PRECISION = {"highest": "highest", "high": "high", "default": "high"}


def flop_counter(torch):
    """A dispatch mode that sums ``torch.utils.flop_counter.flop_registry`` formulas.

    This is FlopCounterMode's counting without its module tracker, whose backward hooks break
    ``torch.autograd.grad(create_graph=True)`` inside the counted region (torch 2.13: "A leaf
    node was passed to _will_engine_execute_node"). Ops without a formula count zero.
    """
    from torch.utils._python_dispatch import TorchDispatchMode
    from torch.utils.flop_counter import flop_registry

    class _Flops(TorchDispatchMode):
        total = 0

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            kwargs = kwargs or {}
            out = func(*args, **kwargs)
            formula = flop_registry.get(func._overloadpacket)
            if formula is not None:
                self.total += int(formula(*args, **kwargs, out_val=out))
            return out

    return _Flops()


def torch_env(torch, case, on_gpu: bool) -> dict:
    info = {"backend": "torch", "torch": torch.__version__, "dtype": case.dtype,
            "matmul_precision": case.precision,
            "torch_float32_matmul_precision": torch.get_float32_matmul_precision(),
            "torch_num_threads": torch.get_num_threads(),
            "torch_allow_tf32": bool(torch.backends.cuda.matmul.allow_tf32)}
    if on_gpu:
        idx = torch.cuda.current_device()
        info.update(mmem.nvml_info(idx))
        info["device_name"] = torch.cuda.get_device_name(idx)
        info["device_platform"] = "gpu"
        info["cuda"] = torch.version.cuda
    else:
        info["device_name"] = f"CPU: {menv.cpu_model()} ({os.cpu_count()} cores)"
        info["device_platform"] = "cpu"
    return info


def run_torch(case, rec: dict, checkpoint) -> None:
    import torch

    import methods
    import pdes

    on_gpu = case.device != "cpu"
    if on_gpu and not torch.cuda.is_available():
        raise RuntimeError(f"case device {case.device!r} but torch sees no CUDA device")
    dev = torch.device("cuda" if on_gpu else "cpu")
    if not on_gpu:
        torch.set_num_threads(os.cpu_count() or 1)
    torch.set_float32_matmul_precision(PRECISION[case.precision])
    torch.backends.cuda.matmul.allow_tf32 = case.precision != "highest"
    torch.backends.cudnn.allow_tf32 = case.precision != "highest"
    torch.manual_seed(case.seed)
    rec["env"].update(torch_env(torch, case, on_gpu))
    m = rec["metrics"]
    pde = pdes.build(case.pde, case.dim, **case.pde_params)
    M = methods.get(case.method)(pde, case.n_per_axis, case.method_params, case.dtype)
    M.device = dev
    rec["pde"] = pde.describe()
    rec["method"] = {"name": case.method, "params": M.params, "framework": M.framework,
                     "points_kind": M.points_kind, **M.describe()}
    rec["size"] = {"n_per_axis": case.n_per_axis, **M.size_info()}
    sync = torch.cuda.synchronize if on_gpu else (lambda: None)

    seed_init, seed_sample, seed_eval = case.seed, 10_000 + case.seed, 20_000 + case.seed
    state = M.init(seed_init)
    rec["method"]["n_params"] = M.n_params(state)
    with Timer() as t_s:
        batch = M.sample(seed_sample)
        sync()
    m["sample_s"] = t_s.s
    m.update(lower_s=None, compile_s=None, transcendentals=None, bytes_accessed=None,
             xla_temp_bytes=None, xla_total_bytes=None)
    rec["phase"] = "compile"
    # FLOPs of one step on a throwaway copy (the model and its optimiser copied together)
    try:
        probe = copy.deepcopy(state)
        with flop_counter(torch) as fc:
            M.step(probe, batch)
        m["flops_per_step"] = int(fc.total)
        del probe
    except Exception as e:  # the counter is best effort
        m["flops_per_step"] = None
        m["flops_note"] = f"FlopCounterMode failed: {type(e).__name__}: {e}"[:300]
    m["flops_source"] = ("torch.utils.flop_counter formulas (FlopCounterMode's shape-based "
                         "registry) over one step")
    rec["phase"] = "compiled"
    checkpoint()
    faults.inject(case.case_id, "compiled")

    sampler = mmem.NvmlSampler(torch.cuda.current_device()) if on_gpu else None
    if on_gpu:
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    if sampler:
        sampler.start()
    try:
        _train(torch, case, M, pde, state, batch, (seed_sample, seed_eval), rec, sync)
    finally:
        if sampler:
            m.update(sampler.stop())
        else:
            m.update(nvml_peak_bytes=None, nvml_process_peak_bytes=None,
                     nvml_reason="not a GPU run (no NVIDIA device in use)")
        if on_gpu:
            m["device_peak_bytes"] = int(torch.cuda.max_memory_allocated())
            m["device_reserved_peak_bytes"] = int(torch.cuda.max_memory_reserved())
            m["device_limit_bytes"] = int(torch.cuda.get_device_properties(dev).total_memory)
        else:
            m.update(device_peak_bytes=None, device_limit_bytes=None)
        rec["memory_sources"] = {
            **rec.get("memory_sources", {}),
            "device_peak_bytes": "torch.cuda.max_memory_allocated (none on CPU)",
            "device_reserved_peak_bytes": "torch.cuda.max_memory_reserved (caching pool)",
            "xla_temp_bytes": "not applicable (PyTorch)", "xla_total_bytes": "not applicable"}


def _train(torch, case, M, pde, state, batch, seeds, rec, sync):
    m = rec["metrics"]
    seed_sample, seed_eval = seeds
    gen = torch.Generator().manual_seed(seed_eval)
    bounds = pde.bounds()
    lo = torch.tensor([b[0] for b in bounds], dtype=M.tdtype)
    hi = torch.tensor([b[1] for b in bounds], dtype=M.tdtype)
    pts = (lo + (hi - lo) * torch.rand(case.eval_points, len(bounds), generator=gen,
                                       dtype=M.tdtype)).to(M.device)
    ex = pde.exact([pts[:, i] for i in range(pts.shape[1])], torch)
    exact = torch.stack(ex, -1) if isinstance(ex, (tuple, list)) else ex

    def evaluate(st):
        return loop.errors(torch, M.predict(st, pts), exact)

    def resample(done):
        new = M.sample(seed_sample + done)
        sync()
        return new

    r = loop.train(case, M, rec, M.step, lambda _tree: sync(), resample, evaluate, state, batch)
    if r.stop == "nan":
        m["nan_step"] = r.done
        rec["status"], rec["error"] = "nan", f"loss became {r.loss} at step {r.done}"
        return
    loop.finish_ok(case, rec, evaluate(r.state))
