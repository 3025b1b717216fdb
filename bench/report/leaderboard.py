"""The leaderboard section of a report: every method on the same PDEs at an equal budget.

Shown for records whose case states a ``target_error`` (the leaderboard suites, ``leaderboard``
and ``leaderboard-gpu``: one ``[[matrix]]`` entry per PDE, ``methods = "all"``). Per PDE entry
(name, dimension and parameters: ``bench.suite.problem_label``):

* the methods ranked by **time to target** -- per run, the training time (step clock) of the
  first point of its curve with rel. L2 <= the PDE's target, infinite for a run that never got
  there; per method the median over its runs (so a method that reached the target in fewer
  than half of its runs has none) -- then by the **error at the budget** (the final rel. L2,
  median over runs). The spread over seeds: the min..max of the time to target over the runs
  that reached it, and a 95% percentile-bootstrap CI of the median error over runs
  (``tables.bootstrap_ci``, the one statistic of the reports). Step time, peak memory (the
  first memory source present, ``tables.present_memory_columns``) and FLOPs per step are the
  medians of the per-run values ``tables.aggregate`` reads;
* the support matrix: for every method x PDE pair of the suite, the runs it has, or the
  one-line reason the suite expansion left it out (``bench.suite.Suite.refused``: the method's
  ``supports()``, a missing package, the optimizer), or that the suite excludes it;
* a heatmap (methods x PDEs, colour = log10 of the error at the budget, the time to target
  written in the cell) and an error-vs-wall-time figure per PDE (``optimizers.curve_figure``
  grouped by method);
* "which method for which problem": sentences generated from the ranked tables, nothing
  written by hand.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from bench.report import tables as mt
from bench.report.tables import _num, bootstrap_ci, md_table


def problem_of(case: dict) -> str:
    from bench.suite import problem_label

    return problem_label(case.get("pde"), case.get("dim"), case.get("pde_params"))


def time_to_target(curve: list, target: float) -> float:
    """Training time of the first curve point with rel. L2 <= target; inf if none."""
    for p in curve or []:
        e, t = _num(p.get("rel_l2")), _num(p.get("train_s"))
        if e is not None and t is not None and e <= target:
            return t
    return math.inf


def leaderboard_records(records: list[dict]) -> list[dict]:
    return [r for r in records if (_num((r.get("case") or {}).get("target_error")) or 0) > 0]


def run_rows(records: list[dict]) -> pd.DataFrame:
    """One row per record of the leaderboard: its problem, target, time to target, error."""
    rows = []
    for r in leaderboard_records(records):
        case, m = r.get("case") or {}, r.get("metrics") or {}
        target = float(case["target_error"])
        ok = r.get("status") == "ok"
        row = mt.record_row(r)
        rows.append({**{k: row.get(k) for k in ("case_id", "method", "seed", "status", "device_name",
                                                 "n_points", "n_points_kind", "steps_done")},
                     "problem": problem_of(case), "pde": case.get("pde"), "dim": case.get("dim"),
                     "target": target, "ok": ok, "max_seconds": _num(case.get("max_seconds")),
                     "tt": time_to_target(r.get("curve"), target) if ok else math.inf,
                     "rel_l2": _num(m.get("rel_l2")) if ok else None,
                     "step_ms": mt.run_step_ms(row) if ok else None,
                     "flops": _num(row.get("flops_per_step")),
                     "curve": r.get("curve") or [],
                     **{c: (_num(m.get(c)) if ok else None) for c in mt.MEMORY_COLUMNS}})
    return pd.DataFrame(rows)


def _median(vals) -> float | None:
    v = [x for x in vals if x is not None and not (isinstance(x, float) and math.isnan(x))]
    return float(np.median(v)) if v else None


def ranking(g: pd.DataFrame) -> pd.DataFrame:
    """One row per method of one problem, ranked by time to target, then error at the budget."""
    mem = [c for c in mt.MEMORY_COLUMNS if g[c].notna().any()][:1]
    rows = []
    for method, h in g.groupby("method", sort=True):
        ok = h[h["ok"]]
        tts = list(h["tt"])
        reached = [t for t in tts if math.isfinite(t)]
        tt = float(np.median(tts)) if tts else math.inf
        errs = [e for e in ok["rel_l2"] if e is not None]
        lo, hi = bootstrap_ci(errs)
        rows.append({
            "method": method, "runs": len(h), "ok": len(ok), "reached": len(reached), "tt": tt,
            "tt_lo": min(reached) if reached else None, "tt_hi": max(reached) if reached else None,
            "err": _median(errs), "err_lo": lo, "err_hi": hi,
            "err_min": min(errs) if errs else None, "err_max": max(errs) if errs else None,
            "step_ms": _median(list(ok["step_ms"])), "flops": _median(list(h["flops"])),
            "mem": _median(list(ok[mem[0]])) if mem else None, "mem_col": mem[0] if mem else None,
            "n_points": _median(list(h["n_points"])),
            "kind": ", ".join(sorted({str(k) for k in h["n_points_kind"] if k})) or "n/a",
            "steps": _median(list(ok["steps_done"])),
        })
    df = pd.DataFrame(rows)
    if df.empty:
        return df
    df["_err"] = df["err"].fillna(math.inf)
    df = df.sort_values(["tt", "_err", "method"]).reset_index(drop=True)
    df["rank"] = range(1, len(df) + 1)
    return df.drop(columns=["_err"])


def _f(v, spec=".3g") -> str:
    return "n/a" if v is None or (isinstance(v, float) and not math.isfinite(v)) else f"{v:{spec}}"


def _clean(r: pd.Series) -> dict:
    """A row with pandas' NaN read back as None (a value nobody measured)."""
    return {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in r.items()}


