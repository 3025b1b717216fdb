"""One case, in a fresh process: build, compile, check the size, warm up, time, evaluate.

Run as ``python -m bench.worker CASE_JSON OUT_JSON``. The worker writes its (partial) record to
OUT_JSON atomically after every phase, so whatever was measured before a crash, a kill or a
timeout survives for the parent to merge. Allocator and platform settings are applied here,
before the framework is imported, so they are per case.

Phases and what is timed (REFERENCES.md 4.1): ``lower_s`` (trace + lower) and ``compile_s`` on
abstract shapes (nothing is allocated, so a case whose compiled memory analysis cannot fit ends
as ``oom`` before running, with the estimate); ``first_step_s`` (first call: allocation and
warm-up); then training steps in timed chunks of K steps, each closed by
``block_until_ready`` on the whole output, GC off; resampling and evaluation happen between
chunks, outside the clock.
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
import traceback
from pathlib import Path

from bench import faults, loop
from bench.measure import env as menv
from bench.measure import memory as mmem
from bench.measure.timing import Timer
from bench.store import write_json_atomic
from bench.suite import Case
from bench.torch_worker import run_torch

MEMORY_SOURCES = {
    "xla_temp_bytes": "XLA compiled memory_analysis() of the training step: temp buffers (per call)",
    "xla_total_bytes": "XLA compiled memory_analysis(): temp + arguments + outputs - aliased",
    "peak_rss_bytes": "host peak RSS of the worker process (ru_maxrss)",
    "device_peak_bytes": "JAX allocator peak_bytes_in_use (device.memory_stats(); none on CPU)",
    "nvml_peak_bytes": "NVML device memory used, whole GPU, sampled every 10 ms",
    "nvml_process_peak_bytes": "NVML usedGpuMemory of the worker PID, sampled every 10 ms",
}


class CaseOOM(Exception):
    pass


def _is_oom(exc: BaseException) -> bool:
    if isinstance(exc, (MemoryError, CaseOOM)):
        return True
    text = f"{type(exc).__name__} {exc}"
    return any(s in text for s in ("RESOURCE_EXHAUSTED", "Out of memory", "OutOfMemoryError",
                                   "out of memory", "Allocator"))


def setup_platform(case: Case) -> dict:
    """Environment variables that must be set before JAX starts; returns what was set."""
    set_ = {}
    if case.device == "cpu":
        set_["JAX_PLATFORMS"] = "cpu"
    else:
        set_["JAX_PLATFORMS"] = os.environ.get("JAX_PLATFORMS", "cuda")
        # memory runs: grow on demand so NVML and the allocator peak describe this case
        set_["XLA_PYTHON_CLIENT_PREALLOCATE"] = os.environ.get("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
        # CUDA numbers GPUs fastest first by default, NVML by PCI bus: make them agree, so the
        # NVML sampler watches the GPU the case runs on (bench.measure.memory.nvml_index)
        set_["CUDA_DEVICE_ORDER"] = os.environ.get("CUDA_DEVICE_ORDER", "PCI_BUS_ID")
    os.environ.update(set_)
    if "jax" in sys.modules:  # imported already (bench.suite imports the registries): JAX read
        # JAX_PLATFORMS at import; the config still applies until the first backend starts
        sys.modules["jax"].config.update("jax_platforms", set_["JAX_PLATFORMS"])
    return set_


def base_record(case: Case) -> dict:
    return {"case_id": case.case_id, "suite": case.suite, "case": case.to_dict(),
            "status": "error", "error": "worker did not finish", "phase": "start",
            "metrics": {}, "memory_sources": dict(MEMORY_SOURCES), "curve": [],
            "env": {}, "started": time.strftime("%Y-%m-%dT%H:%M:%S%z")}


def jax_env(jax, case: Case) -> dict:
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


def run_jax(case: Case, rec: dict, checkpoint) -> None:
    import jax

    if case.dtype == "float64":
        jax.config.update("jax_enable_x64", True)
    jax.config.update("jax_default_matmul_precision", case.precision)
    import jax.numpy as jnp

    import methods
    import pdes
    from bench.measure.xla import cost_stats, memory_stats

    rec["env"].update(jax_env(jax, case))
    m = rec["metrics"]
    pde = pdes.build(case.pde, case.dim, **case.pde_params)
    M = methods.get(case.method)(pde, case.n_per_axis, case.method_params, case.dtype)
    rec["pde"] = pde.describe()
    rec["method"] = {"name": case.method, "params": M.params, "framework": M.framework,
                     "points_kind": M.points_kind, **M.describe()}
    rec["size"] = {"n_per_axis": case.n_per_axis, **M.size_info()}

    key = jax.random.PRNGKey(case.seed)
    k_init, k_sample, k_eval = jax.random.split(key, 3)
    state_shape = jax.eval_shape(M.init, k_init)
    batch_shape = jax.eval_shape(M.sample, k_sample)
    rec["method"]["n_params"] = M.n_params(state_shape)
    on_gpu = jax.default_backend() == "gpu"
    step = jax.jit(M.step, donate_argnums=(0,) if on_gpu else ())

    rec["phase"] = "compile"
    with Timer() as t_lower:
        lowered = step.lower(state_shape, batch_shape)
    with Timer() as t_comp:
        compiled = lowered.compile()
    m.update(lower_s=t_lower.s, compile_s=t_comp.s, **memory_stats(compiled), **cost_stats(compiled))
    rec["phase"] = "compiled"
    checkpoint()
    faults.inject(case.case_id, "compiled")

    device = jax.devices()[0]
    limit = mmem.jax_device_peak(device)["device_limit_bytes"] if on_gpu else None
    avail = limit if limit else mmem.available_host_bytes()
    if case.memory_limit_gb and not on_gpu:  # the runner's watchdog kills the worker above it
        import psutil

        headroom = int(case.memory_limit_gb * 2**30) - psutil.Process().memory_info().rss
        avail = max(0, min(avail or headroom, headroom))
    need = m.get("xla_total_bytes")
    m["memory_available_bytes"] = avail
    if need and avail and need > avail:
        raise CaseOOM(f"compiled memory analysis needs {need / 2**30:.2f} GiB per step, "
                      f"{avail / 2**30:.2f} GiB available: not run")

    sampler = mmem.NvmlSampler(getattr(device, "id", 0)) if on_gpu else None
    if sampler:
        sampler.start()
    try:
        _train(jax, jnp, case, M, pde, compiled, (k_init, k_sample, k_eval), rec, checkpoint)
    finally:
        if sampler:
            m.update(sampler.stop())
        else:
            m.update(nvml_peak_bytes=None, nvml_process_peak_bytes=None,
                     nvml_reason="not a GPU run (no NVIDIA device in use)")
        m.update(mmem.jax_device_peak(device))


def _eval_points(jax, jnp, pde, key, n, dtype):
    bounds = pde.bounds()
    lo = jnp.array([b[0] for b in bounds], dtype)
    hi = jnp.array([b[1] for b in bounds], dtype)
    pts = lo + (hi - lo) * jax.random.uniform(key, (n, len(bounds)), dtype)
    ex = pde.exact([pts[:, i] for i in range(pts.shape[1])], jnp)
    ex = jnp.stack(ex, -1) if isinstance(ex, (tuple, list)) else ex
    return pts, ex


def _train(jax, jnp, case, M, pde, compiled, keys, rec, checkpoint):
    m = rec["metrics"]
    k_init, k_sample, k_eval = keys
    init = jax.jit(M.init)
    sample = jax.jit(M.sample)
    predict = jax.jit(M.predict)
    dt = jnp.float64 if case.dtype == "float64" else jnp.float32
    if hasattr(M, "evaluate"):  # methods with their own error protocol (operator learning)
        evaluate = M.evaluate
    else:
        pts, exact = _eval_points(jax, jnp, pde, k_eval, case.eval_points, dt)

        def evaluate(state, final=False):
            pred = predict(state, pts)
            return {**loop.errors(jnp, pred, exact), **pde.errors(pred, exact, jnp)}

    state = init(k_init)
    with Timer() as t_s:
        batch = jax.block_until_ready(sample(k_sample))
    m["sample_s"] = t_s.s
    r = loop.train(case, M, rec, compiled, jax.block_until_ready,
                   lambda done: jax.block_until_ready(sample(jax.random.fold_in(k_sample, done))),
                   evaluate, state, batch)
    stop, done, loss = r.stop, r.done, r.loss
    if stop == "nan":
        exact = _locate_nan(jax, compiled, init, sample, k_init, k_sample, r.resample_every, done)
        m["nan_step"] = exact or done
        m["nan_step_exact"] = exact is not None
        m["nan_detected_at_step"] = done
        rec["status"], rec["error"] = "nan", f"loss became {loss} at step {m['nan_step']}"
        return
    loop.finish_ok(case, rec, evaluate(r.state, final=True))


#: longest run that is replayed step by step to find the first non-finite loss
NAN_REPLAY_MAX_STEPS = 20_000


def _locate_nan(jax, compiled, init, sample, k_init, k_sample, resample_every, upto):
    """The first step whose loss is not finite, by replaying the (deterministic) training
    from the start one synchronised step at a time, with the batches of the timed run (which
    only looks at the loss at chunk ends): the loop draws new points every ``resample_every``
    steps from step 2 on (bench.loop). None if the replay does not reproduce it (a
    non-deterministic GPU reduction) or the run is too long to replay."""
    if upto > NAN_REPLAY_MAX_STEPS:
        return None
    state = init(k_init)
    batch = sample(k_sample)
    done, last_draw = 0, 0
    while done < upto:
        if done >= 2 and resample_every and done - last_draw >= resample_every:
            batch = sample(jax.random.fold_in(k_sample, done))
            last_draw = done
        state, metrics = compiled(state, batch)
        done += 1
        if not math.isfinite(float(metrics["loss"])):
            return done
    return None


RUNNERS = {"jax": run_jax, "torch": run_torch}


def run(case: Case, out: Path) -> dict:
    rec = base_record(case)
    rec["env"]["platform_env"] = setup_platform(case)
    rec["env"].update(menv.host())
    checkpoint = lambda: write_json_atomic(out, rec)  # noqa: E731
    checkpoint()
    t0 = time.perf_counter()
    try:
        import methods

        framework = methods.get(case.method).framework
        RUNNERS[framework](case, rec, checkpoint)
    except Exception as e:  # a failed case is a record, never a crash of the sweep
        if _is_oom(e):
            rec["status"], rec["error"] = "oom", f"{type(e).__name__}: {e}".splitlines()[0][:500]
            rec["metrics"]["oom_phase"] = rec.get("phase")
        else:
            rec["status"] = "error"
            rec["error"] = f"{type(e).__name__}: {e}".splitlines()[0][:500]
            rec["traceback"] = traceback.format_exc()[-4000:]
    rec["metrics"]["peak_rss_bytes"] = mmem.peak_rss_bytes()
    rec["metrics"]["worker_s"] = time.perf_counter() - t0
    rec["phase"] = "done"
    checkpoint()
    return rec


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    from bench.procs import die_with_parent

    die_with_parent()
    case = Case.from_dict(json.loads(Path(argv[0]).read_text()))
    run(case, Path(argv[1]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
