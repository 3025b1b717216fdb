"""The JAX backend: jit, lower and compile on abstract shapes, XLA cost and memory analysis.

``lower_s`` (trace + lower) and ``compile_s`` are timed on abstract shapes (nothing is
allocated, so a case whose compiled memory analysis cannot fit ends as ``oom`` before running,
with the estimate); the step is synchronised with ``block_until_ready`` on its whole output
(REFERENCES.md 4.1); one PRNG key per case is split into init, sample and evaluation keys,
and the batch after ``done`` steps is drawn with ``fold_in(k_sample, done)``. A method's
``inference_programs`` are compiled, costed and timed here too (``inference``). With
``fused_steps = F > 1`` a second program, F steps as one ``lax.scan`` (:func:`fused_program`), is
compiled beside the step (``fused_lower_s``, ``fused_compile_s``); the cost and memory analysis
stay the single step's. ``matmul_program`` is the roofline's micro-benchmark kernel.
"""

from __future__ import annotations

import os
from contextlib import contextmanager

from bench import loop
from bench.backends.base import NO_NVML, Backend, CaseOOM
from bench.measure import env as menv
from bench.measure import memory as mmem
from bench.measure.timing import Timer, time_calls


def fused_program(step, F: int):
    """``F`` optimizer steps of ``step(state, batch) -> (state, metrics)`` on one batch as one
    program: a ``lax.scan`` carrying the state (the same updates, in the same order, as F calls
    of the step), returning the last step's metrics."""

    def fused(state, batch):
        import jax

        state, ms = jax.lax.scan(lambda s, _: step(s, batch), state, None, length=F)
        return state, jax.tree_util.tree_map(lambda x: x[-1], ms)

    return fused


def jax_env(jax, case) -> dict:
    dev = jax.devices()[0]
    info = {"backend": jax.default_backend(), "device_kind": dev.device_kind,
            "device_platform": dev.platform, "n_devices": jax.device_count(),
            "x64": bool(jax.config.jax_enable_x64), "matmul_precision": case.precision,
            "dtype": case.dtype}
    if dev.platform == "gpu" or jax.default_backend() == "gpu":
        info.update(mmem.nvml_info(getattr(dev, "id", 0)))
        info["device_name"] = info.get("gpu_name", dev.device_kind)
    else:
        info["device_name"] = f"CPU: {menv.cpu_model()} ({os.cpu_count()} cores)"
    return info


