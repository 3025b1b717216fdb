"""Static facts of a compiled XLA executable: memory analysis and cost analysis.

``memory_analysis()`` gives argument/output/alias/temp bytes of one call: a per-call estimate,
not a process peak, but available on every backend and for sizes that cannot run.
``cost_analysis()`` gives compiler-estimated FLOPs per call; a loop body (``scan``,
``fori_loop``, ``lax.map``) is counted once, not once per trip (the JAX ahead-of-time docs call
the analysis best effort), so a method that loops must say so (``flops_note``) and may declare
the missing FLOPs (``flops_correction`` in its ``describe()``), which :func:`step_flops` adds.
Custom calls (LAPACK ``eigh`` / ``cholesky`` on the CPU, cuSOLVER on a GPU) are opaque to the
cost analysis and count 0 FLOPs: :func:`uncounted_custom_calls` names them from the compiled HLO
text, and a FLOP figure of an executable that has them is a lower bound.
"""

from __future__ import annotations

import re

from methods.xla_cost import cost_analysis

#: custom-call targets that do no arithmetic (sharding annotations) or that XLA's GPU cost
#: analysis does count (cuBLAS / cuDNN GEMMs and convolutions): not reported as uncounted
COUNTED_OR_FREE = ("Sharding", "SPMDFullToShardShape", "SPMDShardToFullShape", "__cublas", "__cudnn",
                   "annotate_device_placement")
_TARGET = re.compile(r'custom_call_target="([^"]+)"')


def uncounted_custom_calls(hlo_text: str) -> list[str]:
    """The custom-call targets in an HLO module's text whose FLOPs the cost analysis leaves out,
    sorted, each once (e.g. ``['lapack_dpotrf_ffi', 'lapack_dsyevd_ffi']``)."""
    found = set(_TARGET.findall(hlo_text or ""))
    return sorted(t for t in found if not t.startswith(COUNTED_OR_FREE))


def step_flops(metrics: dict, method: dict | None = None) -> tuple[float | None, list[str]]:
    """FLOPs of one training step as every report shows them: the compiler's count plus the
    method's declared loop correction (``describe()['flops_correction']``: the trips of a
    ``lax.map``/``scan`` body the cost analysis counts once), and the custom calls it leaves out
    plus any loop whose trips the method cannot state (``flops_uncounted_loops``) (non-empty:
    the figure is a lower bound). ``(None, calls)`` when nothing was counted."""
    raw = (metrics or {}).get("flops_per_step")
    calls = list((metrics or {}).get("flops_uncounted_calls") or [])
    if raw is None:
        return None, calls
    loops = (method or {}).get("flops_uncounted_loops")
    if loops:  # a while_loop whose trip count the method cannot state (e.g. L-BFGS's line search)
        calls.append(f"{loops}: loop trips not counted")
    corr = (method or {}).get("flops_correction")
    return float(raw) + (float(corr) if corr else 0.0), calls



def memory_stats(compiled) -> dict:
    out = {"xla_temp_bytes": None, "xla_arg_bytes": None, "xla_out_bytes": None,
           "xla_alias_bytes": None, "xla_code_bytes": None, "xla_total_bytes": None}
    try:
        ma = compiled.memory_analysis()
    except Exception:
        ma = None
    if ma is None:
        return out
    get = lambda n: getattr(ma, n, None)  # noqa: E731
    out.update(xla_temp_bytes=get("temp_size_in_bytes"), xla_arg_bytes=get("argument_size_in_bytes"),
               xla_out_bytes=get("output_size_in_bytes"), xla_alias_bytes=get("alias_size_in_bytes"),
               xla_code_bytes=get("generated_code_size_in_bytes"))
    parts = [out["xla_temp_bytes"], out["xla_arg_bytes"], out["xla_out_bytes"]]
    if all(p is not None for p in parts):
        out["xla_total_bytes"] = int(sum(parts) - (out["xla_alias_bytes"] or 0))
    return out


def cost_stats(compiled) -> dict:
    """FLOPs, transcendentals and bytes accessed per call (``methods.xla_cost``, the one reader),
    and the custom calls the count leaves out (``flops_uncounted_calls``)."""
    out = {"flops_per_step": None, "transcendentals": None, "bytes_accessed": None,
           "flops_uncounted_calls": None}
    try:
        out["flops_uncounted_calls"] = uncounted_custom_calls(compiled.as_text())
    except Exception:  # best effort: an executable without HLO text leaves it unknown
        pass
    ca = cost_analysis(compiled)
    if not ca:
        return out
    out["flops_per_step"] = ca.get("flops")
    out["transcendentals"] = ca.get("transcendentals")
    out["bytes_accessed"] = ca.get("bytes accessed")
    return out
