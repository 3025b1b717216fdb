"""Report additions for inverse problems and (1+1)-d solutions: a coefficient table next to the
published figures, coefficient convergence against training time, solution snapshots.

Called from `bench.report.markdown.build` through `section(records, figdir, md_dir)`, which
returns Markdown ('' when no record is an inverse case or has a snapshot) and the figures it wrote.
"""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from bench.report.tables import md_table  # noqa: E402

#: published identified coefficients: (pde, noise) -> {coefficient: value}, with the source.
#: Raissi, Perdikaris, Karniadakis, J. Comput. Phys. 378 (2019), sec. 4.1.1, Table 1 (Burgers,
#: N_u = 2000 observations, 9-layer x 20-neuron tanh network, L-BFGS)
PAPER = {
    ("burgers", 0.0): {"lambda_1": 0.99915, "lambda_2": 0.0031794},
    ("burgers", 0.01): {"lambda_1": 1.00042, "lambda_2": 0.0032098},
}
PAPER_SOURCE = "Raissi, Perdikaris, Karniadakis, J. Comput. Phys. 378 (2019), Table 1"


def _fmt(v, spec=".4g") -> str:
    return "n/a" if v is None or (isinstance(v, float) and not math.isfinite(v)) else format(v, spec)


def coefficient_rows(records: list[dict]) -> pd.DataFrame:
    """One row per (inverse record, learned coefficient)."""
    out = []
    for r in records:
        c = r.get("case", {})
        inv = c.get("inverse") or {}
        if not inv or r.get("status") != "ok":
            continue
        m = r.get("metrics", {})
        true = (r.get("pde") or {}).get("coefficients", {})
        paper = PAPER.get((c["pde"], inv.get("noise")), {})
        for k in inv["learn"]:
            val = m.get(f"final_coef_{k}")
            t = true.get(k)
            out.append({"method": c["method"], "pde": f"{c['pde']}{c['dim']}", "noise": inv["noise"],
                        "n_data": inv["n_data"], "n/axis": c["n_per_axis"], "seed": c["seed"],
                        "coefficient": k, "true": t, "learned": val,
                        "rel_err": m.get(f"final_coef_{k}_rel_err"),
                        "paper": paper.get(k),
                        "paper_rel_err": abs(paper[k] - t) / abs(t) if k in paper and t else None,
                        "time_to_target_s": m.get("time_to_coef_target_s"),
                        "train_s": m.get("train_s"), "steps": m.get("steps_done"),
                        "rel_l2": m.get("rel_l2")})
    return pd.DataFrame(out)


def coefficient_table(df: pd.DataFrame) -> str:
    t = pd.DataFrame({
        "PDE": df["pde"], "method": df["method"], "noise": [f"{x:.0%}" for x in df["noise"]],
        "N_u": df["n_data"], "coef.": df["coefficient"], "true": [_fmt(x, ".6g") for x in df["true"]],
        "learned": [_fmt(x, ".6g") for x in df["learned"]], "rel. err": [_fmt(x, ".2%") for x in df["rel_err"]],
        "paper": [_fmt(x, ".6g") for x in df["paper"]], "paper rel. err": [_fmt(x, ".2%") for x in df["paper_rel_err"]],
        "time to target (s)": [_fmt(x, ".1f") for x in df["time_to_target_s"]],
        "steps": df["steps"], "train s": [_fmt(x, ".0f") for x in df["train_s"]],
        "u rel. L2": [_fmt(x, ".3g") for x in df["rel_l2"]]})
    return md_table(t)


def convergence_figure(records: list[dict], path: Path) -> bool:
    """Relative error of each learned coefficient against training time, one line per method
    and noise level (log scale)."""
    inv = [r for r in records if (r.get("case", {}).get("inverse")) and r.get("curve")]
    if not inv:
        return False
    names = list(dict.fromkeys(k for r in inv for k in r["case"]["inverse"]["learn"]))
    fig, axes = plt.subplots(1, len(names), figsize=(5.5 * len(names), 4), squeeze=False)
    for ax, k in zip(axes[0], names):
        for r in inv:
            pts = [(p["train_s"], p[f"coef_{k}_rel_err"]) for p in r["curve"] if f"coef_{k}_rel_err" in p]
            if not pts:
                continue
            c = r["case"]
            ax.plot(*zip(*pts), label=f"{c['method']} noise {c['inverse']['noise']:.0%} s{c['seed']}")
        ax.set(yscale="log", xlabel="training time (s)", ylabel=f"rel. error of {k}", title=k)
        ax.legend(fontsize=7)
    return _save(fig, path)


def snapshot_figure(rec: dict, path: Path) -> bool:
    """Reference, prediction and |error| as heatmaps over (t, x)."""
    s = rec.get("snapshot")
    if not s:
        return False
    t, x = (np.asarray(a) for a in s["axes"])
    ex, pred = np.asarray(s["exact"]), np.asarray(s["pred"])
    fig, axes = plt.subplots(1, 3, figsize=(14, 3.6))
    ext = [t[0], t[-1], x[0], x[-1]]
    lim = float(np.abs(ex).max()) or 1.0
    for ax, data, title, kw in ((axes[0], ex, "reference", {"vmin": -lim, "vmax": lim, "cmap": "RdBu_r"}),
                                (axes[1], pred, "prediction", {"vmin": -lim, "vmax": lim, "cmap": "RdBu_r"}),
                                (axes[2], np.abs(pred - ex), "|error|", {"cmap": "magma"})):
        im = ax.imshow(data.T, origin="lower", aspect="auto", extent=ext, **kw)
        ax.set(xlabel="t", ylabel="x", title=title)
        fig.colorbar(im, ax=ax)
    c = rec["case"]
    noise = f", noise {c['inverse']['noise']:.0%}" if c.get("inverse") else ""
    fig.suptitle(f"{c['pde']}{c['dim']} {c['method']} n/axis {c['n_per_axis']}{noise}", fontsize=9)
    return _save(fig, path)


def section(records: list[dict], figdir: Path | None, md_dir: Path) -> tuple[str, list[Path]]:
    out, figs = [], []
    df = coefficient_rows(records)
    if not df.empty:
        out += ["## Inverse problems: identified coefficients", "",
                "Final value and relative error |c - c*| / |c*| of each learned coefficient; "
                f"'paper': the published identified value ({PAPER_SOURCE}) where one exists. "
                "Time to target: training time until the worst coefficient error first reached the "
                "suite's `target_coef_err` on the training curve.", "", coefficient_table(df), ""]
        if figdir is not None:
            p = figdir / "fig-inverse-coefficients.png"
            if convergence_figure(records, p):
                figs.append(p)
                out += [f"![coefficient convergence]({p.relative_to(md_dir).as_posix()})", ""]
    snaps = [r for r in records if r.get("snapshot") and r.get("status") == "ok"]
    if snaps and figdir is not None:
        out += ["## Solution snapshots", "", "Reference, prediction and |error| over (t, x).", ""]
        for r in snaps:
            p = figdir / f"fig-snapshot-{r['case_id']}.png"
            if snapshot_figure(r, p):
                figs.append(p)
                out += [f"![snapshot {r['case_id']}]({p.relative_to(md_dir).as_posix()})", ""]
    return "\n".join(out), figs


def _save(fig, path: Path) -> bool:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=110, format="png")
    plt.close(fig)
    return True
