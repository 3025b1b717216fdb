"""Seaborn figures of one report section (one device, one PDE and dimension), saved as PNG.

- scaling: step time and each peak-memory source against collocation points, log-log, one
  line per method, the least-squares scaling exponent (slope in log-log) in the legend;
- curves: rel. L2 error against training wall time (the training curves);
- pareto: final rel. L2 against step time, with the non-dominated front.
"""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from bench.report.tables import MEMORY_SHORT, present_memory_columns  # noqa: E402

DPI = 110


def scaling_exponent(x, y) -> float | None:
    """Slope of log(y) against log(x) by least squares; None with < 2 distinct positive x."""
    pts = [(a, b) for a, b in zip(x, y)
           if a is not None and b is not None and np.isfinite(a) and np.isfinite(b) and a > 0 and b > 0]
    if len({a for a, _ in pts}) < 2:
        return None
    lx, ly = np.log([a for a, _ in pts]), np.log([b for _, b in pts])
    return float(np.polyfit(lx, ly, 1)[0])


def _legend_labels(df: pd.DataFrame, col: str) -> pd.Series:
    names = {}
    for label, g in df.groupby("label"):
        k = scaling_exponent(g["n_points"], g[col])
        names[label] = f"{label} (slope {k:.2f})" if k is not None else f"{label} (slope n/a)"
    return df["label"].map(names)


def _lineplot(ax, df: pd.DataFrame, col: str, title: str, ylabel: str) -> bool:
    d = df[["label", "n_points", col]].dropna()
    d = d[(d[col] > 0) & (d["n_points"] > 0)]
    if d.empty:
        ax.set_visible(False)
        return False
    d = d.assign(series=_legend_labels(d, col))
    sns.lineplot(data=d, x="n_points", y=col, hue="series", marker="o", ax=ax, errorbar=None)
    ax.set(xscale="log", yscale="log", xlabel="collocation points", ylabel=ylabel, title=title)
    ax.legend(fontsize=7, title=None)
    return True


def scaling_figure(aggs: pd.DataFrame, path: Path) -> bool:
    """Step time and peak memory (one panel per source with data) against n_points."""
    mem = present_memory_columns(aggs)
    panels = [("step_ms", "step time", "ms / step")] + [
        (c, f"peak memory: {MEMORY_SHORT[c]}", "bytes") for c in mem]
    ncol = min(3, len(panels))
    nrow = math.ceil(len(panels) / ncol)
    fig, axes = plt.subplots(nrow, ncol, figsize=(4.6 * ncol, 3.6 * nrow), squeeze=False)
    drawn = [_lineplot(ax, aggs, c, t, y) for ax, (c, t, y) in zip(axes.flat, panels)]
    for ax in list(axes.flat)[len(panels):]:
        ax.set_visible(False)
    return _save(fig, path) if any(drawn) else _discard(fig)


def curves_frame(rows: pd.DataFrame) -> pd.DataFrame:
    """Training-curve points (with an error) of the given record rows."""
    pts = []
    for _, r in rows.iterrows():
        for p in r["curve"]:
            if p.get("rel_l2") is not None and p.get("train_s") is not None:
                pts.append({"label": r["label"], "size": f"n={r['n_per_axis']}",
                            "case_id": r["case_id"], "train_s": p["train_s"], "rel_l2": p["rel_l2"]})
    return pd.DataFrame(pts)


def curves_figure(rows: pd.DataFrame, path: Path) -> bool:
    d = curves_frame(rows)
    if d.empty:
        return False
    d = d[(d["train_s"] > 0) & (d["rel_l2"] > 0)]
    if d.empty:
        return False
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    sns.lineplot(data=d, x="train_s", y="rel_l2", hue="label", style="size", units="case_id",
                 estimator=None, ax=ax, lw=1.2)
    ax.set(xscale="log", yscale="log", xlabel="training wall time (s, timed steps only)",
           ylabel="rel. L2 error", title="training curves")
    ax.legend(fontsize=7)
    return _save(fig, path)


def pareto_front(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """Points not dominated in (step time, error), both lower-is-better, sorted by time."""
    front, best = [], math.inf
    for t, e in sorted(points):
        if e < best:
            front.append((t, e))
            best = e
    return front


def pareto_figure(aggs: pd.DataFrame, path: Path) -> bool:
    d = aggs[["label", "n_points", "step_ms", "rel_l2"]].dropna()
    d = d[(d["step_ms"] > 0) & (d["rel_l2"] > 0)]
    if d.empty:
        return False
    d = d.assign(n_points=d["n_points"].round().astype(int))
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    sns.scatterplot(data=d, x="step_ms", y="rel_l2", hue="label", size="n_points", ax=ax)
    front = pareto_front(list(zip(d["step_ms"], d["rel_l2"])))
    if len(front) > 1:
        ax.plot(*zip(*front), ls="--", color="0.4", lw=1, label="Pareto front")
    ax.set(xscale="log", yscale="log", xlabel="step time (ms, median)", ylabel="final rel. L2 error",
           title="error vs step time")
    ax.legend(fontsize=7)
    return _save(fig, path)


def _save(fig, path: Path) -> bool:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=DPI, format="png")
    plt.close(fig)
    return True


def _discard(fig) -> bool:
    plt.close(fig)
    return False
