"""Records -> aggregated rows (one per device x PDE x method x size) and markdown tables.

Aggregation rules (REFERENCES.md 4.1, 4.2):
- step time: median and IQR of the per-step timing samples pooled over repeats *and* seeds
  (falls back to the records' ``step_ms`` when a record carries no samples);
- compile-time quantities (compile time, XLA ``memory_analysis`` bytes, ``cost_analysis`` FLOPs)
  come from every record that has them, even one that then ran out of memory: that is how a
  PINN that cannot run still shows what it would need;
- run-time quantities (step time, measured peaks, errors) come from ``ok`` records only; a group
  without any shows its failure (``OOM``, ``NaN``, ``timeout``, ``error``) in their place;
- a metric nobody measured is ``n/a``, never 0.

Records from different devices (``env.device_name``) are never aggregated together.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from bench.variants import config_json, labels, variant_labels

#: memory columns, each its own source (never mixed); description comes from the records
MEMORY_COLUMNS = ["nvml_process_peak_bytes", "nvml_peak_bytes", "device_peak_bytes",
                  "peak_rss_bytes", "xla_temp_bytes", "xla_total_bytes"]
MEMORY_SHORT = {"nvml_process_peak_bytes": "NVML process", "nvml_peak_bytes": "NVML device",
                "device_peak_bytes": "allocator peak", "peak_rss_bytes": "host RSS",
                "xla_temp_bytes": "XLA temp", "xla_total_bytes": "XLA total"}
#: known at compile time: taken from any record, whatever its status
COMPILE_COLUMNS = ["compile_s", "lower_s", "xla_temp_bytes", "xla_total_bytes", "flops_per_step"]
#: measured while running: taken from ok records only
RUN_COLUMNS = ["nvml_process_peak_bytes", "nvml_peak_bytes", "device_peak_bytes", "peak_rss_bytes",
               "rel_l2", "rms_abs", "max_abs", "train_s", "time_to_target_s", "final_loss",
               "steps_done"]
STATUS_LABEL = {"ok": "ok", "oom": "OOM", "nan": "NaN", "timeout": "timeout", "error": "error"}
#: order in which a failure is shown when a group has several
FAIL_ORDER = ["oom", "nan", "timeout", "error"]

SECTION_KEYS = ["device_name", "pde", "dim"]
GROUP_KEYS = ["device_name", "pde", "dim", "dtype", "method", "variant", "n_per_axis"]


def _num(v):
    """A finite float, or None."""
    if v is None or isinstance(v, bool):
        return None
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def _median(vals):
    vals = [x for x in (_num(v) for v in vals) if x is not None]
    return float(np.median(vals)) if vals else None


def record_row(rec: dict) -> dict:
    """The fields of one record the report uses (flat), plus its timing samples and curve."""
    case = rec.get("case", {}) or {}
    m = rec.get("metrics", {}) or {}
    env = rec.get("env", {}) or {}
    pde = rec.get("pde", {}) or {}
    size = rec.get("size", {}) or {}
    dim = case.get("dim", pde.get("dim"))
    n_in = pde.get("n_in")
    if n_in is None and dim is not None:
        n_in = dim + (1 if pde.get("time_dependent", True) else 0)
    n_per_axis = case.get("n_per_axis", size.get("n_per_axis"))
    n_points = size.get("n_points")
    if n_points is None and n_per_axis and n_in:
        n_points = n_per_axis ** n_in
    device = case.get("device") or env.get("backend") or "cpu"
    row = {
        "case_id": rec.get("case_id"), "suite": rec.get("suite"), "pde": case.get("pde"),
        "dim": dim, "n_in": n_in, "method": case.get("method"), "n_per_axis": n_per_axis,
        "n_points": n_points, "seed": case.get("seed"), "steps": case.get("steps"),
        "dtype": case.get("dtype") or env.get("dtype"),
        "device": "gpu" if device in ("gpu", "cuda") else device,
        "device_name": env.get("device_name") or f"{device} (device name not recorded)",
        "status": rec.get("status") or "error", "error": rec.get("error"),
        "config": config_json(case),
        "samples": [x for x in (_num(v) for v in (m.get("step_ms_samples") or [])) if x is not None],
        "step_ms": _num(m.get("step_ms")), "step_ms_iqr": _num(m.get("step_ms_iqr")),
        "curve": rec.get("curve") or [],
    }
    for c in COMPILE_COLUMNS + RUN_COLUMNS:
        row[c] = _num(m.get(c))
    row.update(flops_row(rec))
    return row


# ---------------------------------------------------------------- FLOPs (one definition: xla.step_flops)

def flops_row(rec: dict) -> dict:
    """``flops_per_step`` with the method's loop correction applied, and the custom calls it
    leaves out (``flops_uncounted_calls``, "" when none: then the figure is not a lower bound)."""
    from bench.measure.xla import step_flops

    flops, calls = step_flops(rec.get("metrics") or {}, rec.get("method") or {})
    return {"flops_per_step": _num(flops), "flops_uncounted_calls": ", ".join(calls)}


def group_calls(g: pd.DataFrame) -> str:
    """The uncounted custom calls of a group of records (union)."""
    calls = {c.strip() for s in g.get("flops_uncounted_calls", []) for c in str(s or "").split(",")}
    return ", ".join(sorted(c for c in calls if c))


def flops_cell(a) -> str:
    """GFLOP per step; ">= x" when custom calls were left out of the count."""
    v = _num(a["flops_per_step"])
    if v is None:
        return "n/a"
    return (">= " if a.get("flops_uncounted_calls") else "") + fmt(v / 1e9)


def flops_ratio_bound(base_calls, calls) -> str:
    """Which way an uncounted call biases baseline / method FLOPs: the method's makes the ratio an
    upper bound ("<="), the baseline's a lower bound (">="), both: no bound ("~")."""
    return {(False, False): "", (True, False): ">= ", (False, True): "<= ", (True, True): "~"}[
        (bool(base_calls), bool(calls))]


