"""Assemble ``reports/<suite>.md``: environment, per-device/per-PDE tables, ratios, figures,
claims and the command that reproduces it all. Figures go to ``<out dir>/<out stem>/`` and are
linked relatively, so the markdown renders wherever the directory is copied."""

from __future__ import annotations

import os
import re
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from bench.report import claims as mclaims
from bench.report import figures as mfig
from bench.report import inverse as minverse
from bench.report import leaderboard as mlead
from bench.report import optimizers as moptim
from bench.report import tables as mt
from bench.report.figures import slug
from bench.store import shipped_path, write_shipped


@dataclass
class Report:
    path: Path
    text: str
    figures: list[Path] = field(default_factory=list)
    verdicts: list = field(default_factory=list)
    claim_counts: dict = field(default_factory=dict)
    verdicts_csv: Path | None = None


def _uniq(vals) -> str:
    vals = [str(v) for v in dict.fromkeys(v for v in vals if v not in (None, "", []))]
    return ", ".join(vals) if vals else "n/a"


def environment(records: list[dict]) -> str:
    """One key/value table per device, then the memory sources."""
    by_dev: dict[str, list[dict]] = {}
    for r in records:
        name = (r.get("env") or {}).get("device_name") or "device name not recorded"
        by_dev.setdefault(name, []).append(r)
    out = ["## Environment", ""]
    for dev, recs in by_dev.items():
        envs = [r.get("env") or {} for r in recs]
        vers = {}
        for e in envs:
            for k, v in (e.get("versions") or {}).items():
                vers.setdefault(k, []).append(v)
        started = sorted(r.get("started") for r in recs if r.get("started"))
        load = [e.get("loadavg")[0] for e in envs if e.get("loadavg")]
        rows = [
            ("device", dev), ("device class", _uniq((r.get("case") or {}).get("device") for r in recs)),
            ("backend", _uniq(e.get("backend") for e in envs)),
            ("GPU driver", _uniq(e.get("driver") for e in envs)),
            ("GPU memory", _uniq(mt.fmt(e.get("gpu_total_bytes"), "bytes") for e in envs
                                 if e.get("gpu_total_bytes"))),
            ("CPU", _uniq(f"{e.get('cpu_model')} ({e.get('cpu_count')} cores, {e.get('cpu_affinity')} usable)"
                          for e in envs if e.get("cpu_model"))),
            ("host", _uniq(e.get("hostname") for e in envs)),
            ("platform", _uniq(e.get("platform") for e in envs)),
            ("python", _uniq(e.get("python") for e in envs)),
            ("packages", "; ".join(f"{k} {_uniq(v)}" for k, v in sorted(vers.items())) or "n/a"),
            ("dtype", _uniq(e.get("dtype") or (r.get("case") or {}).get("dtype")
                            for e, r in zip(envs, recs))),
            ("matmul precision", _uniq(e.get("matmul_precision") for e in envs)),
            ("x64 enabled", _uniq(e.get("x64") for e in envs)),
            ("git commit", _uniq(e.get("git_commit") for e in envs)),
            ("runs started", f"{started[0]} to {started[-1]}" if started else "n/a"),
            ("1-min load average at start", f"{min(load):.2f} to {max(load):.2f}" if load else "n/a"),
            ("records", str(len(recs))),
        ]
        out += [f"### {dev}", "", mt.md_table(pd.DataFrame(rows, columns=["", "value"])), ""]
        if any(e.get("backend") == "cpu" for e in envs):
            out += ["CPU timings on a shared machine are contended by other processes (see the load "
                    "average); FLOPs and XLA bytes are deterministic.", ""]
    descr: dict[str, str] = {}
    for r in records:
        for k, v in (r.get("memory_sources") or {}).items():
            descr.setdefault(k, v)
    have = Counter(k for r in records for k, v in (r.get("metrics") or {}).items()
                   if k in mt.MEMORY_COLUMNS and v is not None)
    reasons = _uniq((r.get("metrics") or {}).get("nvml_reason") for r in records)
    rows = []
    for c in mt.MEMORY_COLUMNS:
        note = f"{have[c]}/{len(records)} records" if have[c] else "none: n/a"
        if c.startswith("nvml") and not have[c] and reasons != "n/a":
            note += f" ({reasons})"
        rows.append((mt.MEMORY_SHORT[c], f"`{c}`", descr.get(c, "n/a"), note))
    out += ["### Memory sources", "",
            "Each memory column is one source, never mixed with another:", "",
            mt.md_table(pd.DataFrame(rows, columns=["column", "field", "what it measures", "values"])), ""]
    return "\n".join(out)


