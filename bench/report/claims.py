"""Published claims beside measured values, with a verdict computed from the records.

The claims live in ``results/reference/claims.csv``, one row per claim, each citing paper,
table/figure, setting and error definition (sources: REFERENCES.md 3.1-3.4 at the repository
root). A row states the *exact setting* the claim was made in; only records run in that setting
can decide it. Columns:

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
                    nvml_process_peak_bytes|nvml_peak_bytes, error_ratio rel_l2). FLOPs are
                    the corrected figure (``bench.measure.xla.step_flops``)
baseline_method     the method in the denominator of a ratio (empty for value metrics)
method              the method the claim is about
pde, dim, n_in,     the setting, matched exactly; empty = any. Ratios are taken only between
n_per_axis, dtype   the two methods at the same device, PDE, dim, dtype and n_per_axis
pde_params          PDE parameters the claim needs, ``k=v; k=v`` (v as JSON), e.g. ``c=80``
method_params       the method variant the claim is about, ``k=v; ...`` (matched against the
                    method's resolved parameters, defaults included)
baseline_params     the same for the baseline
inverse_params      the inverse-mode setting the claim needs, ``k=v; ...`` (matched against the
                    case's ``[inverse]`` table: ``noise``, ``n_data``, ``learn``, ...); a forward
                    record has none, so it never matches a claim that names one
n_params            the method's parameter count (the paper's network), e.g. 10065
max_seconds         the wall-clock budget of method and baseline runs (an equal-time claim)
min_steps           records trained for fewer steps cannot test the claim (accuracy claims)
min_runs            a statistic over runs (e.g. mean +- std over 10 seeds): a configuration with
                    fewer ok runs (records) cannot test it
stated_n_per_axis   the only size the claim is stated at (see *sizes*)
value, comparison   the published number; ``>=``: larger is better, ``<=``: smaller is better
tolerance           ``bound`` (default: the wording is "at least"/"up to": one-sided) or
                    ``band`` (a measured value, e.g. "1,394x": tested within ``band``)
band                with ``tolerance = band``: a factor ``2`` (value/2 .. value*2) or a range
                    ``lo..hi``; a measurement better than the band is *exceeded*
comparable          empty, or why pinnbench's quantity is not the paper's (then the verdict is
                    *not comparable*, whatever is measured)
device_class        ``gpu``: a GPU claim; CPU records are shown but cannot reproduce it. ``any``
error_definition    how the published number is defined
note                caveats (secondary sources, inferred settings)
==================  ======================================================================

Verdicts: *reproduced* (the deciding measurement meets the bound or lies in the band), *exceeded*
(better than the band), *not reproduced* (it misses, or the method diverged), *not measurable
here: <why>* (no record in the claim's setting; the first setting that differs is named),
*not comparable: <why>*.

Variants: when two or more variants of a method (or of the baseline) match the claim's setting
at one size, none decides (an ablation must never): the claim has to name the variant in
``method_params``. Every verdict names the case ids of the records that decided it.

Sizes: a claim with ``stated_n_per_axis`` is decided at that size. Measured only below it, a
ratio says something about the stated size only if it grows with size: with at least two
smaller sizes and a strictly increasing ratio, the value at the stated size is taken to be at
least the largest one measured (a lower-bound conclusion: it can reproduce a ">= bound" claim,
or exceed a band, never land inside one). Otherwise, and above the stated size, it is not
measurable here, whichever way the number points.
"""

from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from bench.report.tables import STATUS_LABEL, _num, fmt

REPRODUCED, NOT_REPRODUCED, NOT_MEASURABLE = "reproduced", "not reproduced", "not measurable here"
EXCEEDED, NOT_COMPARABLE = "exceeded", "not comparable"
OUTCOMES = (REPRODUCED, EXCEEDED, NOT_REPRODUCED, NOT_MEASURABLE, NOT_COMPARABLE)
CSV_COLUMNS = ["claim_id", "paper", "source", "setting", "metric", "field", "baseline_method",
               "method", "pde", "dim", "n_in", "n_per_axis", "dtype", "pde_params", "method_params",
               "baseline_params", "inverse_params", "n_params", "max_seconds", "min_steps", "min_runs",
               "stated_n_per_axis", "value", "comparison", "tolerance", "band", "comparable", "device_class", "error_definition", "note"]
