"""Static facts of a compiled XLA executable: memory analysis and cost analysis.

``memory_analysis()`` gives argument/output/alias/temp bytes of one call: a per-call estimate,
not a process peak, but available on every backend and for sizes that cannot run.
``cost_analysis()`` gives compiler-estimated FLOPs per call; a loop body (``scan``,
``fori_loop``) is counted once, not once per trip (REFERENCES.md 4.3), so methods that loop
must say so (``flops_note``).
"""

from __future__ import annotations

from methods.xla_cost import cost_analysis


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
    """FLOPs, transcendentals and bytes accessed per call (``methods.xla_cost``, the one reader)."""
    out = {"flops_per_step": None, "transcendentals": None, "bytes_accessed": None}
    ca = cost_analysis(compiled)
    if not ca:
        return out
    out["flops_per_step"] = ca.get("flops")
    out["transcendentals"] = ca.get("transcendentals")
    out["bytes_accessed"] = ca.get("bytes accessed")
    return out
