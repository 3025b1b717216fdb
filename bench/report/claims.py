"""Published claims beside measured values, with a verdict computed from the records.

The claims live in ``results/reference/claims.csv``, one row per claim, each citing paper,
table/figure, setting and error definition (sources: REFERENCES.md 3.1-3.4 at the repository root). Columns:

==================  ======================================================================
claim_id            unique id
paper, source       citation and the table/figure/notebook the number comes from
setting             the published setting, in words
metric              ``speedup`` (baseline step_ms / method step_ms), ``flops_ratio``,
                    ``memory_ratio``, ``error_ratio`` (baseline error / method error),
                    ``time_to_target_ratio``; or ``value`` metrics, one of the record fields
                    (``rel_l2``, ``rms_abs``, ``step_ms``, ``n_points``, ...)
field               record field(s) the metric reads, ``a|b`` = first available in that order
                    (defaults: speedup step_ms, flops_ratio flops_per_step, memory_ratio
                    nvml_process_peak_bytes|nvml_peak_bytes, error_ratio rel_l2)
baseline_method     the method in the denominator of a ratio (empty for value metrics)
method              the method the claim is about
pde, dim, n_in,     filters on the records; empty = any. Ratios are taken only between the two
n_per_axis, dtype   methods at the same device, PDE, dim, dtype and n_per_axis
min_steps           records trained for fewer steps cannot test the claim (accuracy claims)
stated_n_per_axis   the size an "up to" ratio is stated at: a miss measured only at smaller sizes
                    cannot refute it (the ratios grow with size), so it is not measurable there
value, comparison   the published number and how the measurement must compare (>= or <=)
device_class        ``gpu``: a GPU claim; CPU records are shown but cannot reproduce it. ``any``
error_definition    how the published number is defined
note                caveats (secondary sources, inferred settings)
==================  ======================================================================

Verdict: *reproduced* when the best matching measurement (largest for ``>=``, smallest for
``<=``, over the matching sizes: the claims are "up to" figures) meets the value; *not
reproduced* when it does not (or the method diverged); *not measurable here* when no record
can test it, with the filter that ruled them out.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from bench.report.tables import STATUS_LABEL, _num, fmt

REPRODUCED, NOT_REPRODUCED, NOT_MEASURABLE = "reproduced", "not reproduced", "not measurable here"
CSV_COLUMNS = ["claim_id", "paper", "source", "setting", "metric", "field", "baseline_method",
               "method", "pde", "dim", "n_in", "n_per_axis", "dtype", "min_steps", "value",
               "comparison", "device_class", "error_definition", "note", "stated_n_per_axis"]
RATIO_METRICS = {"speedup": "step_ms", "flops_ratio": "flops_per_step",
                 "memory_ratio": "nvml_process_peak_bytes|nvml_peak_bytes",
                 "error_ratio": "rel_l2", "time_to_target_ratio": "time_to_target_s"}
COMPARISONS = (">=", "<=")
DEVICE_CLASSES = ("gpu", "any")
INT_FILTERS = ("dim", "n_in", "n_per_axis")


@dataclass
class Claim:
    claim_id: str
    paper: str
    source: str
    setting: str
    metric: str
    fields: list[str]
    baseline_method: str
    method: str
    filters: dict
    min_steps: int | None
    value: float
    comparison: str
    device_class: str
    error_definition: str
    note: str
    stated_n_per_axis: int | None = None

    @property
    def is_ratio(self) -> bool:
        return self.metric in RATIO_METRICS

    def describe_value(self) -> str:
        unit = "x" if self.is_ratio else ""
        return f"{self.comparison} {self.value:g}{unit}"


@dataclass
class Verdict:
    claim: Claim
    verdict: str
    measured: str
    why: str
    measured_value: float | None = None
    where: dict = field(default_factory=dict)


def load_claims(path: Path) -> list[Claim]:
    """Parse and validate the claims CSV (ValueError with the row and column on bad input)."""
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
        header = rows[0].keys() if rows else []
    missing = [c for c in ("claim_id", "metric", "method", "value", "comparison") if c not in header]
    if rows and missing:
        raise ValueError(f"{path}: missing columns {missing} (expected: {', '.join(CSV_COLUMNS)})")
    out, seen = [], set()
    for i, r in enumerate(rows, start=2):
        r = {k: (v or "").strip() for k, v in r.items() if k is not None}
        where = f"{path}:{i} ({r.get('claim_id')})"
        if r["claim_id"] in seen:
            raise ValueError(f"{where}: duplicate claim_id")
        seen.add(r["claim_id"])
        if r["comparison"] not in COMPARISONS:
            raise ValueError(f"{where}: comparison {r['comparison']!r} (valid: {', '.join(COMPARISONS)})")
        dc = r.get("device_class") or "any"
        if dc not in DEVICE_CLASSES:
            raise ValueError(f"{where}: device_class {dc!r} (valid: {', '.join(DEVICE_CLASSES)})")
        metric = r["metric"]
        fields = (r.get("field") or RATIO_METRICS.get(metric) or metric).split("|")
        if metric in RATIO_METRICS and not r.get("baseline_method"):
            raise ValueError(f"{where}: ratio metric {metric!r} needs a baseline_method")
        try:
            value = float(r["value"])
        except ValueError:
            raise ValueError(f"{where}: value {r['value']!r} is not a number") from None
        filters = {}
        for k in ("pde", "dtype") + INT_FILTERS:
            v = r.get(k, "")
            if v:
                try:
                    filters[k] = int(v) if k in INT_FILTERS else v
                except ValueError:
                    raise ValueError(f"{where}: {k} {v!r} is not an integer") from None
        ms, at = r.get("min_steps", ""), r.get("stated_n_per_axis") or ""
        out.append(Claim(
            claim_id=r["claim_id"], paper=r.get("paper", ""), source=r.get("source", ""),
            setting=r.get("setting", ""), metric=metric, fields=fields,
            baseline_method=r.get("baseline_method", ""), method=r["method"], filters=filters,
            min_steps=int(float(ms)) if ms else None, value=value, comparison=r["comparison"],
            device_class=dc, error_definition=r.get("error_definition", ""), note=r.get("note", ""),
            stated_n_per_axis=int(float(at)) if at else None,
        ))
    return out


def _meets(x: float, claim: Claim) -> bool:
    return x >= claim.value if claim.comparison == ">=" else x <= claim.value


def _best(cands: list[dict], claim: Claim) -> dict:
    key = (lambda c: c["value"]) if claim.comparison == ">=" else (lambda c: -c["value"])
    return max(cands, key=key)


def _where(c: dict) -> str:
    return f"{c['pde']}{c['dim']} n={c['n_per_axis']} {c['dtype']} on {c['device_name']}"


def _filter(aggs: pd.DataFrame, claim: Claim) -> tuple[pd.DataFrame, str | None]:
    """Apply the claim's filters one by one; the reason names the filter that emptied the set."""
    need = [claim.method] + ([claim.baseline_method] if claim.is_ratio else [])
    have = sorted(set(aggs["method"])) if not aggs.empty else []
    for m in need:
        if m not in have:
            return aggs.iloc[0:0], (f"no {m!r} records in this result set "
                                    f"(methods here: {', '.join(have) or 'none'})")
    df = aggs[aggs["method"].isin(need)]
    for k, v in claim.filters.items():
        if k in INT_FILTERS:
            col = pd.to_numeric(df[k], errors="coerce")
            avail = sorted({str(int(x)) for x in col.dropna()})
            df = df[col == v]
        else:
            avail = sorted({str(x) for x in df[k].dropna()})
            df = df[df[k].astype(str) == str(v)]
        if df.empty:
            return df, f"no records with {k}={v} (here: {', '.join(avail) or 'none'})"
    if claim.min_steps:
        # steps actually trained (a wall-clock budget can stop long before the step budget)
        ran = df["steps_done"].fillna(df["steps"]) if "steps_done" in df else df["steps"]
        most = ran.max()
        df = df[ran.fillna(0) >= claim.min_steps]
        if df.empty:
            return df, (f"training here ran {fmt(most, 'int')} steps, the claim needs "
                        f">= {claim.min_steps:,}")
    return df, None


