"""The roofline: each device's measured matmul peak, and how close a step comes to it.

The peak is measured once per machine, device, framework, dtype and matmul precision by a short
micro-benchmark (square ``n x n`` matmuls of growing ``n``, the best of a few synchronised
calls each, 2 n^3 FLOPs per call; a size is skipped once, at the best rate so far, one call
would take more than ``STOP_S`` or the whole more than ``BUDGET_S``: about a second on a CPU)
and cached in ``peak.json`` under ``$PINNBENCH_CACHE_DIR`` (default
``$XDG_CACHE_HOME/pinnbench``, i.e. ``~/.cache/pinnbench``), keyed by a fingerprint of the host
and the device (:func:`fingerprint`); every record's ``env`` carries the peak of its case
(``peak_gflops``, with its key and when it was measured). ``PINNBENCH_PEAK=off`` skips it (the
record says so), ``PINNBENCH_PEAK=remeasure`` measures again. A peak measured on a busy machine
is low: the entry keeps the load average it was measured under, is measured again once the
machine is quieter (:func:`stale`), and keeps the highest rate seen; workers measure one at a
time (a lock beside the cache).

:func:`achieved_gflops` is the one definition of achieved GFLOP/s (the record's
``achieved_gflops`` and every report's column): FLOPs of one optimizer step (``xla.step_flops``:
the compiler's count plus the method's loop correction) over the median step time;
``peak_fraction`` is that over the peak. A FLOP count that is a lower bound (custom calls the
cost analysis leaves out) makes both lower bounds.
"""

from __future__ import annotations

import json
import os
import time
from contextlib import contextmanager
from pathlib import Path

#: matrix sizes tried, smallest first (CPU / GPU)
SIZES = {"cpu": (256, 512, 1024, 2048, 4096), "gpu": (1024, 2048, 4096, 8192)}
#: timed calls per size (the best is kept), after one warm-up call
REPEATS = 3
#: stop growing once one call takes this long, or the whole benchmark this long (seconds)
STOP_S, BUDGET_S = 0.25, 3.0
CACHE_ENV, SWITCH_ENV = "PINNBENCH_CACHE_DIR", "PINNBENCH_PEAK"


def cache_path() -> Path:
    root = os.environ.get(CACHE_ENV)
    if not root:
        base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        root = os.path.join(base, "pinnbench")
    return Path(root) / "peak.json"


def fingerprint(env: dict, framework: str, dtype: str, precision: str) -> str:
    """The cache key: host, CPU model and usable cores, the device, the framework and its
    version, the dtype and the matmul precision (a change of any of them is another peak)."""
    vers = (env.get("versions") or {}).get(framework)
    parts = [env.get("hostname"), env.get("cpu_model"), env.get("cpu_affinity"),
             env.get("device_name") or env.get("device_kind"), f"{framework} {vers}", dtype, precision]
    return " | ".join(str(p) for p in parts)


def measure(program, sync, device: str) -> dict:
    """The micro-benchmark: ``program(n)`` -> a zero-argument callable running one ``n x n``
    matmul (``Backend.matmul_program``), ``sync(out)`` waits for it. Returns the best rate
    (``gflops``) and what was run."""
    from bench.measure.timing import Timer, no_gc

    best, per_size, t0 = 0.0, {}, time.perf_counter()
    for n in SIZES.get(device, SIZES["cpu"]):
        if best and (2.0 * n**3 / (best * 1e9) > STOP_S
                     or time.perf_counter() - t0 + (REPEATS + 1) * 2.0 * n**3 / (best * 1e9) > BUDGET_S):
            break  # the next size, at the best rate so far, would take too long
        call = program(n)
        if call is None:
            return {}
        sync(call())  # warm-up: first-call allocation
        ts = []
        for _ in range(REPEATS):
            with no_gc(), Timer() as t:
                sync(call())
            ts.append(t.s)
        rate = 2.0 * n**3 / max(min(ts), 1e-9) / 1e9
        per_size[str(n)] = rate
        best = max(best, rate)
    return {"gflops": best, "gflops_by_size": per_size, "benchmark_s": time.perf_counter() - t0}


def _read(path: Path) -> dict:
    try:
        d = json.loads(path.read_text())
        return d if isinstance(d, dict) else {}
    except (OSError, ValueError):
        return {}


def _load() -> float | None:
    try:
        return os.getloadavg()[0]
    except OSError:
        return None


def stale(entry: dict, cores, load_now) -> bool:
    """A cached peak measured on a busy machine (1-minute load average at least half the usable
    cores) is measured again once the load is below half of what it was then."""
    then = entry.get("loadavg")
    if then is None or load_now is None or not cores:
        return False
    return then >= 0.5 * float(cores) and load_now < 0.5 * then


