"""The optimizer comparison section of a report: one network, several optimizers, many seeds.

Shown when the records of one PDE, dimension and network size (parameter count D) were trained
by two or more optimizers (the case parameter ``optimizer``; ``kfac``/``kfac-star`` are the
presets of ``pinn-fl`` with those optimizers). Per optimizer: the number of runs (a run = one
record: one seed x round), the final test error as mean +- std over runs (the statistic the KFAC
paper's authors reported) and as median with its 95% bootstrap CI over runs
(``tables.bootstrap_ci``), the RMS error, the final training loss next to it, the steps done in
the budget and the median step time; then error-vs-time curves per optimizer, the median over
runs with a band from the fastest to the slowest run's error at each time (runs are step
functions of their evaluated points).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from bench.report.tables import _num, bootstrap_ci, md_table

#: the optimizers' order in tables and legends (registry order; unknown names last)
ORDER = ("sgd", "adam", "lbfgs", "hessian-free", "engd", "engd-layerwise", "kfac", "kfac-star")
#: one colour per optimizer in every figure
COLORS = {"sgd": "#9C755F", "adam": "#D55E00", "lbfgs": "#CC79A7", "hessian-free": "#009E73",
          "engd": "#0072B2", "engd-layerwise": "#56B4E9", "kfac": "#000000", "kfac-star": "#7F7F7F"}


def optimizer_of(rec: dict) -> str | None:
    """The optimizer that trained a record (its resolved parameters), None if not recorded."""
    return ((rec.get("method") or {}).get("params") or {}).get("optimizer")


def run_rows(records: list[dict]) -> pd.DataFrame:
    rows = []
    for r in records:
        case, m, meth = r.get("case") or {}, r.get("metrics") or {}, r.get("method") or {}
        rows.append({"case_id": r.get("case_id"), "pde": case.get("pde"), "dim": case.get("dim"),
                     "method": case.get("method"), "optimizer": optimizer_of(r),
                     "n_params": meth.get("n_params"), "seed": case.get("seed"),
                     "status": r.get("status"), "max_seconds": case.get("max_seconds"),
                     "rel_l2": _num(m.get("rel_l2")), "rms_abs": _num(m.get("rms_abs")),
                     "final_loss": _num(m.get("final_loss")), "steps_done": _num(m.get("steps_done")),
                     "step_ms": _num(m.get("step_ms")), "curve": r.get("curve") or []})
    return pd.DataFrame(rows)


def groups(records: list[dict]):
    """(pde, dim, n_params) -> its run rows, for the groups trained by >= 2 optimizers."""
    df = run_rows(records)
    if df.empty or df["optimizer"].isna().all():
        return []
    out = []
    for key, g in df.groupby(["pde", "dim", "n_params"], dropna=False, sort=True):
        if g["optimizer"].nunique() >= 2:
            out.append((key, g))
    return out


def _mean_std(vals, spec=".3g") -> str:
    v = [x for x in vals if x is not None and math.isfinite(x)]
    if not v:
        return "n/a"
    if len(v) == 1:
        return f"{v[0]:{spec}} (1 run)"
    return f"{np.mean(v):{spec}} ± {np.std(v, ddof=1):{spec}}"


def _order(name) -> tuple:
    return (ORDER.index(name) if name in ORDER else len(ORDER), str(name))


def summary(g: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for opt, h in sorted(g.groupby("optimizer"), key=lambda kv: _order(kv[0])):
        ok = h[h["status"] == "ok"]
        rel = [x for x in ok["rel_l2"] if x is not None]
        lo, hi = bootstrap_ci(rel)
        med = float(np.median(rel)) if rel else None
        rows.append({
            "optimizer": opt, "method": ", ".join(sorted(set(h["method"]))),
            "runs ok / all": f"{len(ok)} / {len(h)}",
            "rel. L2 (mean ± std)": _mean_std(rel),
            "rel. L2 median [95% CI]": "n/a" if med is None else (
                f"{med:.3g} [{lo:.3g}, {hi:.3g}]" if lo is not None else f"{med:.3g} (1 run: no CI)"),
            "RMS error (mean ± std)": _mean_std(list(ok["rms_abs"])),
            "training loss (mean ± std)": _mean_std(list(ok["final_loss"])),
            "steps (median)": "n/a" if ok["steps_done"].dropna().empty else f"{ok['steps_done'].median():,.0f}",
            "ms/step (median)": "n/a" if ok["step_ms"].dropna().empty else f"{ok['step_ms'].median():.3g}",
            "_median": med if med is not None else math.inf,
            "case ids": ", ".join(f"`{c}`" for c in h["case_id"]),
        })
    return pd.DataFrame(rows)


def curve_figure(g: pd.DataFrame, path: Path, title: str, color=None, target: float | None = None) -> bool:
    """rel. L2 vs training time: per optimizer (the ``optimizer`` column: the leaderboard puts
    the method there) the median over runs and a min..max band. ``color``: name -> colour
    (default ``COLORS``); ``target``: an error drawn as a dashed line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    series = {}
    for opt, h in g[g["status"] == "ok"].groupby("optimizer"):
        runs = []
        for curve in h["curve"]:
            pts = [(_num(p.get("train_s")), _num(p.get("rel_l2"))) for p in curve]
            pts = [(t, e) for t, e in pts if t is not None and e is not None and t > 0 and e > 0]
            if len(pts) >= 2:
                runs.append(pts)
        if runs:
            series[opt] = runs
    if not series:
        return False
    t_lo = min(p[0][0] for runs in series.values() for p in runs)
    t_hi = max(p[-1][0] for runs in series.values() for p in runs)
    fig, ax = plt.subplots(figsize=(7.5, 4.8))
    for opt in sorted(series, key=_order):
        runs = series[opt]
        grid = np.geomspace(max(t_lo, 1e-3), t_hi, 120)
        vals = []
        for pts in runs:
            ts, es = np.array([p[0] for p in pts]), np.array([p[1] for p in pts])
            idx = np.searchsorted(ts, grid, side="right") - 1
            vals.append(np.where((idx >= 0) & (grid <= ts[-1]), es[np.clip(idx, 0, None)], np.nan))
        V = np.array(vals)
        have = np.isfinite(V).any(axis=0)
        if not have.any():
            continue
        with np.errstate(all="ignore"):
            med = np.nanmedian(V[:, have], axis=0)
            lo, hi = np.nanmin(V[:, have], axis=0), np.nanmax(V[:, have], axis=0)
        c = color(opt) if color is not None else COLORS.get(opt, "#444444")
        ax.plot(grid[have], med, color=c, label=f"{opt} ({len(runs)} runs)")
        if len(runs) > 1:
            ax.fill_between(grid[have], lo, hi, color=c, alpha=0.15, linewidth=0)
    if target:
        ax.axhline(target, color="0.3", ls="--", lw=1, label=f"target {target:g}")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("training time (s, step clock)")
    ax.set_ylabel("rel. L2 error (held-out points)")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8, ncol=2)
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def section(records: list[dict], figdir: Path | None, md_dir: Path, device: str = "") -> tuple[str, list[Path]]:
    out, figs = [], []
    for (pde, dim, n_params), g in groups(records):
        s = summary(g)
        budgets = sorted({_num(b) for b in g["max_seconds"] if _num(b)})
        budget = (", ".join(f"{b:g} s" for b in budgets) if budgets else "none") + " wall-clock budget"
        best = s.sort_values("_median").iloc[0]["optimizer"] if len(s) else None
        unknown = n_params is None or (isinstance(n_params, float) and math.isnan(n_params))
        D = "n/a" if unknown else f"{int(n_params):,}"
        out += [f"## Optimizers: {pde}{dim}, D = {D} parameters", "",
                f"The same network trained by {len(s)} optimizers at a {budget}. A run is one record "
                "(one seed); mean ± std over runs (the KFAC paper authors' statistic), the median with "
                "its 95% bootstrap CI over runs, the training loss next to the test error. Lowest median "
                f"error here: **{best}** (computed from the table).", "",
                md_table(s.drop(columns=["_median", "case ids"])), "",
                "Records: " + "; ".join(f"{o}: {ids}" for o, ids in zip(s["optimizer"], s["case ids"])), ""]
        if figdir is not None:
            p = figdir / f"fig-optimizers-{pde}{dim}-D{D.replace(',', '')}.png"
            if curve_figure(g, p, f"{pde} {dim}-d, D = {D}: rel. L2 vs time{(' (' + device + ')') if device else ''}"):
                figs.append(p)
                out += [f"![optimizers, error vs time]({p.relative_to(md_dir).as_posix()})", ""]
    return "\n".join(out), figs
