"""Figures of one report section (one device, one PDE and dimension), saved as PNG.

- scaling: step time and each peak-memory source against collocation points, log-log, one line
  per method, the least-squares scaling exponent (slope in log-log) in the legend, and a band on
  step time (95% CI over runs; the within-run IQR where a size has a single run);
- curves: rel. L2 error against training wall time (the training curves);
- pareto: final rel. L2 against step time, with the non-dominated front.

What a reader can rely on across every figure of every report:

- one colour per method, from a fixed palette keyed by the method's name (``method_color``);
  variants of one method share its colour and differ in line style;
- a point of a size that did not run (compiled only, or out of memory: its memory is the
  compiler's estimate or the prediction of an OOM) is drawn hollow and never enters a fitted
  line or slope;
- memory axes in MiB or GiB, never raw bytes; titles name suite, PDE and device;
- a panel with a single point (one size) is not drawn: it shows no scaling.
"""

from __future__ import annotations

import math
import re
import zlib
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from bench.report.tables import MEMORY_SHORT, present_memory_columns  # noqa: E402

DPI = 110
#: fixed colours of the registered methods (colour-blind-safe Okabe-Ito and Tableau tones)
METHOD_COLORS = {
    "pinn": "#0072B2", "spinn": "#D55E00", "pinn-fl": "#009E73", "pinn-torch": "#56B4E9",
    "causal": "#CC79A7", "spinn-causal": "#E69F00", "kfac": "#000000", "kfac-star": "#7F7F7F",
    "nsm": "#8C564B", "nsm-fdpinn": "#BCBD22", "spinn-lowrank": "#9467BD",
}
#: colours for methods not listed above, chosen by a stable hash of the name
EXTRA_COLORS = ["#17BECF", "#FF9DA7", "#9C755F", "#EDC948", "#B07AA1", "#59A14F", "#E15759", "#4E79A7"]
LINESTYLES = ["-", "--", ":", "-."]
#: compile-time quantities: the compiler's estimate, known even for a size that did not run
ESTIMATED = {"xla_temp_bytes", "xla_total_bytes"}


def slug(s: str, n: int = 40) -> str:
    """A file-name-safe form of ``s`` (figure names)."""
    return re.sub(r"[^a-z0-9]+", "-", str(s).lower()).strip("-")[:n].strip("-") or "x"


def method_color(method: str) -> str:
    """The colour of ``method`` in every figure (a variant label ``m [k=v]`` takes ``m``'s)."""
    base = str(method).split(" [", 1)[0]
    return METHOD_COLORS.get(base) or EXTRA_COLORS[zlib.crc32(base.encode()) % len(EXTRA_COLORS)]


def _styles(labels) -> dict:
    """label -> (colour, line style): variants of one method share its colour."""
    out, seen = {}, {}
    for label in sorted(set(labels)):
        base = str(label).split(" [", 1)[0]
        k = seen.get(base, 0)
        seen[base] = k + 1
        out[label] = (method_color(base), LINESTYLES[k % len(LINESTYLES)])
    return out


def scaling_exponent(x, y) -> float | None:
    """Slope of log(y) against log(x) by least squares; None with < 2 distinct positive x."""
    pts = [(a, b) for a, b in zip(x, y)
           if a is not None and b is not None and np.isfinite(a) and np.isfinite(b) and a > 0 and b > 0]
    if len({a for a, _ in pts}) < 2:
        return None
    lx, ly = np.log([a for a, _ in pts]), np.log([b for _, b in pts])
    return float(np.polyfit(lx, ly, 1)[0])


def _legend_labels(df: pd.DataFrame, col: str) -> pd.Series:
    """``label (slope k)`` per row, the slope fitted on the points that ran (``ran`` column, if
    there is one) only."""
    names = {}
    for label, g in df.groupby("label"):
        fit = g[g["ran"]] if "ran" in g else g
        k = scaling_exponent(fit["n_points"], fit[col])
        names[label] = f"{label} (slope {k:.2f})" if k is not None else f"{label} (slope n/a)"
    return df["label"].map(names)


def byte_unit(max_bytes: float) -> tuple[float, str]:
    """(divisor, unit) of a memory axis: MiB below 1 GiB, else GiB."""
    return (2.0**30, "GiB") if max_bytes >= 2**30 else (2.0**20, "MiB")


def _panel(ax, df: pd.DataFrame, col: str, title: str, ylabel: str, styles: dict) -> bool:
    """One log-log panel; False (panel hidden) when it would show fewer than 2 sizes."""
    keep = ["label", "n_points", col, "ran"] + [c for c in ("step_ms_lo", "step_ms_hi", "step_ms_iqr") if c in df]
    d = df[keep].dropna(subset=[col, "n_points"])
    d = d[(d[col] > 0) & (d["n_points"] > 0)]
    if d["n_points"].nunique() < 2:
        ax.set_visible(False)
        return False
    scale, unit = (1.0, ylabel)
    if ylabel == "bytes":
        scale, unit = byte_unit(float(d[col].max()))
    d = d.assign(series=_legend_labels(d, col), y=d[col] / scale)
    for label, g in d.groupby("label", sort=True):
        color, ls = styles[label]
        g = g.sort_values("n_points")
        ran = g[g["ran"]]
        ax.plot(ran["n_points"], ran["y"], ls=ls, color=color, marker="o", ms=5, lw=1.4,
                label=g["series"].iloc[0])
        hollow = g[~g["ran"]]
        if not hollow.empty:
            ax.plot(hollow["n_points"], hollow["y"], ls="none", marker="o", ms=7, mfc="none", mec=color,
                    mew=1.5, label=f"{label}: did not run (estimate)" if col in ESTIMATED else None)
        if col == "step_ms" and not ran.empty:
            lo, hi = _band(ran)
            ax.fill_between(ran["n_points"], lo, hi, color=color, alpha=0.18, lw=0)
    ax.set(xscale="log", yscale="log", xlabel="collocation points",
           ylabel=unit if ylabel != "bytes" else f"peak memory ({unit})", title=title)
    _plain_ticks(ax)
    ax.legend(fontsize=7, title=None)
    return True