def section_summary(aggs: pd.DataFrame) -> str:
    """One sentence: at the largest size every method finished, who is fastest, most accurate,
    smallest (by the best-ranked memory source present)."""
    ok = aggs[aggs["n_ok"] > 0]
    labels = set(aggs["label"])
    common = [n for n, g in ok.groupby("n_per_axis") if set(g["label"]) == labels]
    if len(labels) < 2 or not common:
        return ""
    n = max(common)
    g = ok[ok["n_per_axis"] == n]
    parts = []
    for col, what, kind in [("step_ms", "fastest", "num"), ("rel_l2", "lowest rel. L2", "num")] + [
            (c, f"smallest {mt.MEMORY_SHORT[c]}", "bytes") for c in mt.present_memory_columns(g)[:1]]:
        d = g.dropna(subset=[col])
        if len(d) == len(g):
            best = d.loc[d[col].idxmin()]
            unit = " ms" if col == "step_ms" else ""
            test = ""
            if col == "step_ms" and len(d) > 1:
                # the runner-up against the winner, on one median per run
                second = d.drop(index=best.name).sort_values(col).iloc[0]
                p = mt.mann_whitney(best["run_ms"], second["run_ms"])
                test = (f", vs {second['label']}: p = {mt.fmt(p)} over runs" if p is not None
                        else f", {mt.no_test_label(best['n_runs'], second['n_runs'])}")
            parts.append(f"{what}: **{best['label']}** ({mt.fmt(best[col], kind)}{unit}{test})")
    if not parts:
        return ""
    fails = aggs[(aggs["n_ok"] == 0) & (aggs["n_per_axis"] > n)]
    tail = "".join(f"; {r['label']} at n={r['n_per_axis']}: {mt.STATUS_LABEL[r['failure']]}"
                   for _, r in fails.iterrows() if r["failure"])
    return f"At n/axis = {n}, the largest size every method finished: " + ", ".join(parts) + tail + "."


def _section(sec_aggs: pd.DataFrame, sec_rows: pd.DataFrame, baseline: str, figdir: Path | None,
             md_dir: Path) -> tuple[list[str], list[Path]]:
    pde, dim = sec_aggs["pde"].iloc[0], sec_aggs["dim"].iloc[0]
    n_in = sec_aggs["n_in"].iloc[0]
    out = [f"### {pde}, dim {dim} ({mt.fmt(n_in, 'int')} inputs)", ""]
    table, missing = mt.results_table(sec_aggs)
    mixed = mt.mixed_versions(sec_aggs)
    out += ([mixed, ""] if mixed else []) + [mt.md_table(table), ""]
    summary = section_summary(sec_aggs)
    if summary:
        out += [summary, ""]
    out += ["Step time: a *run* is one record (a fresh worker: one seed x round); `runs` counts them, "
            "`step ms (median)` is the median over runs of each run's median, `95% CI ms` a bootstrap "
            "interval of that median over runs (none with one run), and `within-run IQR ms` the spread "
            "of the timing chunks inside a run (median over runs; chunks are not independent samples). "
            "Errors: median over runs; compile time, XLA bytes and FLOPs (compiler estimate per step, "
            "plus the loop trips a method declares uncounted) are known even for a case that then failed. "
            "`GFLOP/s`: GFLOP/step over the median step time (a lower bound where GFLOP/step is one)"
            + ("; `% of peak`: that over the device's float matmul peak, measured once per machine by a "
               "micro-benchmark (`bench.measure.peak`)" if "% of peak" in table else "")
            + ("; `harness %`: the loop's own time (bookkeeping between timed chunks, evaluation, "
               "resampling and checkpoints left out) as a share of its training time, median over runs"
               if "harness %" in table else "") + "."]
    if mt.flops_footnote(sec_aggs):
        out += [mt.flops_footnote(sec_aggs)]
    if missing:
        out += [f"Memory sources with no value here (n/a throughout, left out): "
                f"{', '.join(mt.MEMORY_SHORT[c] for c in missing)}."]
    out.append("")
    rat = mt.ratios(sec_aggs, baseline)
    out += [f"#### Ratios against `{baseline}`", ""]
    if rat.empty:
        have = ", ".join(sorted(set(sec_aggs["method"])))
        out += [f"n/a: no `{baseline}` records at a size another method also ran (methods here: {have}).", ""]
    else:
        out += ["baseline / method at the same size: above 1x the method is faster or smaller.", "",
                mt.md_table(mt.ratio_table(rat)), ""]
    figs = []
    if figdir is None:
        return out, figs
    key = f"{slug(sec_aggs['device_name'].iloc[0], 48)}-{slug(pde)}{dim}"
    suite = sec_rows["suite"].dropna().iloc[0] if "suite" in sec_rows and sec_rows["suite"].notna().any() else "?"
    title = f"{suite}: {pde}, dim {dim} - {sec_aggs['device_name'].iloc[0]}"
    made = []
    for kind, fn, arg, caption in (
            ("scaling", mfig.scaling_figure, sec_aggs,
             "step time and peak memory against collocation points"),
            ("curves", mfig.curves_figure, sec_rows, "rel. L2 error against training wall time"),
            ("pareto", mfig.pareto_figure, sec_aggs, "final error against step time (Pareto view)")):
        path = figdir / f"fig-{key}-{kind}.png"
        if fn(arg, path, title):
            figs.append(path)
            rel = Path(os.path.relpath(path, md_dir)).as_posix()
            made.append(f"![{pde}{dim} {caption}]({rel})")
        else:
            made.append(f"*{caption}: not drawn (no data, or a single point: one size shows no scaling).*")
    out += ["#### Figures", ""] + [m + "\n" for m in made]
    return out, figs