def ranking_table(df: pd.DataFrame) -> pd.DataFrame:
    mem_col = next((c for c in df["mem_col"] if isinstance(c, str)), None)
    mem_name = f"peak memory ({mt.MEMORY_SHORT[mem_col]})" if mem_col else "peak memory"
    out = []
    for _, r in df.iterrows():
        r = _clean(r)
        tt = ("not reached" if not math.isfinite(r["tt"]) else f"{r['tt']:.3g}")
        spread = (f"{r['tt_lo']:.3g} .. {r['tt_hi']:.3g}" if r["reached"] else "n/a")
        if r["err"] is None:
            err = "n/a (no run finished)" if not r["ok"] else "n/a"
        elif r["err_lo"] is not None:
            err = f"{r['err']:.3g} [{r['err_lo']:.3g}, {r['err_hi']:.3g}]"
        else:
            err = f"{r['err']:.3g} (1 run: no CI)"
        out.append({"rank": r["rank"], "method": f"`{r['method']}`", "runs ok / all": f"{r['ok']} / {r['runs']}",
                    "reached target": f"{r['reached']} / {r['runs']}",
                    "time to target s (median)": tt, "time to target s (min .. max, runs that reached)": spread,
                    "rel. L2 at budget (median [95% CI])": err,
                    "ms/step": _f(r["step_ms"]), mem_name: mt.fmt(r["mem"], "bytes") if r["mem"] else "n/a",
                    "GFLOP/step": _f(r["flops"] / 1e9 if r["flops"] else None),
                    "points": f"{mt.fmt(r['n_points'], 'int')} ({r['kind']})" if r["n_points"] else "n/a",
                    "steps (median)": mt.fmt(r["steps"], "int") if r["steps"] is not None else "n/a"})
    return pd.DataFrame(out)


# ---------------------------------------------------------------- support matrix

def suite_support(suite: str | Path | None):
    """(refused pairs, excluded methods) of the suite file, or (None, None) without one."""
    if suite is None:
        return None, None
    from bench import suite as msuite
    from bench.errors import BenchError

    path = Path(suite)
    if not path.is_file():
        path = msuite.SUITES_DIR / f"{suite}.toml"
        if not path.is_file():
            return None, None
    try:
        s = msuite.load(str(path))
    except BenchError:
        return None, None
    return s.refused, s.excluded


def support_section(runs: pd.DataFrame, refused, excluded) -> list[str]:
    problems = list(dict.fromkeys(runs["problem"]))
    out = ["### Support matrix", ""]
    if refused is None:
        out += ["The suite file was not found here: the matrix shows the pairs that ran only.", ""]
        refused, excluded = [], []
    why = {(r.problem, r.method): r.reason for r in refused if r.problem in problems}
    methods = sorted(set(runs["method"]) | {m for _, m in why} | set(excluded or []))
    notes: dict[str, int] = {}
    cells = []
    for m in methods:
        row = {"method": f"`{m}`"}
        for p in problems:
            n = int(((runs["problem"] == p) & (runs["method"] == m)).sum())
            if n:
                row[p] = f"ran ({n} run{'s' if n > 1 else ''})"
            elif (p, m) in why:
                k = notes.setdefault(why[(p, m)], len(notes) + 1)
                row[p] = f"cannot [{k}]"
            elif m in (excluded or []):
                row[p] = "excluded by the suite"
            else:
                row[p] = "not run"
        cells.append(row)
    out += ["Every method x PDE pair of the suite: the runs it has, or why the suite expansion left it "
            "out (the method's `supports()`, a missing package or the optimizer; numbered below) or that "
            "the suite's `exclude` list names it.", "", md_table(pd.DataFrame(cells)), ""]
    if notes:
        out += [f"{k}. {reason}" for reason, k in notes.items()] + [""]
    return out