def flops_footnote(aggs: pd.DataFrame) -> str:
    """One line naming the custom calls behind every ">=" FLOP figure; "" when there are none."""
    if "flops_uncounted_calls" not in aggs:
        return ""
    parts = [f"{lab}: {c}" for lab, c in aggs.groupby("label")["flops_uncounted_calls"].agg(
        lambda s: group_calls(pd.DataFrame({"flops_uncounted_calls": s}))).items() if c]
    if not parts:
        return ""
    return ("GFLOP/step marked >= is a lower bound: XLA's cost analysis counts 0 FLOPs for the custom "
            "calls " + "; ".join(parts) + ". Loop corrections declared by a method (flops_correction) "
            "are included.")


def records_rows(records: list[dict]) -> pd.DataFrame:
    rows = pd.DataFrame([record_row(r) for r in records])
    if rows.empty:
        return rows
    rows["variant"] = variant_labels(rows)
    rows["label"] = labels(rows["method"], rows["variant"])
    return rows


def aggregate(records: list[dict]) -> pd.DataFrame:
    """One row per (device, PDE, dim, dtype, method variant, n_per_axis)."""
    rows = records_rows(records)
    if rows.empty:
        return rows
    out = []
    for key, g in rows.groupby(GROUP_KEYS, sort=True, dropna=False):
        ok = g[g["status"] == "ok"]
        counts = g["status"].value_counts().to_dict()
        samples = [x for s in ok["samples"] for x in s]
        if samples:
            q1, med, q3 = np.percentile(samples, [25, 50, 75])
            step_ms, step_iqr = float(med), float(q3 - q1)
        else:
            step_ms, step_iqr = _median(ok["step_ms"]), _median(ok["step_ms_iqr"])
        fails = [s for s in FAIL_ORDER if counts.get(s)]
        agg = dict(zip(GROUP_KEYS, key))
        agg.update({
            "label": g["label"].iloc[0], "n_in": g["n_in"].iloc[0],
            "n_points": _median(g["n_points"]), "device": g["device"].iloc[0],
            "n_records": len(g), "n_ok": len(ok), "statuses": counts,
            "failure": fails[0] if fails else None,
            "status_label": status_label(counts),
            "step_ms": step_ms, "step_ms_iqr": step_iqr, "samples": samples,
            "n_samples": len(samples), "steps": _median(g["steps"]),
            "case_ids": list(g["case_id"]), "seeds": sorted(set(g["seed"].dropna())),
            "errors": [e for e in g["error"] if e], "flops_uncounted_calls": group_calls(g),
        })
        for c in COMPILE_COLUMNS:
            agg[c] = _median(g[c])
        for c in RUN_COLUMNS:
            agg[c] = _median(ok[c])
        out.append(agg)
    return pd.DataFrame(out)