def results(aggs: pd.DataFrame, rows: pd.DataFrame, baseline: str, figdir: Path | None,
            md_dir: Path) -> tuple[str, list[Path]]:
    out, figs = [], []
    for dev, dg in aggs.groupby("device_name", sort=True):
        out += [f"## Results: {dev}", ""]
        for (pde, dim), sg in dg.groupby(["pde", "dim"], sort=True):
            sr = rows[(rows["device_name"] == dev) & (rows["pde"] == pde) & (rows["dim"] == dim)]
            lines, f = _section(sg, sr, baseline, figdir, md_dir)
            out += lines
            figs += f
    failed = rows[rows["status"] != "ok"]
    if not failed.empty:
        out += ["### Cases that did not finish", ""]
        t = pd.DataFrame({"case": failed["case_id"],
                          "status": [mt.STATUS_LABEL.get(s, s) for s in failed["status"]],
                          "why": [(e or "")[:200] for e in failed["error"]]})
        out += [mt.md_table(t), ""]
    return "\n".join(out), figs


NOT_LISTED = "not listed (method not run here)"


def claim_counts(verdicts: list, methods_here=None) -> dict:
    """The one claims count, shown by the report and printed by ``bench report``: verdicts of the
    claims about methods run here, plus the claims about methods not run here (``NOT_LISTED``)."""
    here = None if methods_here is None else set(methods_here)
    counts = Counter(v.verdict if here is None or v.claim.method in here else NOT_LISTED for v in verdicts)
    return {k: counts[k] for k in (*mclaims.OUTCOMES, NOT_LISTED) if counts.get(k)}