# ---------------------------------------------------------------- figures

def heatmap_figure(tables: dict, path: Path, title: str) -> bool:
    """Methods x PDEs: colour = log10 of the median error at the budget, text = time to target."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    problems = list(tables)
    methods = sorted({m for t in tables.values() for m in t["method"]})
    if not problems or not methods:
        return False
    E = np.full((len(methods), len(problems)), np.nan)
    text = [["" for _ in problems] for _ in methods]
    for j, p in enumerate(problems):
        for _, r in tables[p].iterrows():
            i = methods.index(r["method"])
            if r["err"] is not None and r["err"] > 0:
                E[i, j] = math.log10(r["err"])
            tt = "-" if not math.isfinite(r["tt"]) else f"{r['tt']:.2g} s"
            text[i][j] = f"{_f(r['err'], '.2g')}\n{tt}"
    if np.isnan(E).all():
        return False
    fig, ax = plt.subplots(figsize=(2.2 + 1.9 * len(problems), 1.0 + 0.45 * len(methods)))
    im = ax.imshow(np.ma.masked_invalid(E), cmap="viridis_r", aspect="auto")
    ax.set_xticks(range(len(problems)), [p.replace(" (", "\n(") for p in problems], fontsize=7)
    ax.set_yticks(range(len(methods)), methods, fontsize=8)
    for i in range(len(methods)):
        for j in range(len(problems)):
            if text[i][j]:
                ax.text(j, i, text[i][j], ha="center", va="center", fontsize=6.5, color="white"
                        if np.isfinite(E[i, j]) and E[i, j] > np.nanmean(E) else "black")
            else:
                ax.text(j, i, "cannot / not run", ha="center", va="center", fontsize=6, color="0.4")
    fig.colorbar(im, ax=ax, label="log10 rel. L2 at the budget (median over runs)")
    ax.set_title(title + "\ncell: rel. L2 at the budget / time to target", fontsize=9)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=110, format="png", metadata={"Software": None})
    plt.close(fig)
    return True


# ---------------------------------------------------------------- computed conclusions

def conclusions(tables: dict, targets: dict, budgets: dict) -> list[str]:
    """Sentences computed from the ranked tables (no hand-written conclusion)."""
    out = []
    firsts: dict[str, list[str]] = {}
    for p, t in tables.items():
        if t.empty:
            continue
        top = t.iloc[0]
        budget = budgets.get(p)
        b = f"{budget:g} s" if budget else "case's"
        reached = t[[math.isfinite(x) for x in t["tt"]]]
        if len(reached):
            s = (f"- **{p}**: `{top['method']}` reaches rel. L2 {targets[p]:g} first (median "
                 f"{top['tt']:.3g} s over {top['runs']} run{'s' if top['runs'] > 1 else ''}; "
                 f"{top['reached']} reached it)")
            if len(reached) > 1:
                s += f", then `{reached.iloc[1]['method']}` ({reached.iloc[1]['tt']:.3g} s)"
            s += f"; {len(reached)} of {len(t)} methods reach it within the {b} budget."
            firsts.setdefault(top["method"], []).append(p)
        else:
            s = (f"- **{p}**: no method reaches rel. L2 {targets[p]:g} within the {b} budget (in the "
                 f"median over its runs).")
        best = t.dropna(subset=["err"])
        if len(best):
            e = best.loc[best["err"].idxmin()]
            s += f" Lowest error at the budget: `{e['method']}` ({e['err']:.3g})."
        fast = t.dropna(subset=["step_ms"])
        if len(fast):
            f = fast.loc[fast["step_ms"].idxmin()]
            s += f" Cheapest step: `{f['method']}` ({f['step_ms']:.3g} ms)."
        mem = t.dropna(subset=["mem"])
        if len(mem):
            mm = mem.loc[mem["mem"].idxmin()]
            s += f" Least memory: `{mm['method']}` ({mt.fmt(mm['mem'], 'bytes')})."
        out.append(s)
    n = sum(1 for t in tables.values() if not t.empty)
    for m, ps in sorted(firsts.items(), key=lambda kv: (-len(kv[1]), kv[0])):
        out.append(f"- `{m}` ranks first on {len(ps)} of {n} PDEs ({', '.join(ps)}).")
    everywhere = [m for m in sorted({m for t in tables.values() for m in t["method"]})
                  if all(m in set(t["method"]) for t in tables.values() if not t.empty)]
    if len(everywhere) > 1 and n > 1:
        mean_rank = {m: float(np.mean([int(t.loc[t["method"] == m, "rank"].iloc[0])
                                       for t in tables.values() if not t.empty])) for m in everywhere}
        best = min(mean_rank, key=lambda m: (mean_rank[m], m))
        out.append(f"- Of the {len(everywhere)} methods that ran all {n} PDEs, `{best}` has the best mean "
                   f"rank ({mean_rank[best]:.2g}).")
    return out


# ---------------------------------------------------------------- the section

def section(records: list[dict], figdir: Path | None, md_dir: Path, suite: str | Path | None = None
            ) -> tuple[str, list[Path]]:
    runs = run_rows(records)
    if runs.empty:
        return "", []
    from bench.report import optimizers as moptim
    from bench.report.figures import method_color, slug

    figs: list[Path] = []
    devices = sorted(set(runs["device_name"]))
    out = ["## Leaderboard", "",
           "Every method of the suite on the same PDEs at the same wall-clock budget (step clock, "
           "compile excluded), the same collocation count per axis and the same held-out error "
           "points. Per PDE the methods are ranked by the median time to the target error over their "
           "runs (a run that never reaches it counts as infinite, so a method reaching it in fewer "
           "than half of its runs has no time), then by the median rel. L2 at the budget. A run is one "
           "record (one seed); the spread is the min .. max time to target of the runs that reached "
           "it and a 95% bootstrap CI of the median error over runs. Step time, memory and FLOPs per "
           "step are medians over runs. CPU timings on a shared machine are contended.", ""]
    tables, targets, budgets = {}, {}, {}
    for dev in devices:
        dr = runs[runs["device_name"] == dev]
        if len(devices) > 1:
            out += [f"Device: **{dev}**", ""]
        for p in dict.fromkeys(dr["problem"]):
            g = dr[dr["problem"] == p]
            key = p if len(devices) == 1 else f"{p} - {dev}"
            t = ranking(g)
            tables[key], targets[key] = t, float(g["target"].iloc[0])
            b = sorted({x for x in g["max_seconds"] if x})
            budgets[key] = b[0] if len(b) == 1 else None
            out += [f"### {key}: target rel. L2 {targets[key]:g}, "
                    + (f"{budgets[key]:g} s budget" if budgets[key] else "budget as per case"), "",
                    md_table(ranking_table(t)), "",
                    "Records: " + "; ".join(f"`{m}`: " + ", ".join(f"`{c}`" for c in h["case_id"])
                                            for m, h in g.groupby("method")), ""]
            if figdir is not None:
                path = figdir / f"fig-leaderboard-{slug(key, 60)}-curves.png"
                g2 = g[g["ok"]].rename(columns={"method": "by"}).assign(status="ok")
                g2["optimizer"] = g2["by"]
                if moptim.curve_figure(g2, path, f"{key}: rel. L2 vs training time", color=method_color,
                                       target=targets[key]):
                    figs.append(path)
                    out += [f"![{key}: error vs wall time]({path.relative_to(md_dir).as_posix()})", ""]
    refused, excluded = suite_support(suite)
    out += support_section(runs, refused, excluded)
    if figdir is not None:
        path = figdir / "fig-leaderboard-heatmap.png"
        if heatmap_figure(tables, path, "leaderboard: methods x PDEs"):
            figs.append(path)
            out += ["### Heatmap", "", f"![leaderboard heatmap]({path.relative_to(md_dir).as_posix()})", ""]
    out += ["### Which method for which problem", "",
            "Computed from the tables above (each sentence is generated from them):", "",
            *conclusions(tables, targets, budgets), ""]
    return "\n".join(out), figs
