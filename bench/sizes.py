"""Size of a case before anything is built: point count, parameter count, a lower bound of memory.

The runner asks ``oom_record(case)`` before it starts a worker. A case whose inputs alone
cannot fit in the memory of the machine (host RAM, the GPU's memory on a GPU run, or the
case's ``memory_limit_gb``) is recorded ``oom`` with the estimate, not run and not retried
(``oom`` is final), instead of reaching XLA with extents beyond 64 bits (a TypeError from the
shape API, or a SIGABRT "overflow in static extent product") and ending as an ``error`` that
every later run retries.

The estimate is a *lower bound*, so it never calls oom a case that could run:

* points: ``n_per_axis ** n_in`` (``n_in`` = dim, + 1 for time) for every point layout that
  materialises the tensor grid or the scattered points (random: n_in coordinates each; grid:
  at least one output value per grid point), ``n_interior`` where a method sets it;
  ``n_per_axis * n_in`` for the grid-free layout, which never forms the grid;
* parameters: ``width ** 2 * (depth - 1) + width`` (hidden layers of an MLP; one per input
  axis for separable nets counts once), plus ``width * rank``, or the products of
  consecutive ``widths``;
* bytes: (the point values + the parameters) x the dtype's item size (Adam moments,
  activations and derivatives only add to it).

Counts are Python integers, compared through logarithms when they are astronomically large
(``n_per_axis = 2**63 - 1`` with ``dim = 10**6`` has ~10^7 digits): nothing overflows.
"""

from __future__ import annotations

import math
import time

#: counts above 10**LOG_EXACT are handled through their logarithm only
LOG_EXACT = 60


def _log10(x: int) -> float:
    return math.log10(x) if x > 0 else -math.inf


def _power(base: int, exp: int) -> tuple[int | None, float]:
    """``base ** exp`` exactly when it is not huge (else None), and its log10."""
    lg = exp * _log10(base) if base > 0 else -math.inf
    return (base ** exp if lg <= LOG_EXACT else None), lg


def show(exact: int | None, lg: float) -> str:
    if exact is not None:
        return f"{exact:,}" if exact < 10**15 else f"{float(exact):.3g}"
    return f"~1e{lg:.1f}" if lg < 1e6 else f"~10^{lg:.4g}"


def estimate(case) -> dict:
    """Lower bounds of what ``case`` materialises: points, parameters, bytes (each with its
    log10; exact ints where they are not huge)."""
    import methods
    import pdes

    pde_cls = pdes.get(case.pde)
    n_in = case.dim + (1 if getattr(pde_cls, "time_dependent", False) else 0)
    mcls = methods.get(case.method)
    p = mcls.resolve_params(dict(case.method_params))
    kind = mcls.points_kind
    n = int(case.n_per_axis)
    if kind == "grid-free":
        pts, lg_pts = n * n_in, _log10(n * n_in)
        values = pts
    elif p.get("n_interior"):
        pts, lg_pts = int(p["n_interior"]), _log10(int(p["n_interior"]))
        values = pts * n_in
    else:
        pts, lg_pts = _power(n, n_in)
        values = pts * (n_in if kind in ("random", "time-slices") else 1) if pts is not None else None
    lg_values = lg_pts + (math.log10(n_in) if kind in ("random", "time-slices") and n_in > 0 else 0.0)
    w, depth, rank = int(p.get("width") or 0), int(p.get("depth") or 0), int(p.get("rank") or 0)
    widths = [int(x) for x in p.get("widths") or []]
    if widths:
        n_params = sum(a * b for a, b in zip(widths, widths[1:]))
    else:
        n_params = w * w * max(depth - 1, 0) + w + w * rank
    item = 8 if case.dtype == "float64" else 4
    if values is not None:
        n_bytes = (values + n_params) * item
        lg_bytes = _log10(n_bytes)
    else:
        n_bytes, lg_bytes = None, max(lg_values, _log10(max(n_params, 1))) + math.log10(item)
    return {"n_in": n_in, "n_points": pts, "log10_n_points": lg_pts, "n_params": n_params,
            "bytes": n_bytes, "log10_bytes": lg_bytes, "points_kind": kind}


def memory_bytes(case) -> tuple[int, str]:
    """The most memory the case could ever have, and what that is."""
    try:
        import psutil

        total, what = int(psutil.virtual_memory().total), "host memory"
    except Exception:  # pragma: no cover - psutil is a dependency
        import os

        total, what = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"), "host memory"
    if case.device == "gpu":
        from bench.measure.memory import nvml_info

        gpu = nvml_info(0).get("gpu_total_bytes") or 0
        if gpu > total:
            total, what = gpu, "GPU memory"
    if case.memory_limit_gb:
        lim = int(case.memory_limit_gb * 2**30)
        if lim < total:
            total, what = lim, "the memory limit"
    return total, what


def _num(exact: int | None, lg: float):
    """A JSON-friendly count: the int when it fits 64 bits, else a float (None when even
    that overflows)."""
    if exact is not None and exact < 2**63:
        return exact
    return 10.0 ** lg if lg < 308 else None


def oom_record(case) -> dict | None:
    """The ``oom`` record of a case too big for this machine, None when it may fit."""
    try:
        est = estimate(case)
    except Exception:  # the worker reports what is wrong with the case
        return None
    avail, what = memory_bytes(case)
    if est["log10_bytes"] <= _log10(avail) or (est["bytes"] is not None and est["bytes"] <= avail):
        return None
    pts = show(est["n_points"], est["log10_n_points"])
    need = show(est["bytes"], est["log10_bytes"])
    msg = (f"size estimate before compiling: {pts} points (n_per_axis={case.n_per_axis}, n_in={est['n_in']}, "
           f"{est['points_kind']}), {show(est['n_params'], _log10(max(est['n_params'], 1)))} parameters: at "
           f"least {need} bytes, more than the {avail:,} bytes of {what}; not run")
    m = {"estimate_n_points": _num(est["n_points"], est["log10_n_points"]),
         "estimate_log10_n_points": est["log10_n_points"],
         "estimate_n_params": _num(est["n_params"], _log10(max(est["n_params"], 1))),
         "estimate_bytes": _num(est["bytes"], est["log10_bytes"]), "estimate_log10_bytes": est["log10_bytes"],
         "memory_available_bytes": avail, "oom_phase": "estimate"}
    return {"case_id": case.case_id, "suite": case.suite, "case": case.to_dict(), "status": "oom",
            "error": msg, "phase": "estimate", "metrics": m, "curve": [], "env": {},
            "size": {"n_per_axis": case.n_per_axis, "n_points": m["estimate_n_points"],
                     "n_points_kind": est["points_kind"], "estimated": True},
            "runner": {"returncode": None, "wall_s": 0.0, "timeout_s": case.timeout_s,
                       "memory_limit_bytes": int(case.memory_limit_gb * 2**30) or None,
                       "peak_rss_sampled_bytes": None, "stderr_tail": "",
                       "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z")}}