def _plain_ticks(ax) -> None:
    """Log-axis tick labels as plain numbers (``0.5``, ``2``, ``1,000``), not ``5x10^-1``."""
    from matplotlib.ticker import FuncFormatter

    def label(v, _pos):
        if not v > 0:
            return ""
        return f"{v:,.0f}" if v >= 1000 else f"{v:.3g}"

    ax.yaxis.set_major_formatter(FuncFormatter(label))
    def minor(v, pos):  # labelled only when the axis spans less than a decade (no major tick)
        lo, hi = ax.get_ylim()
        return label(v, pos) if lo > 0 and hi / lo < 10 else ""

    ax.yaxis.set_minor_formatter(FuncFormatter(minor))


def _band(g: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Step-time band: the 95% CI over runs, else median +- half the within-run IQR."""
    y = g["y"].to_numpy(float)
    lo = g["step_ms_lo"].to_numpy(float) if "step_ms_lo" in g else np.full_like(y, np.nan)
    hi = g["step_ms_hi"].to_numpy(float) if "step_ms_hi" in g else np.full_like(y, np.nan)
    iqr = g["step_ms_iqr"].to_numpy(float) if "step_ms_iqr" in g else np.full_like(y, np.nan)
    half = np.where(np.isfinite(iqr), iqr / 2, 0.0)
    lo = np.where(np.isfinite(lo), lo, np.maximum(y - half, y * 1e-3))
    hi = np.where(np.isfinite(hi), hi, y + half)
    return lo, hi


def scaling_figure(aggs: pd.DataFrame, path: Path, title: str = "") -> bool:
    """Step time and peak memory (one panel per source with data) against n_points."""
    mem = present_memory_columns(aggs)
    panels = [("step_ms", "step time (band: 95% CI over runs, else within-run IQR)", "ms / step")] + [
        (c, f"peak memory: {MEMORY_SHORT[c]}" + (" (compiler estimate)" if c in ESTIMATED else ""), "bytes")
        for c in mem]
    df = aggs.assign(ran=aggs["n_ok"] > 0)
    styles = _styles(df["label"])
    ncol = min(3, len(panels))
    nrow = math.ceil(len(panels) / ncol)
    fig, axes = plt.subplots(nrow, ncol, figsize=(4.6 * ncol, 3.6 * nrow + 0.4), squeeze=False)
    drawn = [_panel(ax, df, c, t, y, styles) for ax, (c, t, y) in zip(axes.flat, panels)]
    for ax in list(axes.flat)[len(panels):]:
        ax.set_visible(False)
    if title:
        fig.suptitle(title, fontsize=10)
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


def curves_figure(rows: pd.DataFrame, path: Path, title: str = "") -> bool:
    d = curves_frame(rows)
    if d.empty:
        return False
    d = d[(d["train_s"] > 0) & (d["rel_l2"] > 0)]
    d = d[d.groupby("case_id")["train_s"].transform("nunique") > 1]  # a one-point curve is no curve
    if d.empty:
        return False
    styles = _styles(d["label"])
    sizes = sorted(d["size"].unique(), key=lambda s: int(s.split("=")[1]) if s.split("=")[1].isdigit() else 0)
    widths = {s: 0.8 + 1.4 * i / max(1, len(sizes) - 1) for i, s in enumerate(sizes)}
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    shown = set()
    for cid, g in d.groupby("case_id", sort=True):
        label, size = g["label"].iloc[0], g["size"].iloc[0]
        color, ls = styles[label]
        key = (label, size)
        ax.plot(g["train_s"], g["rel_l2"], color=color, ls=ls, lw=widths[size], alpha=0.85,
                label=f"{label} {size}" if key not in shown else None)
        shown.add(key)
    ax.set(xscale="log", yscale="log", xlabel="training wall time (s, timed steps only)",
           ylabel="rel. L2 error", title=title or "training curves")
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


def pareto_figure(aggs: pd.DataFrame, path: Path, title: str = "") -> bool:
    d = aggs[["label", "n_points", "step_ms", "rel_l2"]].dropna()
    d = d[(d["step_ms"] > 0) & (d["rel_l2"] > 0)]
    if len(d) < 2:
        return False
    styles = _styles(d["label"])
    sizes = d["n_points"].to_numpy(float)
    area = 20 + 120 * (np.log(sizes) - np.log(sizes.min())) / max(1e-9, np.log(sizes.max() / sizes.min()))
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    for label, g in d.groupby("label", sort=True):
        ax.scatter(g["step_ms"], g["rel_l2"], s=area[d.index.get_indexer(g.index)], color=styles[label][0],
                   label=label, alpha=0.85, edgecolors="white", linewidths=0.5)
    front = pareto_front(list(zip(d["step_ms"], d["rel_l2"])))
    if len(front) > 1:
        ax.plot(*zip(*front), ls="--", color="0.4", lw=1, label="Pareto front")
    ax.set(xscale="log", yscale="log", xlabel="step time (ms, median over runs)", ylabel="final rel. L2 error",
           title=(title + "\n" if title else "") + "error vs step time (marker area: points)")
    ax.legend(fontsize=7)
    return _save(fig, path)


def _save(fig, path: Path) -> bool:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=DPI, format="png", metadata={"Software": None})
    plt.close(fig)
    return True


def _discard(fig) -> bool:
    plt.close(fig)
    return False
