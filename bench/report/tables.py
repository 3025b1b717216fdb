"""Records -> aggregated rows (one per device x PDE x method x size) and markdown tables.

Aggregation rules (REFERENCES.md 4.1, 4.2):
- the unit of inference is a *run*: one record, i.e. one fresh worker process (one round x seed).
  Timing chunks inside a run are not independent samples (they share the process, its compiled
  program, caches and the machine's load at that moment), so they never enter a test or a CI;
- step time: per cell, the number of runs, the median over runs of each run's median step time,
  and a 95% percentile-bootstrap confidence interval of that median over runs (``bootstrap_ci``;
  none with a single run). The spread inside a run (IQR of its timing chunks, median over runs)
  is shown too, labelled *within-run*;
- ratios against a baseline get a bootstrap CI (runs of both sides resampled independently), and
  a Mann-Whitney U test on one median per run, only with at least ``MIN_RUNS_TEST`` runs a side;
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

from bench.measure.peak import achieved_gflops, peak_fraction
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
               "steps_done", "harness_overhead"]
STATUS_LABEL = {"ok": "ok", "oom": "OOM", "nan": "NaN", "timeout": "timeout", "error": "error"}
#: order in which a failure is shown when a group has several
FAIL_ORDER = ["oom", "nan", "timeout", "error"]

SECTION_KEYS = ["device_name", "pde", "dim"]
GROUP_KEYS = ["device_name", "pde", "dim", "dtype", "method", "variant", "n_per_axis"]
#: a significance test needs at least this many independent runs on each side
MIN_RUNS_TEST = 3
#: bootstrap resamples and the seed of their generator (reports are deterministic)
N_BOOT = 2000
BOOT_SEED = 0


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


def bootstrap_ci(values, level: float = 0.95, n_boot: int = N_BOOT, seed: int = BOOT_SEED):
    """Percentile-bootstrap CI of the median of ``values`` (one number per run): (lo, hi), or
    (None, None) with fewer than 2 values. Seeded, so a report regenerates identically."""
    v = np.asarray([x for x in (_num(x) for x in values) if x is not None], dtype=float)
    if len(v) < 2:
        return None, None
    rng = np.random.default_rng(seed)
    meds = np.median(v[rng.integers(0, len(v), size=(n_boot, len(v)))], axis=1)
    a = (1 - level) / 2
    lo, hi = np.quantile(meds, [a, 1 - a])
    return float(lo), float(hi)


def ratio_ci(base, other, level: float = 0.95, n_boot: int = N_BOOT, seed: int = BOOT_SEED):
    """Bootstrap CI of median(base) / median(other), the runs of each side resampled
    independently; (None, None) unless both sides have at least 2 runs."""
    b = np.asarray([x for x in (_num(x) for x in base) if x is not None and x > 0], dtype=float)
    o = np.asarray([x for x in (_num(x) for x in other) if x is not None and x > 0], dtype=float)
    if len(b) < 2 or len(o) < 2:
        return None, None
    rng = np.random.default_rng(seed)
    mb = np.median(b[rng.integers(0, len(b), size=(n_boot, len(b)))], axis=1)
    mo = np.median(o[rng.integers(0, len(o), size=(n_boot, len(o)))], axis=1)
    a = (1 - level) / 2
    lo, hi = np.quantile(mb / mo, [a, 1 - a])
    return float(lo), float(hi)


def run_step_ms(row) -> float | None:
    """One run's step time: the record's median ``step_ms``, else the median of its samples."""
    v = _num(row.get("step_ms"))
    return v if v is not None else _median(row.get("samples") or [])


def run_iqr(row) -> float | None:
    """One run's within-run spread: the record's ``step_ms_iqr``, else that of its samples."""
    v = _num(row.get("step_ms_iqr"))
    if v is not None:
        return v
    s = row.get("samples") or []
    if len(s) < 2:
        return None
    q1, q3 = np.percentile(s, [25, 75])
    return float(q3 - q1)


def record_row(rec: dict) -> dict:
    """One record as the report reads it: its flat view (``bench.record.flat``, the export's),
    with the report's reading of partial records on top (dim, size and device from the PDE,
    size and env when the case lacks them; measured columns as finite floats or None), plus
    the non-scalar parts: timing samples, curve, variant config and package versions."""
    from bench.record import flat

    row = flat(rec)
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
    row.update({
        "dim": dim, "n_in": n_in, "n_per_axis": n_per_axis, "n_points": n_points,
        "dtype": case.get("dtype") or env.get("dtype"),
        "device": "gpu" if device in ("gpu", "cuda") else device,
        "device_name": env.get("device_name") or f"{device} (device name not recorded)",
        "status": rec.get("status") or "error",
        "config": config_json(case),
        "samples": [x for x in (_num(v) for v in (m.get("step_ms_samples") or [])) if x is not None],
        "step_ms": _num(m.get("step_ms")), "step_ms_iqr": _num(m.get("step_ms_iqr")),
        "curve": rec.get("curve") or [],
        "versions": json_key(env.get("versions") or {}),
    })
    flops = row["flops_per_step"]  # flat's: the compiler's count plus the method's loop correction
    for c in COMPILE_COLUMNS + RUN_COLUMNS:
        row[c] = _num(m.get(c))
    row["flops_per_step"] = _num(flops)
    row["peak_gflops"] = _num(env.get("peak_gflops"))
    return row


# ---------------------------------------------------------------- FLOPs (one definition: xla.step_flops)

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
def json_key(obj) -> str:
    import json

    return json.dumps(obj, sort_keys=True, default=str)


def records_rows(records: list[dict]) -> pd.DataFrame:
    rows = pd.DataFrame([record_row(r) for r in records])
    if rows.empty:
        return rows
    rows["variant"] = variant_labels(rows)
    rows["label"] = labels(rows["method"], rows["variant"])
    return rows


def inverse_columns(rows: pd.DataFrame) -> list[str]:
    """The final coefficient values and errors of inverse-mode records (``final_coef_*``, the
    metrics ``methods.inverse`` names), so claims on identified coefficients can read them."""
    return [c for c in rows.columns if str(c).startswith("final_coef_")]


def aggregate(records: list[dict]) -> pd.DataFrame:
    """One row per (device, PDE, dim, dtype, method variant, n_per_axis)."""
    rows = records_rows(records)
    if rows.empty:
        return rows
    out = []
    for key, g in rows.groupby(GROUP_KEYS, sort=True, dropna=False):
        ok = g[g["status"] == "ok"]
        counts = g["status"].value_counts().to_dict()
        okd = ok.to_dict("records")
        run_ms = [v for v in (run_step_ms(r) for r in okd) if v is not None]
        lo, hi = bootstrap_ci(run_ms)
        fails = [s for s in FAIL_ORDER if counts.get(s)]
        agg = dict(zip(GROUP_KEYS, key))
        agg.update({
            "label": g["label"].iloc[0], "n_in": g["n_in"].iloc[0],
            "n_points": _median(g["n_points"]), "device": g["device"].iloc[0],
            "n_records": len(g), "n_ok": len(ok), "statuses": counts,
            "failure": fails[0] if fails else None,
            "status_label": status_label(counts),
            "n_runs": len(run_ms), "run_ms": run_ms,
            "step_ms": _median(run_ms), "step_ms_lo": lo, "step_ms_hi": hi,
            "step_ms_iqr": _median([run_iqr(r) for r in okd]),
            "steps": _median(g["steps"]),
            "case_ids": list(g["case_id"]), "seeds": sorted(set(g["seed"].dropna())),
            "errors": [e for e in g["error"] if e], "flops_uncounted_calls": group_calls(g),
            "git_commits": sorted({c for c in g["git_commit"] if c}),
            "versions_seen": sorted({v for v in g["versions"] if v and v != "{}"}),
        })
        for c in COMPILE_COLUMNS:
            agg[c] = _median(g[c])
        for c in RUN_COLUMNS:
            agg[c] = _median(ok[c])
        for c in inverse_columns(rows):  # the identified coefficients (inverse mode), per cell
            agg[c] = _median(ok[c])
        # the roofline of the cell (bench.measure.peak: the one definition): its FLOPs per step
        # over its median step time, and that over the device's measured peak (records older
        # than the peak have none)
        agg["peak_gflops"] = _median(ok["peak_gflops"])
        agg["achieved_gflops"] = achieved_gflops(agg["flops_per_step"], agg["step_ms"])
        agg["peak_fraction"] = peak_fraction(agg["achieved_gflops"], agg["peak_gflops"])
        out.append(agg)
    return pd.DataFrame(out)


def mixed_versions(aggs: pd.DataFrame) -> str | None:
    """A warning when the rows of ``aggs`` come from more than one git commit or package set
    (their numbers were produced by different code); None when they all agree."""
    if aggs.empty:
        return None
    commits = sorted({c for cs in aggs.get("git_commits", []) for c in cs})
    vers = sorted({v for vs in aggs.get("versions_seen", []) for v in vs})
    parts = []
    if len(commits) > 1:
        parts.append(f"{len(commits)} git commits ({', '.join(c[:12] for c in commits)})")
    if len(vers) > 1:
        parts.append(f"{len(vers)} different package version sets")
    if not parts:
        return None
    return "**Mixed code versions:** the records of this table come from " + " and ".join(parts) + \
        "; differences between rows may be differences between code versions."


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
        return f"{v:,.0f}x" if abs(v) >= 1000 else f"{v:.3g}x"
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
    # the roofline's peak and the harness overhead exist from their introduction on: columns of
    # a section whose records have them (a report of older records keeps its columns)
    has_peak = "peak_fraction" in aggs and aggs["peak_fraction"].notna().any()
    has_overhead = "harness_overhead" in aggs and aggs["harness_overhead"].notna().any()
    rows = []
    order = aggs.assign(_d=aggs["dtype"].astype(object).fillna("").astype(str))
    order = order.sort_values(["label", "_d", "n_per_axis"])
    for _, a in order.iterrows():
        r = {"method": a["label"]}
        if multi_dtype:
            r["dtype"] = a["dtype"]
        seeds = len(a["seeds"])
        r.update({
            "n/axis": fmt(a["n_per_axis"], "int"), "points": fmt(a["n_points"], "int"),
            "seeds": str(seeds) if seeds else "n/a", "runs": str(a["n_runs"]),
            "step ms (median)": _fail_or(a, a["step_ms"]),
            "95% CI ms": _fail_or(a, None) if a["n_ok"] == 0 else ci_cell(a["step_ms_lo"], a["step_ms_hi"],
                                                                          a["n_runs"]),
            "within-run IQR ms": _fail_or(a, a["step_ms_iqr"]),
            "compile s": fmt(a["compile_s"]),
        })
        for c in mem:
            v = a[c]
            r[MEMORY_SHORT[c]] = fmt(v, "bytes") if c in COMPILE_COLUMNS else _fail_or(a, v, "bytes")
        r["GFLOP/step"] = flops_cell(a)
        r["GFLOP/s"] = _fail_or(a, None) if a["n_ok"] == 0 else (
            (">= " if a.get("flops_uncounted_calls") and _num(a["achieved_gflops"]) is not None else "")
            + fmt(a["achieved_gflops"]))
        if has_peak:
            r["% of peak"] = _fail_or(a, None if a["peak_fraction"] is None else 100 * a["peak_fraction"])
        if has_overhead:
            r["harness %"] = _fail_or(a, None if a["harness_overhead"] is None else 100 * a["harness_overhead"])
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


def ci_cell(lo, hi, n_runs: int, kind: str = "num") -> str:
    """``[lo, hi]``, or why there is no interval (a single run has no spread over runs)."""
    if _num(lo) is None or _num(hi) is None:
        return "n/a (1 run)" if n_runs == 1 else "n/a" if n_runs == 0 else f"n/a ({n_runs} runs)"
    return f"[{fmt(lo, kind)}, {fmt(hi, kind)}]"


def no_test_label(n_base: int, n_other: int) -> str:
    """Why no test is shown: ``1 run: no test`` / ``2 runs: no test`` (the smaller side)."""
    k = min(n_base, n_other)
    return f"{k} run{'' if k == 1 else 's'}: no test"


def mann_whitney(a: list, b: list, min_n: int = MIN_RUNS_TEST) -> float | None:
    """Two-sided Mann-Whitney U p-value of two sets of *run* medians (one number per
    independent run, never the timing chunks of one run); None under ``min_n`` runs a side."""
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
            r["speedup_lo"], r["speedup_hi"] = ratio_ci(b["run_ms"], a["run_ms"])
            r["p_value"] = mann_whitney(b["run_ms"], a["run_ms"])
            r["n_runs"] = (len(b["run_ms"]), len(a["run_ms"]))
            out.append(r)
    return pd.DataFrame(out)


#: the test column of the ratio table: one median per run, never the chunks of one run
P_COLUMN = "Mann-Whitney p (step time, run medians)"


def ratio_table(rat: pd.DataFrame) -> pd.DataFrame:
    """Formatted ratio rows of one section, plus a 'largest' row per method."""
    cols = [n for n, c in RATIO_FIELDS if n in rat and rat[n].notna().any()]
    rows = []
    for label, g in rat.groupby("label", sort=True):
        for _, r in g.sort_values("n_per_axis").iterrows():
            row = {"method vs baseline": f"{label} vs {r['baseline']}", "n/axis": fmt(r["n_per_axis"], "int")}
            nb, na = r["n_runs"]
            for c in cols:
                row[c] = _ratio_cell(r, c)
                if c == "speedup":
                    row["speedup 95% CI"] = (ci_cell(r["speedup_lo"], r["speedup_hi"], min(nb, na), "ratio")
                                             if r[c] is not None and not pd.isna(r[c]) else "n/a")
            row["runs (base/method)"] = f"{nb}/{na}"
            row[P_COLUMN] = fmt(r["p_value"]) if r["p_value"] is not None else no_test_label(nb, na)
            rows.append(row)
        big = {"method vs baseline": f"**largest, {label}**", "n/axis": ""}
        for c in cols:
            if c == "speedup":
                big["speedup 95% CI"] = ""
            vals = g[c].dropna()
            if vals.empty:
                big[c] = "n/a"
            else:
                i = vals.idxmax()
                bound = (g.loc[i].get("flops_bound") or "") if c == "FLOP ratio" else ""
                big[c] = f"**{bound}{fmt(vals[i], 'ratio')}** (n={fmt(g.loc[i, 'n_per_axis'], 'int')})"
        big["runs (base/method)"] = ""
        big[P_COLUMN] = ""
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
