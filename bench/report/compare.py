"""``bench compare BASE NEW``: two result sets, configuration by configuration, with a noise model.

Records are matched on their configuration (PDE, dim, dtype, method variant, size: the report's
``tables.GROUP_KEYS`` less the device), so the runs of one configuration (seeds x rounds, each a
fresh worker) on each side are the samples. Compared per configuration: median step time, every
peak-memory source both sides measured, and the final rel. L2 error (all lower-is-better).

A change is a regression only when it is beyond ``threshold`` (relative, for the worse) *and*
outside the noise:

- with at least 2 runs on each side, the noise is the 95% bootstrap CI of the ratio of medians
  NEW / BASE over runs (``tables.ratio_ci``): a regression needs the whole CI above 1;
- with a single run on a side there is no spread over runs; the *single-run rule*, named in the
  output, applies instead: a step-time change must exceed the threshold plus the within-run IQR
  of both sides (relative to their medians); memory and rel. L2 use the threshold alone.

rel. L2 is compared only at equal numbers of steps: never across wall-clock-budget cases
(``max_seconds``) whose step counts differ, where the error depends on the machine's speed.
A configuration ``ok`` in BASE that failed in NEW is a regression. This is the gate of the GPU CI
job: exit 1 on any regression, 0 otherwise.
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from bench.errors import BenchError
from bench.report import tables as mt
from bench.report.tables import MEMORY_COLUMNS, MEMORY_SHORT, _num, fmt, md_table
from bench.store import load_records

METRICS = {"time": [("step_ms", "step ms")],
           "memory": [(c, MEMORY_SHORT[c]) for c in MEMORY_COLUMNS],
           "error": [("rel_l2", "rel L2")]}
#: configuration of a comparison: the report's groups, less the device (a note names it)
MATCH_KEYS = [k for k in mt.GROUP_KEYS if k != "device_name"]
SINGLE_RUN_RULE = ("single-run rule (a side with 1 run has no spread over runs): a step-time change "
                   "counts only beyond the threshold plus both sides' within-run IQR / median; memory "
                   "and rel. L2 use the threshold alone")


def parse_threshold(text: str) -> float:
    """``"10%"`` -> 0.10; ``"0.1"`` -> 0.1. A bare number of 1 or more (``"10"``: 10% or
    1,000%?) is ambiguous and refused, as is anything else that is not a non-negative number."""
    s = str(text).strip()
    try:
        v = float(s[:-1]) / 100 if s.endswith("%") else float(s)
    except ValueError:
        v = None
    if v is None or not math.isfinite(v) or v < 0:
        raise BenchError(f"--threshold {text!r} is not valid (give a percentage like 10% or a "
                         "non-negative fraction like 0.1)")
    if not s.endswith("%") and v >= 1:
        raise BenchError(f"--threshold {text!r} is ambiguous (a percentage or a fraction?): write "
                         f"{s}% or {v / 100:g}")
    return v


def _load(path: Path, suite: str | None, which: str) -> pd.DataFrame:
    path = Path(path)
    if not path.is_dir():
        raise BenchError(f"{which} {str(path)!r} is not a results directory")
    recs = load_records(path, suite)
    if not recs:
        raise BenchError(f"{which} {str(path)!r} holds no records"
                         + (f" for suite {suite!r}" if suite else ""))
    rows = mt.records_rows(recs)
    rows["run_value_step_ms"] = [mt.run_step_ms(r) for r in rows.to_dict("records")]
    rows["run_iqr"] = [mt.run_iqr(r) for r in rows.to_dict("records")]
    rows["max_seconds"] = [_num((r.get("case") or {}).get("max_seconds")) or 0.0 for r in recs]
    for k in MATCH_KEYS:  # a missing key matches a missing key (NaN would match nothing)
        rows[k] = [("n/a" if v is None or (isinstance(v, float) and math.isnan(v)) else v) for v in rows[k]]
    return rows


def _name(key: tuple, g: pd.DataFrame) -> str:
    """A readable name of a configuration: its case_id when it has one run, else the id of its
    first run with the seed/round suffix replaced by the run count."""
    ids = sorted(g["case_id"])
    if len(ids) == 1:
        return ids[0]
    k = dict(zip(MATCH_KEYS, key))
    return f"{k['pde']}{k['dim']}-{g['label'].iloc[0]}-n{k['n_per_axis']}-{k['dtype']}"


def _values(g: pd.DataFrame, key: str) -> list[float]:
    ok = g[g["status"] == "ok"]
    col = "run_value_step_ms" if key == "step_ms" else key
    if col not in ok:
        return []
    return [v for v in (_num(x) for x in ok[col]) if v is not None]


def _verdict(key: str, bv: list[float], nv: list[float], bg, ng, threshold: float) -> tuple[float, str, str]:
    """(relative change of the medians, verdict, how the noise was judged)."""
    bmed, nmed = mt._median(bv), mt._median(nv)
    change = (nmed - bmed) / bmed if bmed > 0 else (0.0 if nmed == bmed else math.inf)
    if len(bv) >= 2 and len(nv) >= 2:
        lo, hi = mt.ratio_ci(nv, bv)  # NEW / BASE
        if lo is None:  # non-positive values: no ratio
            lo, hi = (1 + change, 1 + change)
        noise = f"CI [{lo:.3g}, {hi:.3g}] over runs {len(bv)}/{len(nv)}"
        outside_worse, outside_better = lo > 1, hi < 1
    else:
        extra = 0.0
        if key == "step_ms":
            biqr = mt._median(bg.loc[bg["status"] == "ok", "run_iqr"]) or 0.0
            niqr = mt._median(ng.loc[ng["status"] == "ok", "run_iqr"]) or 0.0
            extra = (biqr / bmed if bmed else 0.0) + (niqr / nmed if nmed else 0.0)
        noise = "single-run rule" + (f" (+{extra * 100:.1f}% within-run IQR)" if extra else "")
        outside_worse = outside_better = abs(change) > threshold + extra
    if change > threshold and outside_worse:
        return change, "regression", noise
    if change < -threshold and outside_better:
        return change, "improved", noise
    if abs(change) > threshold:
        return change, "within noise", noise
    return change, "within threshold", noise


def compare(base_dir: Path, new_dir: Path, threshold: float, suite: str | None = None,
            metrics: tuple[str, ...] = ("time", "memory", "error")) -> tuple[pd.DataFrame, list[str]]:
    """Rows of every compared (configuration, metric) with its relative change, verdict and
    noise judgement; notes."""
    base, new = _load(base_dir, suite, "BASE"), _load(new_dir, suite, "NEW")
    bgroups = dict(iter(base.groupby(MATCH_KEYS, sort=True, dropna=False)))
    ngroups = dict(iter(new.groupby(MATCH_KEYS, sort=True, dropna=False)))
    common = [k for k in bgroups if k in ngroups]
    notes = []
    if not common:
        raise BenchError(f"BASE and NEW have no case_id in common ({len(base)} and {len(new)} records)")
    if len(common) < len(bgroups):
        notes.append(f"{len(bgroups) - len(common)} BASE configuration(s) not in NEW (not compared)")
    if len(common) < len(ngroups):
        notes.append(f"{len(ngroups) - len(common)} NEW configuration(s) not in BASE (not compared)")
    rows, single = [], 0
    for key in sorted(common, key=str):
        bg, ng = bgroups[key], ngroups[key]
        name = _name(key, bg)
        bdev, ndev = (", ".join(sorted(set(g["device_name"]))) for g in (bg, ng))
        if bdev != ndev:
            notes.append(f"{name}: device differs ({bdev} vs {ndev}); timings are not comparable")
        bok, nok = (bg["status"] == "ok").sum(), (ng["status"] == "ok").sum()
        bs, ns = mt.status_label(bg["status"].value_counts().to_dict()), \
            mt.status_label(ng["status"].value_counts().to_dict())
        if bs != ns:
            b_all, n_all = bok == len(bg), nok == len(ng)
            verdict = ("regression" if b_all and not n_all else "improved" if n_all and not b_all
                       else "changed")
            rows.append({"case": name, "metric": "status", "base": bs, "new": ns, "change": None,
                         "verdict": verdict, "noise": ""})
        if bok == 0 or nok == 0:
            continue
        for group in metrics:
            for mkey, label in METRICS[group]:
                bv, nv = _values(bg, mkey), _values(ng, mkey)
                if not bv or not nv:
                    continue
                if mkey == "rel_l2":
                    why = _unequal_steps(bg, ng)
                    if why:
                        notes.append(f"{name}: rel. L2 not compared ({why})")
                        continue
                change, verdict, noise = _verdict(mkey, bv, nv, bg, ng, threshold)
                single += noise.startswith("single-run")
                kind = "bytes" if mkey in MEMORY_COLUMNS else "num"
                rows.append({"case": name, "metric": label, "base": fmt(mt._median(bv), kind),
                             "new": fmt(mt._median(nv), kind), "change": change, "verdict": verdict,
                             "noise": noise})
    if single:
        notes.append(f"{single} comparison(s) under the {SINGLE_RUN_RULE}")
    cols = ["case", "metric", "base", "new", "change", "verdict", "noise"]
    return pd.DataFrame(rows, columns=cols), notes


def _unequal_steps(bg: pd.DataFrame, ng: pd.DataFrame) -> str | None:
    """Why the errors of two groups are not comparable (different numbers of steps), or None."""
    def steps(g):
        ok = g[g["status"] == "ok"]
        done = [v for v in (_num(x) for x in ok["steps_done"]) if v is not None]
        return sorted(set(done)) or sorted({v for v in (_num(x) for x in ok["steps"]) if v is not None})

    sb, sn = steps(bg), steps(ng)
    budget = (bg["max_seconds"] > 0).any() or (ng["max_seconds"] > 0).any()
    if sb == sn and (len(sb) <= 1 or not budget):
        return None
    what = "wall-clock budget, " if budget else ""
    show = lambda s: ",".join(f"{int(x):,}" for x in s) or "n/a"  # noqa: E731
    return f"{what}steps differ: {show(sb)} vs {show(sn)}"


def render(df: pd.DataFrame, notes: list[str], threshold: float, show_all: bool = False) -> str:
    moved = df if show_all else df[df["verdict"] != "within threshold"]
    n_reg = int((df["verdict"] == "regression").sum())
    out = []
    if not moved.empty:
        t = moved.assign(change=[("n/a" if c is None or (isinstance(c, float) and math.isnan(c))
                                  else f"{c * 100:+.1f}%") for c in moved["change"]])
        out += [md_table(t), ""]
    out += [f"note: {n}" for n in notes]
    cases = df["case"].nunique() if not df.empty else 0
    out.append(f"{len(df)} comparisons over {cases} configurations, threshold {threshold * 100:g}%: "
               f"{n_reg} regression(s), {int((df['verdict'] == 'improved').sum())} improvement(s), "
               f"{int((df['verdict'] == 'within noise').sum())} beyond the threshold but within the noise")
    return "\n".join(out)

