"""Time estimates of cases before they run (``bench run --dry-run``, the live ETA).

An estimate is start-up plus training time, labelled with where it came from, best first:

* ``record``: the wall time of an earlier record of the same case (same case id) in the
  results directory;
* ``flops``: the step budget times an estimated step time, the step's FLOPs (XLA cost
  analysis of the lowered step, no compile, in one helper process) over the FLOP rate this
  method reached in earlier records on this device, else over the machine's measured float32
  matmul rate (then a lower bound: PINN steps run far below the matmul peak);
* ``budget``: the wall-clock budget (``max_seconds``) alone, where the step time is unknown.

A wall-clock budget caps the training part of every estimate. Start-up (worker start, import,
compile) is ``STARTUP_S`` unless a record says otherwise. These are estimates: nothing here is
a measurement, and none of it lands in a record.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

#: seconds a case takes before its first step where nothing better is known (a fresh worker
#: imports JAX and compiles: 3-10 s on a 2-core CPU for the suites' small cases)
STARTUP_S = 6.0
#: the FLOP pass over a suite gives up after this many seconds (then: budget estimates)
FLOPS_TIMEOUT_S = 120.0


@dataclass(frozen=True)
class Estimate:
    seconds: float | None
    source: str  # "record", "flops", "flops (lower bound)", "budget", "unknown"

    def label(self) -> str:
        from bench.progress import fmt_duration

        if self.seconds is None:
            return "unknown"
        return f"~{fmt_duration(self.seconds)} ({self.source})"


def _train_cap(case, seconds: float) -> float:
    return min(seconds, case.max_seconds) if case.max_seconds else seconds


def from_record(case, rec: dict) -> Estimate | None:
    wall = (rec.get("runner") or {}).get("wall_s")
    if rec.get("status") != "ok" or not wall:
        return None
    return Estimate(float(wall), "record")


def method_rates(records: list[dict]) -> dict[tuple[str, str], float]:
    """(method, device) -> median FLOP/s reached in ``ok`` records (FLOPs per step / step time)."""
    import statistics

    rates: dict[tuple[str, str], list[float]] = {}
    for r in records:
        m = r.get("metrics") or {}
        flops, ms = m.get("flops_per_step"), m.get("step_ms")
        if r.get("status") == "ok" and flops and ms:
            key = (r["case"]["method"], r["case"].get("device", "cpu"))
            rates.setdefault(key, []).append(flops / (ms / 1e3))
    return {k: statistics.median(v) for k, v in rates.items()}


def estimate_cases(cases, results: Path | None = None, flops: bool = True) -> dict[str, Estimate]:
    """case_id -> Estimate for every case (see the module docstring for the order)."""
    from bench import store

    records = store.load_records(results) if results is not None and Path(results).is_dir() else []
    by_id = {r.get("case_id"): r for r in records}
    out: dict[str, Estimate] = {}
    todo = []
    for c in cases:
        e = from_record(c, by_id[c.case_id]) if c.case_id in by_id else None
        if e is not None:
            out[c.case_id] = e
        else:
            todo.append(c)
    step_flops = flops_per_step(todo) if (flops and todo) else {}
    rates = method_rates(records)
    peak = matmul_rate() if step_flops else None
    for c in todo:
        f = step_flops.get(c.case_id)
        rate = rates.get((c.method, c.device))
        if f and (rate or peak):
            train = _train_cap(c, c.steps * f / (rate or peak))
            out[c.case_id] = Estimate(STARTUP_S + train, "flops" if rate else "flops (lower bound)")
        elif c.max_seconds:
            out[c.case_id] = Estimate(STARTUP_S + c.max_seconds, "budget")
        else:
            out[c.case_id] = Estimate(None, "unknown")
    return out


def total(estimates: dict[str, Estimate]) -> tuple[float, int]:
    """(sum of the known estimates in seconds, number of unknown ones)."""
    known = [e.seconds for e in estimates.values() if e.seconds is not None]
    return sum(known), len(estimates) - len(known)


# -- the FLOP pass: lowering only, in a helper process ------------------------------------
def flops_per_step(cases) -> dict[str, float]:
    """case_id -> XLA's FLOP estimate of one step, for the JAX cases; {} if the pass fails.
    Runs in a child process on the CPU backend: the parent never starts a JAX backend (on a
    GPU it would take memory from the workers)."""
    jax_cases = [c.to_dict() for c in cases if _framework(c.method) == "jax"]
    if not jax_cases:
        return {}
    env = {**os.environ, "JAX_PLATFORMS": "cpu", "TF_CPP_MIN_LOG_LEVEL": "3"}
    root = str(Path(__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [root, env.get("PYTHONPATH")]))
    try:
        p = subprocess.run([sys.executable, "-m", "bench.estimate"], input=json.dumps(jax_cases),
                           capture_output=True, text=True, timeout=FLOPS_TIMEOUT_S, env=env, cwd=root)
        return {k: float(v) for k, v in json.loads(p.stdout or "{}").items() if v}
    except (subprocess.TimeoutExpired, ValueError, OSError):
        return {}


def _framework(method: str) -> str:
    import methods

    return methods.get(method).framework


def _lowered_flops(d: dict) -> float | None:
    import jax

    import methods
    import pdes
    from bench.measure.xla import cost_stats
    from bench.suite import Case

    case = Case.from_dict(d)
    jax.config.update("jax_enable_x64", case.dtype == "float64")
    pde = pdes.build(case.pde, case.dim, **case.pde_params)
    M = methods.get(case.method)(pde, case.n_per_axis, case.method_params, case.dtype)
    key = jax.random.PRNGKey(0)
    state = jax.eval_shape(M.init, key)
    batch = jax.eval_shape(M.sample, key)
    return cost_stats(jax.jit(M.step).lower(state, batch))["flops_per_step"]


def matmul_rate(n: int = 1024, repeats: int = 5) -> float | None:
    """The machine's float32 matmul rate in FLOP/s (numpy, best of ``repeats``), cached for
    the process. A quick reference for estimates, not a roofline measurement."""
    global _RATE
    if _RATE is None:
        import time

        import numpy as np

        a = np.random.default_rng(0).standard_normal((n, n), dtype=np.float32)
        best = float("inf")
        for _ in range(repeats):
            t = time.perf_counter()
            a @ a
            best = min(best, time.perf_counter() - t)
        _RATE = 2 * n**3 / best if best > 0 else None
    return _RATE


_RATE: float | None = None


def _main() -> int:
    out = {}
    for d in json.loads(sys.stdin.read() or "[]"):
        try:
            out[d["case_id"]] = _lowered_flops(d)
        except Exception:  # an estimate that cannot be made is left out, never fatal
            out[d["case_id"]] = None
    sys.stdout.write(json.dumps(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(_main())