RATIO_METRICS = {"speedup": "step_ms", "flops_ratio": "flops_per_step",
                 "memory_ratio": "nvml_process_peak_bytes|nvml_peak_bytes",
                 "error_ratio": "rel_l2", "time_to_target_ratio": "time_to_target_s"}
COMPARISONS = (">=", "<=")
TOLERANCES = ("bound", "band")
DEVICE_CLASSES = ("gpu", "any")
INT_FILTERS = ("dim", "n_in", "n_per_axis")
#: verdict columns of the claims CSV written beside a report
VERDICT_COLUMNS = ["claim_id", "verdict", "measured", "measured_value", "why", "method_case_ids",
                   "baseline_case_ids"]


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
    pde_params: dict = field(default_factory=dict)
    method_params: dict = field(default_factory=dict)
    baseline_params: dict = field(default_factory=dict)
    inverse_params: dict = field(default_factory=dict)
    n_params: int | None = None
    max_seconds: float | None = None
    tolerance: str = "bound"
    band: tuple[float, float] | None = None
    comparable: str = ""
    min_runs: int | None = None

    @property
    def is_ratio(self) -> bool:
        return self.metric in RATIO_METRICS

    def describe_value(self) -> str:
        unit = "x" if self.is_ratio else ""
        if self.tolerance == "band":
            lo, hi = self.band
            return f"{self.value:g}{unit} (band {lo:.3g}..{hi:.3g}{unit})"
        return f"{self.comparison} {self.value:g}{unit}"


@dataclass
class Verdict:
    claim: Claim
    verdict: str
    measured: str
    why: str
    measured_value: float | None = None
    where: dict = field(default_factory=dict)
    method_case_ids: list = field(default_factory=list)
    baseline_case_ids: list = field(default_factory=list)

    @property
    def decided_by(self) -> str:
        ids = list(self.method_case_ids) + list(self.baseline_case_ids)
        return ", ".join(ids) if ids else "none"


def parse_params(text: str, where: str = "") -> dict:
    """``k=v; k=v`` -> dict, each v parsed as JSON when it is JSON (``c=80``, ``eps=[0.0]``)."""
    out = {}
    for part in (p.strip() for p in (text or "").split(";")):
        if not part:
            continue
        if "=" not in part:
            raise ValueError(f"{where}: parameter {part!r} is not k=v")
        k, v = (x.strip() for x in part.split("=", 1))
        try:
            out[k] = json.loads(v)
        except ValueError:
            out[k] = v
    return out


