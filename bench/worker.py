"""One case, in a fresh process: build, compile, check the size, warm up, time, evaluate.

The framework-neutral driver: the record, the platform environment, fault injection
(bench.faults), OOM classification and the NaN replay live here; everything that touches a
framework is its backend's (bench.backends), the training loop is bench.loop's.

Run as ``python -m bench.worker CASE_JSON OUT_JSON``. The worker writes its (partial) record to
OUT_JSON atomically after every phase, so whatever was measured before a crash, a kill or a
timeout survives for the parent to merge. Allocator and platform settings are applied here,
before the framework is imported, so they are per case.

Phases and what is timed (REFERENCES.md 4.1): ``compile`` (the backend's: ``lower_s`` and
``compile_s`` on abstract shapes in JAX, so a case whose compiled memory analysis cannot fit
ends as ``oom`` before running, with the estimate); ``first_step_s`` (first call: allocation
and warm-up); then training steps in timed chunks of K steps, each closed by the backend's
``sync`` on the whole output, GC off; resampling and evaluation happen between chunks,
outside the clock. After the final evaluation the backend times and costs the method's
``inference_programs`` (``Backend.inference``: ``infer_ms``, ``infer_flops``).
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
import traceback
from pathlib import Path

from bench import backends, faults, loop, record
from bench.backends import CaseOOM
from bench.measure import env as menv
from bench.measure import memory as mmem
from bench.measure import peak
from bench.measure.timing import Timer
from bench.store import write_json_atomic
from bench.suite import Case

MEMORY_SOURCES = {
    "xla_temp_bytes": "XLA compiled memory_analysis() of the training step: temp buffers (per call)",
    "xla_total_bytes": "XLA compiled memory_analysis(): temp + arguments + outputs - aliased",
    "peak_rss_bytes": "host peak RSS of the worker process (ru_maxrss)",
    "device_peak_bytes": "JAX allocator peak_bytes_in_use (device.memory_stats(); none on CPU)",
    "nvml_peak_bytes": "NVML device memory used, whole GPU, sampled every 10 ms",
    "nvml_process_peak_bytes": "NVML usedGpuMemory of the worker PID, sampled every 10 ms",
}


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
    return record.skeleton(case, memory_sources=dict(MEMORY_SOURCES), started=record.now())


def run_method(case: Case, rec: dict, checkpoint) -> None:
    """Build the case's PDE and method, then drive its framework's backend (bench.backends)
    through compile, the memory check, training (bench.loop) and the final evaluation."""
    import methods
    import pdes

    cls = methods.get(case.method)
    backend = backends.get(cls.framework)(case)
    rec["env"].update(backend.configure())
    # the roofline's peak of this device and dtype (bench.measure.peak: cached per machine)
    rec["env"].update(peak.device_peak(backend, rec["env"], case.dtype, case.precision, case.device))
    loop.enter(rec, "build", checkpoint)
    pde = pdes.build(case.pde, case.dim, **case.pde_params)
    M = cls(pde, case.n_per_axis, case.method_params, case.dtype)
    if case.inverse:  # inverse mode: observations and trainable coefficients (methods.inverse)
        M.set_inverse(case.inverse, case.seed)
    backend.attach(M)
    rec["pde"] = pde.describe()
    rec["method"] = {"name": case.method, "params": M.params, "framework": M.framework,
                     "points_kind": M.points_kind, **M.facts()}
    rec["size"] = {"n_per_axis": case.n_per_axis, **M.size_info()}
    m = rec["metrics"]

    loop.enter(rec, "compile", checkpoint)
    backend.compile(rec)
    rec["phase"] = "compiled"
    checkpoint()
    faults.inject(case.case_id, "compiled")
    backend.check_fits(rec)

    with backend.memory_probe(rec):
        evaluate = backend.evaluator(pde)
        state = backend.init()
        if "sample_s" in m:  # drawn (and timed) by the backend already
            batch = backend.first_batch()
        else:
            with Timer() as t_s:
                batch = backend.first_batch()
            m["sample_s"] = t_s.s
        r = loop.train(case, M, rec, backend.step, backend.sync, backend.resample, evaluate, state, batch,
                       window=backend.window, checkpoint=checkpoint, fused=backend.fused())
        if r.stop == "nan":
            exact = locate_nan(backend.step, backend.init, backend.first_batch, backend.resample,
                               r.resample_every, r.done)
            m["nan_step"] = exact or r.done
            m["nan_step_exact"] = exact is not None
            m["nan_detected_at_step"] = r.done
            rec["status"], rec["error"] = "nan", f"loss became {r.loss} at step {m['nan_step']}"
            return
        # the final errors, and the method's inference programs timed and costed by the backend
        loop.finish_ok(case, rec, {**evaluate(r.state, final=True), **backend.inference(r.state)})
        m.update(peak.roofline(m, rec["method"], rec["env"]))
        if case.inverse:
            from methods.inverse import time_to_target

            m.update(time_to_target(rec["curve"], case.inverse.get("target_coef_err", 0.0)))
        if pde.n_in == 2 and pde.n_out == 1 and M.evaluate is None:
            rec["snapshot"] = snapshot(pde, lambda pts: backend.predict(r.state, pts))


def snapshot(pde, predict, n=(41, 81)) -> dict:
    """Prediction and exact/reference solution of a (1+1)-d case on a regular grid (for the
    report's heatmaps), as lists: {axes: [t, x], pred: [[...]], exact: [[...]]}. ``predict``
    maps float64 numpy points (k, 2) to numpy values (the backend converts)."""
    import numpy as np

    axes = [np.linspace(lo, hi, k) for (lo, hi), k in zip(pde.bounds(), n)]
    T, X = np.meshgrid(*axes, indexing="ij")
    pts = np.stack([T.ravel(), X.ravel()], -1)
    pred = np.asarray(predict(pts), np.float64).reshape(T.shape)
    ex = np.asarray(pde.exact([pts[:, 0], pts[:, 1]], np), np.float64).reshape(T.shape)
    rnd = lambda a: np.round(a, 6).tolist()  # noqa: E731
    return {"axes": [rnd(a) for a in axes], "pred": rnd(pred), "exact": rnd(ex)}


#: longest run that is replayed step by step to find the first non-finite loss
NAN_REPLAY_MAX_STEPS = 20_000


def locate_nan(step, init, first_batch, resample, resample_every, upto):
    """The first step whose loss is not finite, by replaying the (deterministic) training
    from the start one step at a time, with the batches of the timed run (which only looks
    at the loss at chunk ends): the loop draws new points every ``resample_every`` steps from
    step 2 on (bench.loop). None if the replay does not reproduce it (a non-deterministic GPU
    reduction) or the run is too long to replay. The same in every backend."""
    if upto > NAN_REPLAY_MAX_STEPS:
        return None
    state = init()
    batch = first_batch()
    done, last_draw = 0, 0
    while done < upto:
        if done >= 2 and resample_every and done - last_draw >= resample_every:
            batch = resample(done)
            last_draw = done
        state, metrics = step(state, batch)
        done += 1
        if not math.isfinite(float(metrics["loss"])):
            return done
    return None


def run(case: Case, out: Path) -> dict:
    rec = base_record(case)
    rec["env"]["platform_env"] = setup_platform(case)
    rec["env"].update(menv.host())
    checkpoint = lambda: write_json_atomic(out, rec)  # noqa: E731
    checkpoint()
    t0 = time.perf_counter()
    try:
        run_method(case, rec, checkpoint)
    except Exception as e:  # a failed case is a record, never a crash of the sweep
        rec["failed_phase"] = rec.get("phase")
        if _is_oom(e):
            rec["status"], rec["error"] = "oom", f"{type(e).__name__}: {e}".splitlines()[0][:500]
            rec["metrics"]["oom_phase"] = rec.get("phase")
        else:
            rec["status"] = "error"
            rec["error"] = f"in phase {rec['failed_phase']!r}: {type(e).__name__}: {e}".splitlines()[0][:500]
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