def _field_value(row, fields: list[str]):
    for f in fields:
        v = _num(row.get(f)) if f in row else None
        if v is not None:
            return v, f
    return None, None


def _candidates(df: pd.DataFrame, claim: Claim) -> tuple[list[dict], list[str]]:
    """Measured values (one per device/size) and notes on sizes that gave none."""
    cands, notes = [], []
    if claim.is_ratio:
        keys = ["device_name", "device", "pde", "dim", "dtype", "n_per_axis"]
        for key, g in df.groupby(keys, dropna=False):
            b = g[g["method"] == claim.baseline_method]
            a = g[(g["method"] == claim.method) & (g["variant"] == "")]
            a = a if not a.empty else g[g["method"] == claim.method]
            info = dict(zip(keys, key))
            if b.empty or a.empty:
                continue
            b, a = b.iloc[0], a.iloc[0]
            if a["n_ok"] == 0 and a["failure"] == "nan" and claim.metric == "error_ratio":
                cands.append({**info, "value": 0.0, "field": claim.fields[0], "diverged": True})
                continue
            for f in claim.fields:
                bv, av = _num(b.get(f)), _num(a.get(f))
                if bv is not None and av is not None and av > 0:
                    cands.append({**info, "value": bv / av, "field": f})
                    break
            else:
                why = []
                for who, r in (("baseline", b), ("method", a)):
                    if r["n_ok"] == 0 and r["failure"]:
                        why.append(f"{who} {STATUS_LABEL[r['failure']]}")
                notes.append(f"n={key[5]}: " + (", ".join(why) or f"{'|'.join(claim.fields)} not measured"))
    else:
        for _, a in df[df["method"] == claim.method].iterrows():
            info = {k: a[k] for k in ("device_name", "device", "pde", "dim", "dtype", "n_per_axis")}
            if a["n_ok"] == 0 and a["failure"] == "nan":
                cands.append({**info, "value": math.inf if claim.comparison == "<=" else -math.inf,
                              "field": claim.fields[0], "diverged": True})
                continue
            v, f = _field_value(a, claim.fields)
            if v is not None:
                cands.append({**info, "value": v, "field": f})
            else:
                failed = a["n_ok"] == 0 and a["failure"]
                notes.append(f"n={a['n_per_axis']}: " + (STATUS_LABEL[a["failure"]] if failed
                                                        else f"{'|'.join(claim.fields)} not measured"))
    return cands, notes