def _band(text: str, value: float, where: str) -> tuple[float, float]:
    try:
        if ".." in text:
            lo, hi = (float(x) for x in text.split("..", 1))
        else:
            f = float(text)
            if f <= 1:
                raise ValueError
            lo, hi = value / f, value * f
    except ValueError:
        raise ValueError(f"{where}: band {text!r} is not a factor > 1 or a range lo..hi") from None
    if not lo <= value <= hi:
        raise ValueError(f"{where}: band {text!r} does not contain the value {value:g}")
    return lo, hi


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
        tol = r.get("tolerance") or "bound"
        if tol not in TOLERANCES:
            raise ValueError(f"{where}: tolerance {tol!r} (valid: {', '.join(TOLERANCES)})")
        metric = r["metric"]
        fields = (r.get("field") or RATIO_METRICS.get(metric) or metric).split("|")
        if metric in RATIO_METRICS and not r.get("baseline_method"):
            raise ValueError(f"{where}: ratio metric {metric!r} needs a baseline_method")
        try:
            value = float(r["value"])
        except ValueError:
            raise ValueError(f"{where}: value {r['value']!r} is not a number") from None
        band = None
        if tol == "band":
            if not r.get("band"):
                raise ValueError(f"{where}: tolerance 'band' needs a band (a factor, e.g. 2, or lo..hi)")
            band = _band(r["band"], value, where)
        filters = {}
        for k in ("pde", "dtype") + INT_FILTERS:
            v = r.get(k, "")
            if v:
                try:
                    filters[k] = int(v) if k in INT_FILTERS else v
                except ValueError:
                    raise ValueError(f"{where}: {k} {v!r} is not an integer") from None
        nums = {}
        for k in ("min_steps", "stated_n_per_axis", "n_params", "max_seconds", "min_runs"):
            v = r.get(k, "")
            try:
                nums[k] = float(v) if v else None
            except ValueError:
                raise ValueError(f"{where}: {k} {v!r} is not a number") from None
        as_int = lambda x: None if x is None else int(x)  # noqa: E731
        out.append(Claim(
            claim_id=r["claim_id"], paper=r.get("paper", ""), source=r.get("source", ""),
            setting=r.get("setting", ""), metric=metric, fields=fields,
            baseline_method=r.get("baseline_method", ""), method=r["method"], filters=filters,
            min_steps=as_int(nums["min_steps"]), value=value, comparison=r["comparison"],
            device_class=dc, error_definition=r.get("error_definition", ""), note=r.get("note", ""),
            stated_n_per_axis=as_int(nums["stated_n_per_axis"]),
            pde_params=parse_params(r.get("pde_params", ""), where),
            method_params=parse_params(r.get("method_params", ""), where),
            baseline_params=parse_params(r.get("baseline_params", ""), where),
            inverse_params=parse_params(r.get("inverse_params", ""), where),
            n_params=as_int(nums["n_params"]), max_seconds=nums["max_seconds"],
            tolerance=tol, band=band, comparable=r.get("comparable", ""),
            min_runs=as_int(nums["min_runs"]),
        ))
    return out


# ---------------------------------------------------------------- the settings of the records

def record_settings(records: list[dict]) -> dict[str, dict]:
    """case_id -> the settings a claim can require: resolved PDE and method parameters (defaults
    included; the suite's values on top), parameter count and wall-clock budget."""
    out = {}
    for r in records or []:
        case = r.get("case") or {}
        method, pde = r.get("method") or {}, r.get("pde") or {}
        out[r.get("case_id")] = {
            "pde_params": {**(pde.get("params") or {}), **(case.get("pde_params") or {})},
            "method_params": {**(method.get("params") or {}), **(case.get("method_params") or {})},
            "inverse_params": dict(case.get("inverse") or {}),
            "n_params": method.get("n_params"),
            "max_seconds": case.get("max_seconds"),
        }
    return out


def _same(a, b) -> bool:
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool):
        return math.isclose(float(a), float(b), rel_tol=1e-9, abs_tol=0.0)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return a == b


def _show_setting(v) -> str:
    if v is None:
        return "not recorded"
    if isinstance(v, float) and v.is_integer():
        return f"{int(v):,}" if abs(v) >= 10_000 else str(int(v))
    if isinstance(v, int):
        return f"{v:,}" if abs(v) >= 10_000 else str(v)
    return json.dumps(v) if isinstance(v, (list, dict)) else str(v)


def _mismatch(settings: dict, claim: Claim, role: str) -> str | None:
    """The first setting of one record (as ``record_settings`` gives it) that differs from what
    the claim needs, in words ("c = 5, the claim needs c = 80"); None when all match."""
    need = []
    need += [("pde_params", k, v) for k, v in claim.pde_params.items()]
    params = claim.method_params if role == "method" else claim.baseline_params
    need += [("method_params", k, v) for k, v in params.items()]
    need += [("inverse_params", k, v) for k, v in claim.inverse_params.items()]
    if role == "method" and claim.n_params is not None:
        need.append(("n_params", "parameters", claim.n_params))
    if claim.max_seconds is not None:
        need.append(("max_seconds", "wall-clock budget (s)", claim.max_seconds))
    for group, k, v in need:
        have = settings.get(group) if group in ("n_params", "max_seconds") else (settings.get(group) or {}).get(k)
        if have is None or not _same(have, v):
            return f"{k} = {_show_setting(have)}, the claim needs {k} = {_show_setting(v)}"
    return None