def status_label(counts: dict) -> str:
    n = sum(counts.values())
    if counts.get("ok", 0) == n:
        return "ok"
    parts = [f"{STATUS_LABEL.get(s, s)} {counts[s]}/{n}" if n > 1 else STATUS_LABEL.get(s, s)
             for s in ["ok"] + FAIL_ORDER if counts.get(s)]
    return ", ".join(parts)


# ---------------------------------------------------------------- formatting

def fmt(v, kind: str = "num") -> str:
    """Format one value; None/NaN -> "n/a". kind: num (3 s.f.), bytes (binary units), int."""
    v = _num(v)
    if v is None:
        return "n/a"
    if kind == "bytes":
        for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
            if abs(v) < 1024 or unit == "TiB":
                return f"{v:.3g} {unit}"
            v /= 1024
    if kind == "int":
        return f"{int(round(v)):,}"
    if kind == "ratio":
        return f"{v:.3g}x"
    return f"{v:.3g}"


def _fail_or(agg: pd.Series | dict, value, kind="num") -> str:
    """A run-time metric: the value, else the group's failure (OOM/NaN/...), else n/a."""
    if agg["n_ok"] == 0 and agg["failure"]:
        return STATUS_LABEL[agg["failure"]]
    return fmt(value, kind)


def md_table(df: pd.DataFrame) -> str:
    """A GitHub pipe table of already-formatted cells."""
    def cell(x):
        return str(x).replace("|", "\\|").replace("\n", " ")

    cols = list(df.columns)
    lines = ["| " + " | ".join(cell(c) for c in cols) + " |",
             "|" + "|".join("---" for _ in cols) + "|"]
    for _, r in df.iterrows():
        lines.append("| " + " | ".join(cell(r[c]) for c in cols) + " |")
    return "\n".join(lines)


def present_memory_columns(aggs: pd.DataFrame) -> list[str]:
    return [c for c in MEMORY_COLUMNS if c in aggs and aggs[c].notna().any()]