@contextmanager
def _locked(path: Path):
    """Hold an exclusive lock next to the cache while measuring, so workers started together
    measure one after the other (and the later ones read the first one's entry) instead of
    contending for the cores; without ``fcntl`` (or an unwritable cache) no lock."""
    try:
        import fcntl

        path.parent.mkdir(parents=True, exist_ok=True)
        fh = open(path.with_suffix(".lock"), "w")
    except (ImportError, OSError):
        yield
        return
    try:
        fcntl.flock(fh, fcntl.LOCK_EX)
        yield
    finally:
        fh.close()  # closing releases the lock


def device_peak(backend, env: dict, dtype: str, precision: str, device: str) -> dict:
    """The case's peak for ``rec["env"]``: ``peak_gflops`` (None when not measured, with
    ``peak_reason``), ``peak_key``, ``peak_measured`` (when), ``peak_loadavg`` (the load then)
    and ``peak_cached``. Measured with ``backend.matmul_program`` on a cache miss (or a
    :func:`stale` entry, or ``PINNBENCH_PEAK=remeasure``) under a lock, then cached (an atomic
    rewrite of the file); a peak is a maximum, so a new measurement never lowers a cached one."""
    switch = os.environ.get(SWITCH_ENV, "").strip().lower()
    if switch in ("off", "0", "no"):
        return {"peak_gflops": None, "peak_reason": f"{SWITCH_ENV}={switch}: not measured"}
    key = fingerprint(env, backend.name, dtype, precision)
    path = cache_path()

    def usable(entry):
        return entry is not None and switch != "remeasure" and not stale(entry, env.get("cpu_affinity"), _load())

    entry = _read(path).get(key)
    cached = usable(entry)
    if not cached:
        with _locked(path):
            entry = _read(path).get(key)  # another worker may have measured it meanwhile
            cached = usable(entry) and switch != "remeasure"
            if not cached:
                try:
                    got = measure(lambda n: backend.matmul_program(n, dtype), backend.sync, device)
                except Exception as e:  # the peak is context, never a reason to fail a case
                    return {"peak_gflops": None, "peak_key": key, "peak_reason":
                            f"micro-benchmark failed: {type(e).__name__}: {e}".splitlines()[0][:300]}
                if not got:
                    return {"peak_gflops": None, "peak_key": key,
                            "peak_reason": f"the {backend.name} backend cannot run a {dtype} matmul here"}
                new = {**got, "measured": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "loadavg": _load()}
                entry = new if entry is None or new["gflops"] >= entry.get("gflops", 0) else entry
                try:
                    path.parent.mkdir(parents=True, exist_ok=True)
                    tmp = path.with_suffix(f".{os.getpid()}.tmp")
                    tmp.write_text(json.dumps({**_read(path), key: entry}, indent=1, sort_keys=True))
                    os.replace(tmp, path)
                except OSError:  # an unwritable cache: measured again next time, never fatal
                    pass
    return {"peak_gflops": entry["gflops"], "peak_key": key, "peak_measured": entry.get("measured"),
            "peak_loadavg": entry.get("loadavg"), "peak_cached": cached, "peak_cache": str(path)}


def achieved_gflops(flops_per_step, step_ms) -> float | None:
    """GFLOP/s of a step: FLOPs per optimizer step over its time in ms; None when either is
    unknown or not positive. The one definition (records and reports)."""
    try:
        f, t = float(flops_per_step), float(step_ms)
    except (TypeError, ValueError):
        return None
    if not (f > 0 and t > 0) or f != f or t != t:
        return None
    return f / (t * 1e-3) / 1e9


def peak_fraction(gflops, peak_gflops) -> float | None:
    """Achieved over peak GFLOP/s; None when either is unknown."""
    try:
        a, p = float(gflops), float(peak_gflops)
    except (TypeError, ValueError):
        return None
    return a / p if a == a and p > 0 else None


def roofline(metrics: dict, method: dict | None, env: dict) -> dict:
    """``achieved_gflops`` and ``peak_fraction`` of a record (loop-corrected FLOPs per step,
    ``xla.step_flops``, over the median ``step_ms``; the peak from ``env``)."""
    from bench.measure.xla import step_flops

    flops, _ = step_flops(metrics or {}, method)
    a = achieved_gflops(flops, (metrics or {}).get("step_ms"))
    return {"achieved_gflops": a, "peak_fraction": peak_fraction(a, (env or {}).get("peak_gflops"))}
