"""The PyTorch backend: eager steps, a FLOP count from torch's formulas, CUDA memory peaks.

Differences from JAX, each recorded: there is no compile phase (eager PyTorch:
``lower_s``/``compile_s`` are None and the XLA fields stay None); FLOPs per step come from the
``torch.utils.flop_counter`` formulas (FlopCounterMode's registry) over one step on a copy of
the state (shape-based; unsupported ops count zero, REFERENCES.md 4.3); timing is
synchronised with ``torch.cuda.synchronize()`` on a GPU (REFERENCES.md 4.1); on the CPU the
thread count is set to ``os.cpu_count()`` and recorded; peak memory is
``torch.cuda.max_memory_allocated`` (and ``max_memory_reserved``) after
``reset_peak_memory_stats`` on a GPU, plus the NVML sampler. Seeds are integers: ``seed``
(init), ``10000 + seed`` (points; ``+ done`` after ``done`` steps), ``20000 + seed`` (evaluation).
"""

from __future__ import annotations

import copy
import os
from contextlib import contextmanager

from bench import loop
from bench.backends.base import NO_NVML, Backend
from bench.measure import env as menv
from bench.measure import memory as mmem
from bench.measure.timing import Timer

PRECISION = {"highest": "highest", "high": "high", "default": "high"}
FLOPS_SOURCE = "torch.utils.flop_counter formulas (FlopCounterMode's shape-based registry) over one step"


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


def count_flops(torch, fn) -> int:
    """FLOPs of one call of ``fn()`` by :func:`flop_counter` (the one torch FLOP count)."""
    with flop_counter(torch) as fc:
        fn()
    return int(fc.total)


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


class TorchBackend(Backend):
    name = "torch"

    def configure(self) -> dict:
        import torch

        case = self.case
        self.torch = torch
        self.on_gpu = case.device != "cpu"
        if self.on_gpu and not torch.cuda.is_available():
            raise RuntimeError(f"case device {case.device!r} but torch sees no CUDA device")
        self.device = torch.device("cuda" if self.on_gpu else "cpu")
        if not self.on_gpu:
            torch.set_num_threads(os.cpu_count() or 1)
        torch.set_float32_matmul_precision(PRECISION[case.precision])
        torch.backends.cuda.matmul.allow_tf32 = case.precision != "highest"
        torch.backends.cudnn.allow_tf32 = case.precision != "highest"
        torch.manual_seed(case.seed)
        self.seed_init, self.seed_sample, self.seed_eval = case.seed, 10_000 + case.seed, 20_000 + case.seed
        return torch_env(torch, case, self.on_gpu)

    def attach(self, M) -> None:
        super().attach(M)
        M.device = self.device

    def compile(self, rec: dict) -> None:
        """No compilation (eager): build the state and first batch, count one step's FLOPs."""
        m = rec["metrics"]
        self._state = self.init()
        rec["method"]["n_params"] = self.M.n_params(self._state)
        with Timer() as t_s:
            self._batch = self.first_batch()
        m["sample_s"] = t_s.s
        m.update(lower_s=None, compile_s=None, transcendentals=None, bytes_accessed=None,
                 xla_temp_bytes=None, xla_total_bytes=None)
        try:  # FLOPs of one step on a throwaway copy (the model and its optimiser copied together)
            probe = copy.deepcopy(self._state)
            m["flops_per_step"] = count_flops(self.torch, lambda: self.M.step(probe, self._batch))
        except Exception as e:  # the counter is best effort
            m["flops_per_step"] = None
            m["flops_note"] = f"FlopCounterMode failed: {type(e).__name__}: {e}"[:300]
        m["flops_source"] = FLOPS_SOURCE

    def init(self):
        if getattr(self, "_state", None) is not None:  # the one built for the FLOP probe, once
            state, self._state = self._state, None
            return state
        return self.M.init(self.seed_init)

    def first_batch(self):
        if getattr(self, "_batch", None) is not None:
            batch, self._batch = self._batch, None
            return batch
        batch = self.M.sample(self.seed_sample)
        self.sync()
        return batch

    def resample(self, done: int):
        batch = self.M.sample(self.seed_sample + done)
        self.sync()
        return batch

    def step(self, state, batch):
        return self.M.step(state, batch)

    def matmul_program(self, n: int, dtype: str):
        torch = self.torch
        dt = torch.float64 if dtype == "float64" else torch.float32
        g = torch.Generator(device="cpu").manual_seed(0)
        a = torch.randn(n, n, generator=g, dtype=dt).to(self.device)
        b = torch.randn(n, n, generator=g, dtype=dt).to(self.device)
        return lambda: a @ b

    def sync(self, tree=None) -> None:
        if self.on_gpu:
            self.torch.cuda.synchronize()

    def eval_points(self, pde, n: int | None = None):
        """The held-out points (``Backend.held_out``: the same as the JAX backend's) as a tensor
        on the device, and the exact solution."""
        torch, M = self.torch, self.M
        pts = torch.as_tensor(self.held_out(pde), dtype=M.tdtype).to(M.device)
        ex = pde.exact([pts[:, i] for i in range(pts.shape[1])], torch)
        return pts, (torch.stack(ex, -1) if isinstance(ex, (tuple, list)) else ex)

    def predict(self, state, points):
        import numpy as np

        torch, M = self.torch, self.M
        with torch.no_grad():
            out = M.predict(state, torch.as_tensor(points, dtype=M.tdtype).to(M.device))
        return np.asarray(out.detach().cpu().double().numpy(), np.float64)

    def evaluator(self, pde):
        M = self.M
        pts, exact = self.eval_points(pde, self.case.eval_points)

        def evaluate(state, final=False):
            return loop.errors(self.torch, M.predict(state, pts), exact)

        return evaluate

    @contextmanager
    def memory_probe(self, rec: dict):
        torch, m = self.torch, rec["metrics"]
        sampler = mmem.NvmlSampler(torch.cuda.current_device()) if self.on_gpu else None
        if self.on_gpu:
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()
        if sampler:
            sampler.start()
        try:
            yield
        finally:
            from bench.measure import nvml as mnvml

            m.update(sampler.stop() if sampler else NO_NVML)
            m.update(mnvml.unavailable("torch backend: GPU telemetry not sampled" if sampler
                                       else NO_NVML["nvml_reason"]))
            if self.on_gpu:
                m["device_peak_bytes"] = int(torch.cuda.max_memory_allocated())
                m["device_reserved_peak_bytes"] = int(torch.cuda.max_memory_reserved())
                m["device_limit_bytes"] = int(torch.cuda.get_device_properties(self.device).total_memory)
            else:
                m.update(device_peak_bytes=None, device_limit_bytes=None)
            rec["memory_sources"] = {
                **rec.get("memory_sources", {}),
                "device_peak_bytes": "torch.cuda.max_memory_allocated (none on CPU)",
                "device_reserved_peak_bytes": "torch.cuda.max_memory_reserved (caching pool)",
                "xla_temp_bytes": "not applicable (PyTorch)", "xla_total_bytes": "not applicable"}