class JaxBackend(Backend):
    name = "jax"
    can_fuse = True
    #: (F, the compiled F-step program) once ``compile`` has run; (1, None) unfused
    _fused = (1, None)

    def configure(self) -> dict:
        import jax

        case = self.case
        if case.dtype == "float64":
            jax.config.update("jax_enable_x64", True)
        jax.config.update("jax_default_matmul_precision", case.precision)
        self.jax = jax
        self.on_gpu = jax.default_backend() == "gpu"
        self.device = jax.devices()[0]
        return jax_env(jax, case)

    def compile(self, rec: dict) -> None:
        from bench.measure.xla import cost_stats, memory_stats

        jax, M, m = self.jax, self.M, rec["metrics"]
        self.k_init, self.k_sample, self.k_eval = jax.random.split(jax.random.PRNGKey(self.case.seed), 3)
        state_shape = jax.eval_shape(M.init, self.k_init)
        batch_shape = jax.eval_shape(M.sample, self.k_sample)
        rec["method"]["n_params"] = M.n_params(state_shape)
        step = jax.jit(M.step, donate_argnums=(0,) if self.on_gpu else ())
        with Timer() as t_lower:
            lowered = step.lower(state_shape, batch_shape)
        with Timer() as t_comp:
            self.compiled = lowered.compile()
        m.update(lower_s=t_lower.s, compile_s=t_comp.s, **memory_stats(self.compiled),
                 **cost_stats(self.compiled))
        F = int(self.case.fused_steps)
        if F > 1:  # FLOPs and memory stay those of one step (the loop body is counted once)
            fused = jax.jit(fused_program(M.step, F), donate_argnums=(0,) if self.on_gpu else ())
            with Timer() as t_lower:
                lowered = fused.lower(state_shape, batch_shape)
            with Timer() as t_comp:
                self._fused = (F, lowered.compile())
            m.update(fused_lower_s=t_lower.s, fused_compile_s=t_comp.s,
                     fused_xla_total_bytes=memory_stats(self._fused[1])["xla_total_bytes"])
        self._init, self._sample = jax.jit(M.init), jax.jit(M.sample)

    def check_fits(self, rec: dict) -> None:
        m, case = rec["metrics"], self.case
        limit = mmem.jax_device_peak(self.device)["device_limit_bytes"] if self.on_gpu else None
        avail = limit if limit else mmem.available_host_bytes()
        if case.memory_limit_gb and not self.on_gpu:  # the runner's watchdog kills the worker above it
            import psutil

            headroom = int(case.memory_limit_gb * 2**30) - psutil.Process().memory_info().rss
            avail = max(0, min(avail or headroom, headroom))
        need = m.get("xla_total_bytes")
        m["memory_available_bytes"] = avail
        if need and avail and need > avail:
            raise CaseOOM(f"compiled memory analysis needs {need / 2**30:.2f} GiB per step, "
                          f"{avail / 2**30:.2f} GiB available: not run")

    def init(self):
        return self._init(self.k_init)

    def first_batch(self):
        return self.jax.block_until_ready(self._sample(self.k_sample))

    def resample(self, done: int):
        return self.jax.block_until_ready(self._sample(self.jax.random.fold_in(self.k_sample, done)))

    def step(self, state, batch):
        return self.compiled(state, batch)

    def fused(self):
        return self._fused

    def matmul_program(self, n: int, dtype: str):
        jax = self.jax
        if dtype == "float64" and not jax.config.jax_enable_x64:
            return None
        dt = jax.numpy.float64 if dtype == "float64" else jax.numpy.float32
        ka, kb = jax.random.split(jax.random.PRNGKey(0))
        a = jax.random.normal(ka, (n, n), dt)
        b = jax.random.normal(kb, (n, n), dt)
        mm = jax.jit(jax.numpy.matmul).lower(a, b).compile()
        jax.block_until_ready((a, b))
        return lambda: mm(a, b)

    def sync(self, tree=None) -> None:
        self.jax.block_until_ready(tree)

    def inference(self, state) -> dict:
        """Each of the method's ``inference_programs``: jit, lower and compile on its arguments,
        FLOPs from the cost analysis (``bench.measure.xla``), median ms of its synchronised
        calls (``bench.measure.timing.time_calls``)."""
        from bench.measure.xla import cost_stats

        progs = self.M.inference_programs(state)
        if not progs:
            return {}
        labels, ms, flops = [], [], []
        for label, fn, args, repeats in progs:
            compiled = self.jax.jit(fn).lower(*args).compile()
            f = cost_stats(compiled)["flops_per_step"]
            labels.append(label)
            flops.append(None if f is None else float(f))
            ms.append(time_calls(lambda c=compiled, a=args: c(*a), self.sync, repeats))
        return {"infer_res": labels, "infer_ms": ms, "infer_flops": flops}

    def eval_points(self, pde, n: int | None = None):
        """The held-out points (``Backend.held_out``) as a JAX array, and the exact solution."""
        jnp = self.jax.numpy
        dtype = jnp.float64 if self.case.dtype == "float64" else jnp.float32
        pts = jnp.asarray(self.held_out(pde), dtype)
        ex = pde.exact([pts[:, i] for i in range(pts.shape[1])], jnp)
        ex = jnp.stack(ex, -1) if isinstance(ex, (tuple, list)) else ex
        return pts, ex

    def predict(self, state, points):
        import numpy as np

        jnp = self.jax.numpy
        dtype = jnp.float64 if self.case.dtype == "float64" else jnp.float32
        return np.asarray(self.jax.jit(self.M.predict)(state, jnp.asarray(points, dtype)), np.float64)

    def evaluator(self, pde):
        M, jnp = self.M, self.jax.numpy
        if M.evaluate is not None:  # methods with their own error protocol (operator learning)
            return M.evaluate
        pts, exact = self.eval_points(pde, self.case.eval_points)
        predict = self.jax.jit(M.predict)

        def evaluate(state, final=False):
            pred = predict(state, pts)
            return {**loop.errors(jnp, pred, exact), **pde.errors(pred, exact, jnp)}

        return evaluate

    @contextmanager
    def memory_probe(self, rec: dict):
        from bench.measure import nvml as mnvml

        m = rec["metrics"]
        sampler = mmem.NvmlSampler(getattr(self.device, "id", 0)) if self.on_gpu else None
        if sampler:
            sampler.start()
            self.window = sampler.window  # GPU utilisation and energy over the timed chunks
        try:
            yield
        finally:
            if sampler:
                m.update(sampler.stop())
                m.update(sampler.telemetry())
            else:
                m.update(NO_NVML)
                m.update(mnvml.unavailable(NO_NVML["nvml_reason"]))
            m.update(mmem.jax_device_peak(self.device))