def _filter(aggs: pd.DataFrame, claim: Claim, settings: dict) -> tuple[pd.DataFrame, str | None]:
    """Apply the claim's setting one filter at a time; the reason names the first that emptied
    the set."""
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
    # PDE parameters, variant, network size, budget: per aggregated row, from its first record
    # (one row = one configuration)
    keep, miss_of = [], {}
    for i, row in df.iterrows():
        role = "method" if row["method"] == claim.method else "baseline"
        ids = row.get("case_ids") or []
        miss = _mismatch(settings.get(ids[0], {}) if ids else {}, claim, role)
        if miss is None:
            keep.append(i)
        else:
            miss_of.setdefault(row["method"], f"{row['pde']}, {row.get('label') or row['method']}: {miss}")
    df = df.loc[keep]
    for m in need:
        if not (df["method"] == m).any():
            return df.iloc[0:0], miss_of.get(m, f"no {m!r} records in the claim's setting")
    checks = []
    if claim.min_steps:  # steps actually trained (a wall-clock budget can stop long before the step budget)
        ran = df["steps_done"].fillna(df["steps"]) if "steps_done" in df else df["steps"]
        checks.append((ran, claim.min_steps, lambda most, who: (
            f"training here{who} ran {fmt(most, 'int')} steps, the claim needs >= {claim.min_steps:,}")))
    if claim.min_runs:  # a statistic over runs (mean +- std over seeds)
        runs = pd.to_numeric(df["n_ok"], errors="coerce") if "n_ok" in df else df["n_records"]
        checks.append((runs, claim.min_runs, lambda most, who: (
            f"{fmt(most, 'int')} ok runs here{who}, the claim is a statistic over >= {claim.min_runs} runs")))
    for have, minimum, why in checks:
        have = have.reindex(df.index).fillna(0)
        kept = df[have >= minimum]
        for m in need:
            if not (kept["method"] == m).any():
                most = have[df["method"] == m].max()
                return df.iloc[0:0], why(most, "" if m == claim.method else f" ({m})")
        df = kept
    return df, None


def _field_value(row, fields: list[str]):
    for f in fields:
        v = _num(row.get(f)) if f in row else None
        if v is not None:
            return v, f
    return None, None


def _one(g: pd.DataFrame, method: str, notes: list[str], where: str):
    """The single matching row of ``method`` in a group, else None (with a note when two or
    more variants match: none of them may decide)."""
    rows = g[g["method"] == method]
    if len(rows) == 1:
        return rows.iloc[0]
    if len(rows) > 1:
        labs = ", ".join(str(x) for x in rows["label"])
        notes.append(f"{where}: {len(rows)} variants of {method} match the claim's setting ({labs}); "
                     "the claim must name one (method_params)")
    return None