def claims_section(verdicts: list, claims_path: Path | None, methods_here=None, verdicts_csv: Path | None = None,
                   md_dir: Path | None = None) -> str:
    """The claims beside the measurements. With ``methods_here``, only claims about a method run
    here are tabled; the others are counted in one line (their verdict would only say that the
    method was not run)."""
    out = ["## Claims", ""]
    if claims_path is None:
        return "\n".join(out + ["n/a: no claims file found (expected results/reference/claims.csv).", ""])
    counts = claim_counts(verdicts, methods_here)
    others = []
    if methods_here is not None:
        here = set(methods_here)
        others = [v for v in verdicts if v.claim.method not in here]
        verdicts = [v for v in verdicts if v.claim.method in here]
    out += [f"Published claims from `{claims_path.as_posix()}` beside the values measured here. "
            "Each claim states the setting it was made in (PDE parameters, size, dtype, network, "
            "budget, method variant); only records in that setting decide it, and when two variants "
            "of a method match, neither does. Verdicts: *reproduced* (meets a one-sided bound, or lies "
            "in the band of a point figure), *exceeded* (better than that band), *not reproduced*, "
            "*not measurable here* (no record in the claim's setting: the first setting that differs "
            "is named) and *not comparable* (pinnbench measures another quantity). FLOPs include the "
            "methods' loop corrections. *decided by* names the method and baseline records.", ""]
    if verdicts_csv is not None:
        rel = Path(os.path.relpath(verdicts_csv, md_dir)).as_posix() if md_dir else verdicts_csv.as_posix()
        out += [f"The verdicts as CSV: [{rel}]({rel}).", ""]
    if others:
        by_method = Counter(v.claim.method for v in others)
        out += [f"Not listed: {len(others)} claim(s) about methods not run here ("
                + ", ".join(f"{m}: {n}" for m, n in sorted(by_method.items()))
                + "); a report on a suite that runs them evaluates them.", ""]
    out += ["Summary: " + (", ".join(f"{n} {k}" for k, n in counts.items()) or "no claims in the file") + ".", ""]
    if not verdicts:
        return "\n".join(out + ["No published claim concerns the methods run here.", ""])
    rows = [{"claim": f"`{v.claim.claim_id}`", "metric": f"{v.claim.metric} ({v.claim.method}"
             + (f" vs {v.claim.baseline_method})" if v.claim.baseline_method else ")"),
             "published": v.claim.describe_value(), "claim's device": v.claim.device_class,
             "measured": v.measured, "verdict": f"**{v.verdict}**", "why": v.why,
             "decided by": v.decided_by} for v in verdicts]
    out += [mt.md_table(pd.DataFrame(rows)), "", "Sources:", ""]
    for v in verdicts:
        c = v.claim
        out.append(f"- `{c.claim_id}`: {c.paper}; {c.source}. Setting: {c.setting}. "
                   f"Definition: {c.error_definition}." + (f" Note: {c.note}." if c.note else ""))
    return "\n".join(out + [""])


def suite_file(suite: str) -> dict | None:
    """The raw TOML of a named suite in bench/suites (read directly: importing bench.suite would
    import every method and JAX just to print a description); None when there is none."""
    import tomllib

    path = Path(__file__).resolve().parents[1] / "suites" / f"{suite}.toml"
    try:
        return tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError):
        return None


def reproduce(suite: str, records: list[dict], results_dir: Path, out: Path) -> str:
    rows = mt.records_rows(records)
    devs = sorted(set(rows["device"]))
    seeds = int(rows.groupby(["method", "n_per_axis", "pde", "dim"])["seed"].nunique().max())
    methods = list(dict.fromkeys(rows["method"]))
    cmd = ["python -m bench run", f"--suite {suite}", f"--results {results_dir.as_posix()}"]
    extra = []
    raw = suite_file(suite)
    if raw is None:
        extra.append(f"(no suite file bench/suites/{suite}.toml here: pass the path of the "
                     "suite file to --suite)")
    else:
        named = [raw.get("methods", [])] + [e.get("methods", []) for e in raw.get("matrix", [])]
        every = any(isinstance(v, str) for v in named)  # methods = "all": resolved from the registry
        suite_methods = {m for v in named if isinstance(v, list) for m in v}
        if not every and set(methods) != suite_methods:
            cmd.append(f"--methods {','.join(methods)}")
        if seeds != raw.get("seeds", 1):
            cmd.append(f"--seeds {seeds}")
    lines = [" ".join(cmd + [f"--device {d}"]) for d in devs]
    lines.append(f"python -m bench report --suite {suite} --results {results_dir.as_posix()} "
                 f"--out {out.as_posix()}")
    shipped = shipped_path(out).as_posix()
    text = ["## Reproduce", "", "From the repository root (git commit "
            f"{_uniq((r.get('env') or {}).get('git_commit') for r in records)}):", "", "```sh",
            *lines, "```", "",
            f"The records this report was built from (curves included) ship beside it, in `{shipped}`; "
            "in a fresh clone the report rebuilds from them, without running anything:", "", "```sh",
            f"python -m bench report --suite {suite} --from {shipped} --out {out.as_posix()}", "```", ""]
    return "\n".join(text + extra)


