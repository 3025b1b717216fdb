"""``bench compare BASE NEW``: two result sets, case by case (matched on ``case_id``).

Compared per case: median step time, every peak-memory source both sides measured, and the
final rel. L2 error (all lower-is-better). A change of more than ``threshold`` (relative) for
the worse is a regression; so is a case that was ``ok`` in BASE and is not in NEW. This is the
gate of the GPU CI job: exit 1 on any regression, 0 otherwise.
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from bench.errors import BenchError
from bench.report.tables import MEMORY_COLUMNS, MEMORY_SHORT, STATUS_LABEL, _num, fmt, md_table
from bench.store import load_records

METRICS = {"time": [("step_ms", "step ms")],
           "memory": [(c, MEMORY_SHORT[c]) for c in MEMORY_COLUMNS],
           "error": [("rel_l2", "rel L2")]}


def parse_threshold(text: str) -> float:
    """``"10%"`` -> 0.10; ``"0.1"`` -> 0.1. BenchError on anything else."""
    s = str(text).strip()
    try:
        v = float(s[:-1]) / 100 if s.endswith("%") else float(s)
    except ValueError:
        v = None
    if v is None or not math.isfinite(v) or v < 0:
        raise BenchError(f"--threshold {text!r} is not valid (give a percentage like 10% or a "
                         "non-negative fraction like 0.1)")
    return v


def _load(path: Path, suite: str | None, which: str) -> dict[str, dict]:
    path = Path(path)
    if not path.is_dir():
        raise BenchError(f"{which} {str(path)!r} is not a results directory")
    recs = load_records(path, suite)
    if not recs:
        raise BenchError(f"{which} {str(path)!r} holds no records"
                         + (f" for suite {suite!r}" if suite else ""))
    return {r["case_id"]: r for r in recs}


def compare(base_dir: Path, new_dir: Path, threshold: float, suite: str | None = None,
            metrics: tuple[str, ...] = ("time", "memory", "error")) -> tuple[pd.DataFrame, list[str]]:
    """Rows of every compared (case, metric) with its relative change and verdict; notes."""
    base, new = _load(base_dir, suite, "BASE"), _load(new_dir, suite, "NEW")
    common = [c for c in base if c in new]
    notes = []
    if not common:
        raise BenchError(f"BASE and NEW have no case_id in common ({len(base)} and {len(new)} records)")
    if len(common) < len(base):
        notes.append(f"{len(base) - len(common)} BASE case(s) not in NEW (not compared)")
    if len(common) < len(new):
        notes.append(f"{len(new) - len(common)} NEW case(s) not in BASE (not compared)")
    rows = []
    for cid in sorted(common):
        b, n = base[cid], new[cid]
        bdev, ndev = ((r.get("env") or {}).get("device_name") for r in (b, n))
        if bdev != ndev:
            notes.append(f"{cid}: device differs ({bdev} vs {ndev}); timings are not comparable")
        bs, ns = b.get("status"), n.get("status")
        if bs != ns:
            verdict = "regression" if bs == "ok" else ("improved" if ns == "ok" else "changed")
            rows.append({"case": cid, "metric": "status", "base": STATUS_LABEL.get(bs, bs),
                         "new": STATUS_LABEL.get(ns, ns), "change": None, "verdict": verdict})
        if bs != "ok" or ns != "ok":
            continue
        bm, nm = b.get("metrics") or {}, n.get("metrics") or {}
        for group in metrics:
            for key, label in METRICS[group]:
                bv, nv = _num(bm.get(key)), _num(nm.get(key))
                if bv is None or nv is None:
                    continue
                change = (nv - bv) / bv if bv > 0 else (0.0 if nv == bv else math.inf)
                verdict = ("regression" if change > threshold else
                           "improved" if change < -threshold else "within threshold")
                kind = "bytes" if key in MEMORY_COLUMNS else "num"
                rows.append({"case": cid, "metric": label, "base": fmt(bv, kind), "new": fmt(nv, kind),
                             "change": change, "verdict": verdict})
    return pd.DataFrame(rows, columns=["case", "metric", "base", "new", "change", "verdict"]), notes


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
    out.append(f"{len(df)} comparisons over {cases} cases, threshold {threshold * 100:g}%: "
               f"{n_reg} regression(s), {int((df['verdict'] == 'improved').sum())} improvement(s)")
    return "\n".join(out)