def _candidates(df: pd.DataFrame, claim: Claim) -> tuple[list[dict], list[str]]:
    """Measured values (one per device/size) and notes on sizes that gave none."""
    cands, notes = [], []
    keys = ["device_name", "device", "pde", "dim", "dtype", "n_per_axis"]
    for key, g in df.groupby(keys, dropna=False):
        info = dict(zip(keys, key))
        where = f"n={fmt(key[5], 'int')}"
        a = _one(g, claim.method, notes, where)
        b = _one(g, claim.baseline_method, notes, where) if claim.is_ratio else None
        if a is None or (claim.is_ratio and b is None):
            continue
        info["method_case_ids"] = list(a["case_ids"])
        info["baseline_case_ids"] = list(b["case_ids"]) if b is not None else []
        if a["n_ok"] == 0 and a["failure"] == "nan" and (not claim.is_ratio or claim.metric == "error_ratio"):
            worst = (0.0 if claim.is_ratio else (math.inf if claim.comparison == "<=" else -math.inf))
            cands.append({**info, "value": worst, "field": claim.fields[0], "diverged": True})
            continue
        if claim.is_ratio:
            for f in claim.fields:
                bv, av = _num(b.get(f)), _num(a.get(f))
                if bv is not None and av is not None and av > 0:
                    cands.append({**info, "value": bv / av, "field": f})
                    break
            else:
                why = [f"{who} {STATUS_LABEL[r['failure']]}" for who, r in (("baseline", b), ("method", a))
                       if r["n_ok"] == 0 and r["failure"]]
                notes.append(f"{where}: " + (", ".join(why) or f"{'|'.join(claim.fields)} not measured"))
        else:
            v, f = _field_value(a, claim.fields)
            if v is not None:
                cands.append({**info, "value": v, "field": f})
            else:
                failed = a["n_ok"] == 0 and a["failure"]
                notes.append(f"{where}: " + (STATUS_LABEL[a["failure"]] if failed
                                             else f"{'|'.join(claim.fields)} not measured"))
    return cands, notes


def _show(c: dict, claim: Claim) -> str:
    if c.get("diverged"):
        return "NaN (diverged)"
    return fmt(c["value"], "ratio" if claim.is_ratio else "num")


def _better(x: float, y: float, claim: Claim) -> bool:
    return x > y if claim.comparison == ">=" else x < y


def _best(cands: list[dict], claim: Claim) -> dict:
    key = (lambda c: c["value"]) if claim.comparison == ">=" else (lambda c: -c["value"])
    return max(cands, key=key)


def _where(c: dict) -> str:
    return f"{c['pde']}{c['dim']} n={c['n_per_axis']} {c['dtype']} on {c['device_name']}"


def judge(x: float, claim: Claim) -> str:
    """The outcome of one measured value against the claim's tolerance."""
    if claim.tolerance == "band":
        lo, hi = claim.band
        if lo <= x <= hi:
            return REPRODUCED
        return EXCEEDED if _better(x, hi if claim.comparison == ">=" else lo, claim) else NOT_REPRODUCED
    return REPRODUCED if (x >= claim.value if claim.comparison == ">=" else x <= claim.value) else NOT_REPRODUCED


def _verdict(claim, outcome, c, why, notes=()) -> Verdict:
    shown = f"{_show(c, claim)} ({_where(c)})"
    if notes:
        why += "; not deciding: " + "; ".join(notes)
    return Verdict(claim, outcome, shown, why, None if c.get("diverged") else c["value"], c,
                   c.get("method_case_ids", []), c.get("baseline_case_ids", []))


def _at_stated_size(cands: list[dict], claim: Claim, notes) -> Verdict | None:
    """The verdict of a claim stated only at ``stated_n_per_axis`` (None: decide normally on the
    candidates at that size)."""
    at = claim.stated_n_per_axis
    if any(c["n_per_axis"] == at for c in cands):
        return None
    below = sorted((c for c in cands if c["n_per_axis"] < at and not c.get("diverged")),
                   key=lambda c: c["n_per_axis"])
    sizes = ", ".join(fmt(c["n_per_axis"], "int") for c in sorted(cands, key=lambda c: c["n_per_axis"]))
    c = below[-1] if below else _best(cands, claim)
    base = f"stated at n/axis {at}, measured at n/axis {sizes} only"
    vals = [x["value"] for x in below]
    rising = len(below) >= 2 and all(b > a for a, b in zip(vals, vals[1:]))
    if not rising:
        trend = ("no size below it" if not below else "one size below it, no trend" if len(below) < 2
                 else "the ratio does not rise with size")
        return _verdict(claim, NOT_MEASURABLE, c, f"{base} ({trend}): not measurable here either way", notes)
    bound = vals[-1]
    trend = (f"rising with size ({', '.join(fmt(v, 'ratio' if claim.is_ratio else 'num') for v in vals)}), "
             f"so at n/axis {at} it is >= {_show(c, claim)}")
    if claim.tolerance == "band":
        lo, hi = claim.band
        if claim.comparison == ">=" and bound > hi:
            return _verdict(claim, EXCEEDED, c, f"{base}; {trend}, above the band", notes)
        if claim.comparison == "<=" and bound > hi:
            return _verdict(claim, NOT_REPRODUCED, c, f"{base}; {trend}, above the band", notes)
        return _verdict(claim, NOT_MEASURABLE, c, f"{base}; {trend}: a lower bound cannot place it in the band",
                        notes)
    if claim.comparison == ">=" and bound >= claim.value:
        return _verdict(claim, REPRODUCED, c, f"{base}; {trend}, which meets >= {claim.value:g}", notes)
    if claim.comparison == "<=" and bound > claim.value:
        return _verdict(claim, NOT_REPRODUCED, c, f"{base}; {trend}, which misses <= {claim.value:g}", notes)
    return _verdict(claim, NOT_MEASURABLE, c, f"{base}; {trend}: not enough to decide", notes)