def dirty_warning(records: list[dict]) -> str | None:
    """A loud line when records come from a modified working tree (``<commit>-dirty``) or name no
    commit: their numbers belong to no commit anyone can check out."""
    commits = [(r.get("env") or {}).get("git_commit") for r in records]
    dirty = sorted({c for c in commits if c and c.endswith("-dirty")})
    unknown = sum(1 for c in commits if not c)
    if not dirty and not unknown:
        return None
    parts = []
    if dirty:
        parts.append(f"{sum(1 for c in commits if c in dirty)} of {len(records)} records were made from a "
                     f"modified working tree ({', '.join(dirty)})")
    if unknown:
        parts.append(f"{unknown} of {len(records)} records name no git commit")
    return ("> **WARNING: not reproducible from a commit.** " + "; ".join(parts)
            + ". Re-run from a clean commit before citing these numbers.")


def build(records: list[dict], suite: str, out: Path, results_dir: Path, baseline: str = "pinn",
          claims_path: Path | None = None, figures: bool = True, shipped_from: Path | None = None) -> Report:
    """Write the report for ``records`` to ``out`` (figures beside it, unless ``figures`` is
    False) and ship the records beside it (``store.shipped_path``); ``shipped_from``: the
    records were read from shipped data (named in the header, left as it is). Returns what was
    written."""
    out = Path(out)
    # one order whatever the source (a results directory or shipped data): the same report
    records = sorted(records, key=lambda r: (str(r.get("suite")), str(r.get("case_id"))))
    md_dir = out.parent
    figdir = md_dir / out.stem
    if figdir.exists():
        for old in figdir.glob("fig-*.png"):
            old.unlink()
    aggs = mt.aggregate(records)
    rows = mt.records_rows(records)
    devices = sorted(set(aggs["device_name"]))
    descr = (suite_file(suite) or {}).get("description", "")
    classes = sorted(set(rows["device"]))
    label = " + ".join("GPU" if c == "gpu" else c.upper() for c in classes)
    head = [f"# pinnbench report: {suite} ({label} run)", "",
            *([f"> {descr}", ""] if descr else []),
            *([w, ""] if (w := dirty_warning(records)) else []),
            f"Generated {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} from {len(records)} "
            + (f"records shipped in `{Path(shipped_from).as_posix()}`" if shipped_from is not None
               else f"records in `{results_dir.as_posix()}/{suite}`")
            + ". Device(s): "
            + "; ".join(f"**{d}**" for d in devices) + ". Baseline for ratios: "
            f"`{baseline}`. Missing values are shown as n/a; failed cases as OOM, NaN, timeout "
            "or error.", ""]
    res, figs = results(aggs, rows, baseline, figdir if figures else None, md_dir)
    lead_text, lead_figs = mlead.section(records, figdir if figures else None, md_dir, suite)
    res, figs = (lead_text + "\n" + res, lead_figs + figs) if lead_text else (res, figs)
    inv_text, inv_figs = minverse.section(records, figdir if figures else None, md_dir)  # inverse/snapshots
    res, figs = res + "\n" + inv_text, figs + inv_figs
    opt_text, opt_figs = moptim.section(records, figdir if figures else None, md_dir, "; ".join(devices))
    res, figs = res + "\n" + opt_text, figs + opt_figs
    verdicts = mclaims.evaluate_all(mclaims.load_claims(claims_path), aggs, records) if claims_path else []
    here = set(aggs["method"])
    vcsv = mclaims.write_verdicts(verdicts, figdir / "claims.csv") if verdicts else None
    text = "\n".join(head + [environment(records), res, claims_section(verdicts, claims_path, here, vcsv, md_dir),
                             reproduce(suite, records, results_dir, out)])
    text = re.sub(r"\n{3,}", "\n\n", text).rstrip() + "\n"
    md_dir.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    try:
        tmp.write_text(text)
        os.replace(tmp, out)
    finally:  # no temporary file left behind on any error
        if tmp.exists() and tmp.is_file():
            tmp.unlink()
    data = shipped_path(out)
    if shipped_from is None or Path(shipped_from).resolve() != data.resolve():
        write_shipped(data, records)
    return Report(out, text, figs, verdicts, claim_counts(verdicts, here), vcsv)