def _show(c: dict, claim: Claim) -> str:
    if c.get("diverged"):
        return "NaN (diverged)"
    return fmt(c["value"], "ratio" if claim.is_ratio else "num")


def evaluate(claim: Claim, aggs: pd.DataFrame) -> Verdict:
    """The verdict on one claim from aggregated records (see ``tables.aggregate``)."""
    df, reason = _filter(aggs, claim)
    if reason:
        return Verdict(claim, NOT_MEASURABLE, "n/a", reason)
    cands, notes = _candidates(df, claim)
    if not cands:
        return Verdict(claim, NOT_MEASURABLE, "n/a",
                       "no size where both could be measured: " + "; ".join(notes) if notes
                       else "no measured value")
    if claim.device_class == "gpu":
        gpu = [c for c in cands if c["device"] == "gpu"]
        if not gpu:
            c = _best(cands, claim)
            devs = ", ".join(sorted({x["device_name"] for x in cands}))
            return Verdict(claim, NOT_MEASURABLE, f"{_show(c, claim)} ({_where(c)})",
                           f"a GPU claim; these records are from {devs}, whose value is not comparable",
                           c["value"], c)
        cands = gpu
    c = _best(cands, claim)
    shown = f"{_show(c, claim)} ({_where(c)})"
    src = f" [{c['field']}]" if len(claim.fields) > 1 else ""
    if c.get("diverged"):
        return Verdict(claim, NOT_REPRODUCED, shown, "training diverged (NaN loss)", None, c)
    ok = _meets(c["value"], claim)
    largest = max((x["n_per_axis"] for x in cands if x.get("n_per_axis") is not None), default=None)
    if not ok and claim.stated_n_per_axis and largest is not None and largest < claim.stated_n_per_axis:
        return Verdict(claim, NOT_MEASURABLE, shown,
                       f"measured up to n/axis {fmt(largest, 'int')}, below the {claim.stated_n_per_axis} "
                       "the ratio is stated at (it grows with size)", c["value"], c)
    rel = "meets" if ok else "misses"
    why = f"best of {len(cands)} matching measurement(s){src} {rel} {claim.describe_value()}"
    if notes:
        why += "; not measured: " + "; ".join(notes)
    return Verdict(claim, REPRODUCED if ok else NOT_REPRODUCED, shown, why, c["value"], c)


def evaluate_all(claims: list[Claim], aggs: pd.DataFrame) -> list[Verdict]:
    return [evaluate(c, aggs) for c in claims]