def evaluate(claim: Claim, aggs: pd.DataFrame, records: list[dict] | None = None) -> Verdict:
    """The verdict on one claim from aggregated records (see ``tables.aggregate``); ``records``
    (the raw records) give the settings a claim may require (PDE and method parameters,
    parameter count, budget): without them such a claim is not measurable."""
    if claim.comparable:
        return Verdict(claim, NOT_COMPARABLE, "n/a", claim.comparable)
    df, reason = _filter(aggs, claim, record_settings(records or []))
    if reason:
        return Verdict(claim, NOT_MEASURABLE, "n/a", reason)
    cands, notes = _candidates(df, claim)
    if not cands:
        return Verdict(claim, NOT_MEASURABLE, "n/a",
                       "no size where it could be measured: " + "; ".join(notes) if notes
                       else "no measured value")
    if claim.device_class == "gpu":
        gpu = [c for c in cands if c["device"] == "gpu"]
        if not gpu:
            c = _best(cands, claim)
            devs = ", ".join(sorted({x["device_name"] for x in cands}))
            return _verdict(claim, NOT_MEASURABLE, c,
                            f"a GPU claim; these records are from {devs}, whose value is not comparable")
        cands = gpu
    if claim.stated_n_per_axis:
        v = _at_stated_size(cands, claim, notes)
        if v is not None:
            return v
        cands = [c for c in cands if c["n_per_axis"] == claim.stated_n_per_axis]
    c = _best(cands, claim)
    src = f" [{c['field']}]" if len(claim.fields) > 1 else ""
    if c.get("diverged"):
        return _verdict(claim, NOT_REPRODUCED, c, "training diverged (NaN loss)", notes)
    outcome = judge(c["value"], claim)
    rel = {REPRODUCED: "meets", EXCEEDED: "is better than the band of", NOT_REPRODUCED: "misses"}[outcome]
    what = f"best of {len(cands)} matching measurement(s)" if len(cands) > 1 else "the matching measurement"
    return _verdict(claim, outcome, c, f"{what}{src} {rel} {claim.describe_value()}", notes)


def evaluate_all(claims: list[Claim], aggs: pd.DataFrame, records: list[dict] | None = None) -> list[Verdict]:
    return [evaluate(c, aggs, records) for c in claims]


def write_verdicts(verdicts: list[Verdict], path: Path) -> Path:
    """The verdicts as CSV (one row per claim, with the case ids that decided it)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=VERDICT_COLUMNS)
        w.writeheader()
        for v in verdicts:
            w.writerow({"claim_id": v.claim.claim_id, "verdict": v.verdict, "measured": v.measured,
                        "measured_value": "" if v.measured_value is None else repr(v.measured_value),
                        "why": v.why, "method_case_ids": " ".join(v.method_case_ids),
                        "baseline_case_ids": " ".join(v.baseline_case_ids)})
    return path
