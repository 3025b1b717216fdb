"""Telling apart runs of one method with different settings (the report, the summary, exports).

Two rows of one method on one device, PDE and dimension are *variants* when their settings differ
(method or PDE parameters, steps, dtype, precision, evaluation, budgets); each gets a label naming the
settings that differ, e.g. ``causal [eps=[0.0]]``, so that neither the summary table nor the
report pools a causal run with its eps = 0 ablation. A method run with one setting keeps its
plain name.
"""

from __future__ import annotations

import json

from bench.case import VARIANT_KEYS

#: case keys whose values make two runs of one method different experiments (declared on the
#: ``bench.case.Case`` fields: ``variant=True``)
CONFIG_KEYS = VARIANT_KEYS
#: rows with equal values here are compared for variants
SCOPE = ["device_name", "pde", "dim", "method"]


def config_json(case: dict) -> str:
    """The settings of a case that tell variants apart, as canonical JSON."""
    # an empty inverse table (a forward case) equals a record from before inverse mode existed
    return json.dumps({k: (case.get(k) or None) if k == "inverse" else case.get(k) for k in CONFIG_KEYS},
                      sort_keys=True, default=str)


def _flatten(cfg: dict) -> dict:
    flat = {}
    for k, v in cfg.items():
        if isinstance(v, dict):
            flat.update(v)
        else:
            flat[k] = v
    return flat


def variant_labels(rows):
    """``rows``: a DataFrame with the SCOPE columns and ``config`` (``config_json``). Returns the
    variant of every row ('' where its method ran with one setting in its scope)."""
    import pandas as pd

    out = pd.Series("", index=rows.index, dtype=object)
    for _, g in rows.groupby(SCOPE, dropna=False):
        configs = list(dict.fromkeys(g["config"]))
        if len(configs) < 2:
            continue
        flat = [_flatten(json.loads(c)) for c in configs]
        keys = sorted({k for f in flat for k in f})
        differ = [k for k in keys if len({json.dumps(f.get(k), default=str) for f in flat}) > 1]
        for cfg, f in zip(configs, flat):
            # a setting the suite left out is the method's default (not "None")
            out[g.index[g["config"] == cfg]] = ",".join(
                f"{k}={'default' if f.get(k) is None else f.get(k)}" for k in differ)
    return out


def labels(methods, variants) -> list[str]:
    """``method`` or ``method [variant]`` per row."""
    return [m if not v else f"{m} [{v}]" for m, v in zip(methods, variants)]
