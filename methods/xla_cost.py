"""The one reader of XLA's ``compiled.cost_analysis()`` (no framework import).

The harness (``bench.measure.xla.cost_stats``) and the methods that cost a sub-computation of
their own (the line-search loss and CG products of KFAC, ENGD, Hessian-free) all read it here: a dict of compiler
estimates per call, or None where the backend has none. Older JAX returned one dict per
computation; the first is the executable's. A loop body is counted once (REFERENCES.md 4.3).
"""

from __future__ import annotations


def cost_analysis(compiled) -> dict | None:
    """``compiled.cost_analysis()`` as one dict (``flops``, ``transcendentals``,
    ``bytes accessed``, ...), or None when unavailable (best effort: never raises)."""
    try:
        ca = compiled.cost_analysis()
    except Exception:
        return None
    if isinstance(ca, (list, tuple)):
        ca = ca[0] if ca else None
    return ca or None


def flops(compiled) -> float | None:
    """Compiler-estimated FLOPs of one call of ``compiled``, or None."""
    ca = cost_analysis(compiled)
    return float(ca["flops"]) if ca and ca.get("flops") is not None else None