def results_table(aggs: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """The method x size table of one section; returns (formatted table, memory sources left out).

    Memory sources without a single value in the section are left out of the table and named
    below it, so a CPU table is not a wall of n/a columns.
    """
    mem = present_memory_columns(aggs)
    missing = [c for c in MEMORY_COLUMNS if c not in mem]
    multi_dtype = aggs["dtype"].nunique() > 1
    rows = []
    order = aggs.assign(_d=aggs["dtype"].fillna("").astype(str)).sort_values(["label", "_d", "n_per_axis"])
    for _, a in order.iterrows():
        r = {"method": a["label"]}
        if multi_dtype:
            r["dtype"] = a["dtype"]
        seeds = len(a["seeds"])
        r.update({
            "n/axis": fmt(a["n_per_axis"], "int"), "points": fmt(a["n_points"], "int"),
            "seeds": str(seeds) if seeds else "n/a",
            "step ms (median)": _fail_or(a, a["step_ms"]),
            "IQR ms": _fail_or(a, a["step_ms_iqr"]),
            "compile s": fmt(a["compile_s"]),
        })
        for c in mem:
            v = a[c]
            r[MEMORY_SHORT[c]] = fmt(v, "bytes") if c in COMPILE_COLUMNS else _fail_or(a, v, "bytes")
        r["GFLOP/step"] = flops_cell(a)
        r["rel L2"] = _fail_or(a, a["rel_l2"])
        r["status"] = a["status_label"]
        rows.append(r)
    return pd.DataFrame(rows), missing


# ---------------------------------------------------------------- ratios against a baseline

RATIO_FIELDS = [("speedup", "step_ms")] + [(f"mem {MEMORY_SHORT[c]}", c) for c in MEMORY_COLUMNS] + [
    ("FLOP ratio", "flops_per_step")]


def ratio_value(base, other) -> float | None:
    """baseline / method (>1: the method is faster / smaller); None if either is missing."""
    b, o = _num(base), _num(other)
    if b is None or o is None or o <= 0 or b <= 0:
        return None
    return b / o


def mann_whitney(a: list, b: list, min_n: int = 5) -> float | None:
    """Two-sided Mann-Whitney U p-value of two timing-sample sets; None under ``min_n`` each."""
    if len(a) < min_n or len(b) < min_n:
        return None
    from scipy.stats import mannwhitneyu

    return float(mannwhitneyu(a, b, alternative="two-sided").pvalue)


def ratios(aggs: pd.DataFrame, baseline: str) -> pd.DataFrame:
    """Per (device, PDE, dim, dtype, size): each method against ``baseline`` at the same size.

    Ratios are baseline / method, so 10x means ten times faster (or smaller). Never across
    devices or dtypes. Run-time values of failed groups are None, so their ratios are None.
    """
    out = []
    keys = ["device_name", "pde", "dim", "dtype", "n_per_axis"]
    for key, g in aggs.groupby(keys, sort=True, dropna=False):
        bases = g[g["method"] == baseline]
        if bases.empty:
            continue
        b = bases.iloc[0]
        for _, a in g[g["method"] != baseline].iterrows():
            r = dict(zip(keys, key))
            r.update({"label": a["label"], "method": a["method"], "baseline": b["label"],
                      "base_failure": b["failure"] if b["n_ok"] == 0 else None,
                      "failure": a["failure"] if a["n_ok"] == 0 else None,
                      "n_points": a["n_points"], "base_n_points": b["n_points"]})
            for name, col in RATIO_FIELDS:
                r[name] = ratio_value(b[col], a[col])
            r["flops_bound"] = flops_ratio_bound(b.get("flops_uncounted_calls"), a.get("flops_uncounted_calls"))
            r["p_value"] = mann_whitney(b["samples"], a["samples"])
            r["n_samples"] = (len(b["samples"]), len(a["samples"]))
            out.append(r)
    return pd.DataFrame(out)


def ratio_table(rat: pd.DataFrame) -> pd.DataFrame:
    """Formatted ratio rows of one section, plus a 'largest' row per method."""
    cols = [n for n, c in RATIO_FIELDS if n in rat and rat[n].notna().any()]
    rows = []
    for label, g in rat.groupby("label", sort=True):
        for _, r in g.sort_values("n_per_axis").iterrows():
            row = {"method vs baseline": f"{label} vs {r['baseline']}", "n/axis": fmt(r["n_per_axis"], "int")}
            for c in cols:
                row[c] = _ratio_cell(r, c)
            nb, na = r["n_samples"]
            row["Mann-Whitney p (step time)"] = (fmt(r["p_value"]) if r["p_value"] is not None
                                                 else f"n/a (samples {nb}/{na}, need 5)")
            rows.append(row)
        big = {"method vs baseline": f"**largest, {label}**", "n/axis": ""}
        for c in cols:
            vals = g[c].dropna()
            if vals.empty:
                big[c] = "n/a"
            else:
                i = vals.idxmax()
                bound = (g.loc[i].get("flops_bound") or "") if c == "FLOP ratio" else ""
                big[c] = f"**{bound}{fmt(vals[i], 'ratio')}** (n={fmt(g.loc[i, 'n_per_axis'], 'int')})"
        big["Mann-Whitney p (step time)"] = ""
        rows.append(big)
    return pd.DataFrame(rows)


def _ratio_cell(r, col) -> str:
    v = r[col]
    if v is not None and not (isinstance(v, float) and math.isnan(v)):
        return (r.get("flops_bound") or "" if col == "FLOP ratio" else "") + fmt(v, "ratio")
    if col == "FLOP ratio" or col in ("mem XLA temp", "mem XLA total"):
        return "n/a"
    if r["base_failure"]:
        return f"baseline {STATUS_LABEL[r['base_failure']]}"
    if r["failure"]:
        return STATUS_LABEL[r["failure"]]
    return "n/a"
