"""``python -m bench gpu-check``: the GPU path of pinnbench in one prepared, time-boxed command.

A GPU machine may be available for minutes at a time, so everything it should measure is one
command that fits a time box (8 minutes by default) with room for a rerun:

1. the ``gpu``-marked tests (``pytest -m gpu``; on a GPU with ``PINNBENCH_REQUIRE_GPU=1``, so
   they fail instead of skipping);
2. a subset of the ``spinn-claims`` and ``heat4d-gpu`` suites, derived from the suite files
   (``SUBSETS``), with training budgets scaled to the box; each case runs in a fresh worker as
   in ``bench run`` and records NVML device and process peaks, the allocator peak, XLA bytes
   and FLOPs, GPU utilisation and energy per step over the timed chunks and the
   foreign-process check (``bench.measure.nvml``). A case the box has no time left for is
   listed as skipped, never started;
3. the reports (``reports/spinn-claims-gpu.md``, ``reports/heat4d-gpu.md``, written by the
   report code of ``bench report``) with their records packed beside them
   (``reports/<report>/records.jsonl.gz``), and a one-screen summary of the SPINN headline
   claims (Cho et al., Separable PINNs, NeurIPS 2023, abstract: 62x wall-clock, 1,394x FLOPs;
   29x memory from a secondary source), with the memory ratio under every memory definition
   so the one that reproduces 29x, if any, is named.

``--out DIR`` gets everything in at most ``MAX_FILES`` = 8 flat files of at most 16 MiB each
(the summary, a JSON of the run, the two reports, one ``.jsonl.gz`` of records per suite, the
figures in one tar), so it can be carried back from the GPU machine whole; ``--unpack DIR``
installs such a folder into ``reports/`` and a results directory. ``--device cpu --tiny``
runs the same stages end to end on a CPU in about a minute (tiny sizes and budgets, scratch
results and reports), which is how CI keeps this command from rotting between GPU runs.
"""

from __future__ import annotations

import gzip
import io
import json
import math
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

from bench.errors import BenchError

ROOT = Path(__file__).resolve().parents[1]
SUITES = ("spinn-claims", "heat4d-gpu")
#: the n/axis the SPINN claims are stated at (claims.csv stated_n_per_axis)
CLAIM_N = 64
#: the time box (s): the whole command, tests to summary
TIME_BOX_S = 480.0
TINY_TIME_BOX_S = 110.0
#: kept at the end of the box for the reports, figures and packing
RESERVE_S = {False: 60.0, True: 25.0}
#: estimates used to scale the budgets: the gpu tests, and the fixed cost of one case (fresh
#: worker: imports, backend start, compile, evaluation) on each device class
TESTS_ESTIMATE_S = {False: 75.0, True: 15.0}
TESTS_TIMEOUT_S = {False: 150.0, True: 60.0}
CASE_OVERHEAD_S = {"gpu": 9.0, "cpu": 6.0}
#: a case is started only with at least this much of the box left (after the reserve)
MIN_CASE_S = {False: 12.0, True: 4.0}
#: training budget per case (max_seconds), at most this (and at most the suite's own)
MAX_CASE_TRAIN_S = {False: 8.0, True: 1.0}
MIN_CASE_TRAIN_S = 0.5
#: steps of the baseline at the suite's largest size: its compiled estimate is what it is for
BIG_STEPS = 3
#: --tiny: one PDE of each suite (S2 Helmholtz has a closed-form solution; S1 diffusion's is a
#: finite-difference solve that costs a tiny case seconds) at these n/axis, these budgets
TINY_PDE = {"spinn-claims": ("helmholtz", 3), "heat4d-gpu": ("heat", 4)}
TINY_SIZES = {"spinn-claims": (4,), "heat4d-gpu": (4,)}
TINY_STEPS, TINY_SAMPLES, TINY_EVAL_POINTS = 12, 3, 256
#: --tiny: smaller networks (compile time dominates a tiny case), where the suite sets these keys
TINY_PARAMS = {"width": 16, "depth": 2, "rank": 8}
MAX_FILES, MAX_FILE_BYTES = 8, 16 * 2**20
CLAIMS = (("spinn-speedup-62x", "62x wall-clock"), ("spinn-flops-1394x", "1,394x FLOPs"),
          ("spinn-memory-29x", "29x memory"))
#: every memory definition the 29x claim is scanned under, each its own source
MEMORY_DEFINITIONS = (
    ("nvml_process_peak_bytes", "NVML process", "NVML usedGpuMemory of the worker (nvidia-smi per process)"),
    ("nvml_peak_bytes", "NVML device", "NVML device memory used, whole GPU"),
    ("nvml_growth_bytes", "NVML growth", "NVML device peak minus the device's use when the case's "
                                         "sampler started (after the CUDA context)"),
    ("device_peak_bytes", "allocator", "JAX allocator peak_bytes_in_use"),
    ("xla_total_bytes", "XLA total", "XLA memory_analysis(): temp + arguments + outputs - aliased"),
    ("xla_temp_bytes", "XLA temp", "XLA memory_analysis(): temp buffers"),
    ("peak_rss_bytes", "host RSS", "host peak RSS of the worker (not GPU memory)"),
)


# ---------------------------------------------------------------- which cases, which budgets

def _order_key(cases):
    pdes = {k: i for i, k in enumerate(dict.fromkeys((c.pde, c.dim) for c in cases))}
    meths = {k: i for i, k in enumerate(dict.fromkeys(c.method for c in cases))}
    return lambda c: (pdes[(c.pde, c.dim)], meths[c.method])


def spinn_claims_subset(cases):
    """pinn and spinn at every n/axis up to 64 (largest first: the claims are stated at 64), then
    pinn at the suite's largest n/axis with a few steps: ``oom`` from its compiled memory
    estimate where it cannot fit, else a short measured run."""
    key = _order_key(cases)
    top = max(c.n_per_axis for c in cases)
    small = sorted((c for c in cases if c.n_per_axis <= CLAIM_N), key=lambda c: (-c.n_per_axis, key(c)))
    big = [replace(c, steps=min(c.steps, BIG_STEPS), timing_samples=1)
           for c in cases if c.method == "pinn" and c.n_per_axis == top and top > CLAIM_N]
    return small + big


def every_other_size(cases):
    """Every other size of the suite's ladder from the smallest (so 8, 16, 32, 64 of 8..64),
    methods interleaved, smallest first."""
    key = _order_key(cases)
    keep = sorted({c.n_per_axis for c in cases})[::2]
    return sorted((c for c in cases if c.n_per_axis in keep), key=lambda c: (c.n_per_axis, key(c)))


SUBSETS = {"spinn-claims": spinn_claims_subset, "heat4d-gpu": every_other_size}


def tiny_subset(suite: str, cases):
    """One PDE of the subset (``TINY_PDE``, else the first), each method at the ``TINY_SIZES``
    of the suite, with ``TINY_PARAMS`` networks."""
    have = {(c.pde, c.dim) for c in cases}
    first = TINY_PDE.get(suite) if TINY_PDE.get(suite) in have else (cases[0].pde, cases[0].dim)
    templates = {}
    for c in cases:
        if (c.pde, c.dim) == first:
            templates.setdefault(c.method, c)
    small = lambda p: {k: TINY_PARAMS.get(k, v) for k, v in p.items()}  # noqa: E731
    return [replace(t, n_per_axis=n, steps=TINY_STEPS, timing_samples=min(t.timing_samples, TINY_SAMPLES),
                    eval_points=min(t.eval_points, TINY_EVAL_POINTS), method_params=small(t.method_params))
            for n in TINY_SIZES[suite] for t in templates.values()]


@dataclass
class Plan:
    suite: str
    rule: str
    cases: list
    train_s: float = 0.0
    #: cases above the claims' size (the baseline's compiled estimate): run after every plan's
    #: other cases, so a short box spends itself on the claims and the heat4d ladder first
    tail: list = field(default_factory=list)

    @property
    def all_cases(self) -> list:
        return self.cases + self.tail


def run_order(plans: list[Plan]) -> list:
    """(plan, case) in the order they run: every plan's cases, then every plan's tail."""
    return [(p, c) for p in plans for c in p.cases] + [(p, c) for p in plans for c in p.tail]


def train_budget(n_cases: int, time_box: float, device: str, tiny: bool) -> float:
    """Seconds of training per case so that the tests, every case's fixed cost and the reports
    fit the box: (box - tests - reserve - n x overhead) / n, within [0.5 s, MAX_CASE_TRAIN_S]."""
    spare = time_box - TESTS_ESTIMATE_S[tiny] - RESERVE_S[tiny] - n_cases * CASE_OVERHEAD_S[device]
    per = max(MIN_CASE_TRAIN_S, min(MAX_CASE_TRAIN_S[tiny], spare / max(n_cases, 1)))
    return math.floor(per * 10) / 10  # a round number in the case ids


def make_plans(device: str, tiny: bool, time_box: float, suites=SUITES) -> list[Plan]:
    """The cases of each suite's subset, in run order, with the scaled training budget (the
    budgets depend only on the arguments, so a rerun finds the same case ids and resumes)."""
    from bench import suite as msuite

    plans = []
    for name in suites:
        s = msuite.load(name, device=device)
        sub = SUBSETS[name](s.cases)
        rule = " ".join(SUBSETS[name].__doc__.split("\n\n")[0].split()).rstrip(".").replace("``", "`")
        if tiny:
            sub = tiny_subset(name, sub)
            pde = f"{sub[0].pde}{sub[0].dim}"
            sizes = ", ".join(map(str, TINY_SIZES[name]))
            rule = (f"--tiny: {pde} only, n/axis {sizes}, networks with {TINY_PARAMS}, {TINY_STEPS} steps; "
                    f"taken from the full check's subset ({rule})")
        plans.append(Plan(name, rule, sub))
    budget = train_budget(sum(len(p.all_cases) for p in plans), time_box, device, tiny)
    for p in plans:
        p.train_s = budget
        cases = [replace(c, max_seconds=min(c.max_seconds or budget, budget)) for c in p.cases]
        p.cases = [c for c in cases if c.n_per_axis <= CLAIM_N]
        p.tail = [c for c in cases if c.n_per_axis > CLAIM_N and c.steps <= BIG_STEPS]
        p.cases += [c for c in cases if c not in p.cases and c not in p.tail]
    return plans


# ---------------------------------------------------------------- stage 1: the gpu tests

GPU_MARK = re.compile(r"^\s*(@pytest\.mark\.gpu\b|pytestmark\s*=.*\bgpu\b)", re.M)


def gpu_test_files(tests: Path = ROOT / "tests") -> list[Path]:
    """Test modules with a test marked ``gpu`` (collecting only these keeps the stage short)."""
    return sorted(p for p in tests.rglob("test_*.py") if GPU_MARK.search(p.read_text(errors="replace")))


def run_gpu_tests(device: str, timeout: float) -> dict:
    files = gpu_test_files()
    if not files:
        return {"status": "not run", "why": f"no test marked gpu under {ROOT / 'tests'}"}
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    if device == "gpu":
        env["PINNBENCH_REQUIRE_GPU"] = "1"
    with tempfile.TemporaryDirectory(prefix="pinnbench-gpucheck-") as tmp:
        junit = Path(tmp) / "junit.xml"
        cmd = [sys.executable, "-m", "pytest", "-m", "gpu", "-q", "-rs", "-p", "no:cacheprovider",
               "--benchmark-disable", f"--junitxml={junit}", *[str(f.relative_to(ROOT)) for f in files]]
        t0 = time.monotonic()
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True, start_new_session=True)
        try:
            out, _ = proc.communicate(timeout=timeout)
            timed_out = False
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            out, _ = proc.communicate()
            timed_out = True
        shown = ["PINNBENCH_REQUIRE_GPU=1"] * (device == "gpu") + ["pytest", "-m", "gpu"]
        res = {"command": " ".join(shown + [str(f.relative_to(ROOT)) for f in files]),
               "returncode": proc.returncode, "wall_s": time.monotonic() - t0,
               "output_tail": (out or "")[-6000:]}
        res.update(_junit_counts(junit))
    if timed_out:
        res.update(status="timeout", why=f"killed after {timeout:g} s")
    elif res.get("tests") is None:
        res.update(status="error", why=(out or "no output").strip().splitlines()[-1][:300] if out else "no output")
    else:
        bad = res["failures"] + res["errors"]
        res["status"] = ("failed" if bad or proc.returncode not in (0, 5) else
                         "skipped" if res["passed"] == 0 else "passed")
    return res


def _junit_counts(path: Path) -> dict:
    import xml.etree.ElementTree as ET

    try:
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError):
        return {"tests": None}
    suites = [root] if root.tag == "testsuite" else list(root.iter("testsuite"))
    n = {k: sum(int(s.get(k, 0)) for s in suites) for k in ("tests", "failures", "errors", "skipped")}
    n["passed"] = n["tests"] - n["failures"] - n["errors"] - n["skipped"]
    return n


# ---------------------------------------------------------------- stage 2: the cases

@dataclass
class CaseRun:
    done: dict = field(default_factory=dict)      # suite -> [case ids run or resumed]
    skipped: list = field(default_factory=list)   # {suite, case_id, method, n_per_axis, why}
    interrupted: bool = False


def run_plans(plans: list[Plan], results: Path, deadline: float, reserve: float, tiny: bool,
              resume: bool, say=print) -> CaseRun:
    """Run the cases in order, one fresh worker each; a case is started only with
    ``MIN_CASE_S`` of the box left, with its timeout cut to what is left."""
    from bench import executors
    from bench.report.tables import fmt

    run = CaseRun()
    order = run_order(plans)
    total = len(order)
    ex = executors.make("local")
    for p in plans:
        run.done.setdefault(p.suite, [])
    for i, (p, case) in enumerate(order, start=1):
        left = deadline - time.monotonic() - reserve
        why = ("interrupted" if run.interrupted else
               f"time box: {max(left, 0):.0f} s left, a case needs {MIN_CASE_S[tiny]:g} s"
               if left < MIN_CASE_S[tiny] else None)
        if why:
            run.skipped.append({"suite": p.suite, "case_id": case.case_id, "method": case.method,
                                "pde": f"{case.pde}{case.dim}", "n_per_axis": case.n_per_axis, "why": why})
            say(f"[{i}/{total}] {case.case_id} skipped ({why})")
            continue
        case = replace(case, timeout_s=min(case.timeout_s, left))
        t0 = time.monotonic()
        state = ex.run([case], results, resume=resume)
        rec = state.done[-1] if state.done else None
        if rec is not None:
            run.done[p.suite].append(case.case_id)
            m = rec.get("metrics") or {}
            st = rec.get("status")
            detail = (f"{fmt(m.get('step_ms'))} ms/step, XLA total {fmt(m.get('xla_total_bytes'), 'bytes')}"
                      if st == "ok" else str(rec.get("error"))[:120])
            say(f"[{i}/{total}] {case.case_id} {st}: {detail} ({time.monotonic() - t0:.0f} s)")
        if state.stop_requested:
            run.interrupted = True
    return run


def load_run_records(results: Path, run: CaseRun) -> dict:
    """suite -> this run's records, read back from the store (clean JSON)."""
    from bench import store

    out = {}
    for suite, ids in run.done.items():
        recs = [store.read_record(store.record_path(results, suite, cid)) for cid in ids]
        out[suite] = [r for r in recs if r is not None]
    return out


# ---------------------------------------------------------------- stage 3: reports and summary

def report_stem(suite: str, device: str) -> str:
    if device == "gpu":
        return suite if suite.endswith("-gpu") else f"{suite}-gpu"
    return f"{suite}-check-{device}"


def write_report(suite: str, records: list, reports: Path, stem: str, results: Path, plan: Plan,
                 skipped: list, context: dict):
    """The suite's report by the report code of ``bench report``, then a section on this check
    (subset, budgets, skipped cases, NVML GPU time per case), and the packed records beside it."""
    from bench.report import markdown
    from bench.report.cli import choose_baseline, default_claims

    out = reports / f"{stem}.md"
    methods = sorted({(r.get("case") or {}).get("method") for r in records} - {None})
    rep = markdown.build(records, suite, out, results, choose_baseline(suite, methods), default_claims(), True)
    with open(out, "a") as fh:
        fh.write("\n" + check_section(suite, records, plan, skipped, context))
    pack_records(records, reports / stem / "records.jsonl.gz")
    return rep


def check_section(suite: str, records: list, plan: Plan, skipped: list, context: dict) -> str:
    import pandas as pd

    from bench.report.tables import fmt, md_table

    lines = ["## GPU check", "",
             f"Written by `{context['command']}` on {context['device']} (time box {context['time_box_s']:g} s, "
             f"{context['started']}). Subset of the suite: {plan.rule}. Training budget per case: "
             f"{plan.train_s:.2g} s (`max_seconds`, scaled to the box; the suite's step budgets otherwise). "
             "The records are packed beside this report (`records.jsonl.gz`).", ""]
    mine = [s for s in skipped if s["suite"] == suite]
    if mine:
        lines += [f"Not run ({len(mine)}): " + "; ".join(f"{s['method']} {s['pde']} n={s['n_per_axis']} "
                                                        f"({s['why']})" for s in mine) + ".", ""]
    else:
        lines += ["Every case of the subset ran (or was already recorded).", ""]
    rows = []
    for r in sorted(records, key=lambda r: (r["case"]["pde"], r["case"]["method"], r["case"]["n_per_axis"])):
        m, c = r.get("metrics") or {}, r["case"]
        util = m.get("nvml_gpu_util_mean")
        rows.append({
            "case": f"{c['method']} {c['pde']}{c['dim']} n={c['n_per_axis']}", "status": r.get("status"),
            "GPU util % (mean / max)": (f"{util:.0f} / {m.get('nvml_gpu_util_max'):.0f}" if util is not None
                                        else "n/a"),
            "energy / step": (f"{fmt(m['nvml_energy_per_step_j'])} J" if m.get("nvml_energy_per_step_j")
                              is not None else "n/a"),
            "mean power": f"{fmt(m.get('nvml_power_mean_w'))} W" if m.get("nvml_power_mean_w") else "n/a",
            "NVML device": fmt(m.get("nvml_peak_bytes"), "bytes"),
            "NVML process": fmt(m.get("nvml_process_peak_bytes"), "bytes"),
            "allocator": fmt(m.get("device_peak_bytes"), "bytes"),
            "XLA total": fmt(m.get("xla_total_bytes"), "bytes"),
            "other processes": ("none" if m.get("nvml_contaminated") is False else
                                "**yes: whole-GPU figures contaminated**" if m.get("nvml_contaminated")
                                else "n/a"),
        })
    lines += ["### NVML over the timed window", "",
              "Utilisation (`nvmlDeviceGetUtilizationRates`) is sampled during the timed chunks only; "
              "energy per step is `nvmlDeviceGetTotalEnergyConsumption` after minus before each timed "
              "chunk, summed, over the steps of those chunks. Both are whole-GPU figures, like the NVML "
              "device peak: *other processes* says whether another process was on the GPU during the case.",
              ""]
    if rows:
        lines += [md_table(pd.DataFrame(rows)), ""]
    reasons = sorted({v for r in records for k, v in (r.get("metrics") or {}).items()
                      if k in ("nvml_energy_reason", "nvml_util_reason", "nvml_contamination_reason") and v})
    if reasons:
        lines += ["Reasons given where a value is n/a: " + "; ".join(reasons[:6]) + ".", ""]
    lines += [f"Reproduce: `PYTHONPATH=. {context['command']} --out OUT` (README, section GPU check).", ""]
    return "\n".join(lines)


def pack_records(records: list, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    with gzip.GzipFile(fileobj=buf, mode="wb", mtime=0) as gz:
        for r in records:
            gz.write((json.dumps(r, sort_keys=True, allow_nan=False) + "\n").encode())
    path.write_bytes(buf.getvalue())
    return path


def read_packed(path: Path) -> list:
    with gzip.open(path, "rt") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def _aggregate(records: list):
    """The report's aggregation, plus ``nvml_growth_bytes`` (median over ok records of NVML
    device peak minus the device's use when the sampler started)."""
    from bench.report import tables

    aggs = tables.aggregate(records)
    if aggs.empty:
        return aggs
    growth = {}
    for r in records:
        m = r.get("metrics") or {}
        peak, base = m.get("nvml_peak_bytes"), m.get("nvml_baseline_bytes")
        if r.get("status") == "ok" and peak is not None and base is not None:
            growth[r["case_id"]] = peak - base
    aggs["nvml_growth_bytes"] = [
        (statistics.median(v) if (v := [growth[i] for i in ids if i in growth]) else None) for ids in aggs["case_ids"]]
    return aggs


def claims_summary(records: list) -> dict:
    """The three SPINN headline claims' verdicts, and the memory claim under every memory
    definition (the claims layer's verdict with the claim's field replaced)."""
    from bench.report import claims as mclaims
    from bench.report.cli import default_claims

    path = default_claims()
    out = {"claims_file": str(path) if path else None, "claims": [], "memory_definitions": []}
    if path is None or not records:
        return out
    aggs = _aggregate(records)
    by_id = {c.claim_id: c for c in mclaims.load_claims(path)}
    for cid, label in CLAIMS:
        c = by_id.get(cid)
        if c is None:
            out["claims"].append({"claim_id": cid, "label": label, "verdict": "missing",
                                  "measured": "n/a", "why": f"not in {path.name}"})
            continue
        v = mclaims.evaluate(c, aggs)
        out["claims"].append({"claim_id": cid, "label": label, "published": c.describe_value(),
                              "verdict": v.verdict, "measured": v.measured, "why": v.why,
                              "value": v.measured_value, "definition": "|".join(c.fields)})
        if cid == "spinn-memory-29x":
            for col, short, what in MEMORY_DEFINITIONS:
                vd = mclaims.evaluate(replace(c, fields=[col]), aggs)
                out["memory_definitions"].append({"field": col, "short": short, "what": what,
                                                  "verdict": vd.verdict, "measured": vd.measured,
                                                  "value": vd.measured_value})
    return out


RATIO_COLUMNS = (("time", "step_ms"), ("FLOPs", "flops_per_step"), ("NVML proc", "nvml_process_peak_bytes"),
                 ("NVML dev", "nvml_peak_bytes"), ("growth", "nvml_growth_bytes"),
                 ("alloc", "device_peak_bytes"), ("XLA temp", "xla_temp_bytes"))


def ratio_rows(records: list, at_n: int = CLAIM_N) -> list[dict]:
    """pinn / spinn per device and PDE at n/axis ``at_n`` (else the largest size both have)."""
    from bench.report.tables import RUN_COLUMNS, STATUS_LABEL, ratio_value

    aggs = _aggregate(records)
    rows = []
    if aggs.empty:
        return rows
    for (dev, pde, dim), g in aggs.groupby(["device_name", "pde", "dim"], sort=False):
        both = sorted(set(g[g.method == "pinn"].n_per_axis) & set(g[g.method == "spinn"].n_per_axis))
        if not both:
            continue
        n = at_n if at_n in both else both[-1]
        b = g[(g.method == "pinn") & (g.n_per_axis == n)].iloc[0]
        a = g[(g.method == "spinn") & (g.n_per_axis == n)].iloc[0]
        row = {"device": dev, "pde": f"{pde}{dim}", "n_per_axis": int(n)}
        for name, col in RATIO_COLUMNS:
            r = ratio_value(b.get(col), a.get(col))
            failed = col in RUN_COLUMNS + ["step_ms", "nvml_growth_bytes"] and (b["n_ok"] == 0 or a["n_ok"] == 0)
            row[name] = r
            if r is None and failed:
                who = b if b["n_ok"] == 0 else a
                row[name] = STATUS_LABEL.get(who["failure"] or "error", "n/a")
        rows.append(row)
    return rows


def _cell(v) -> str:
    from bench.report.tables import fmt

    if isinstance(v, str):
        return v
    if v is None:
        return "n/a"
    return f"{v:,.0f}x" if v >= 100 else fmt(v, "ratio")


def summary_text(ctx: dict, tests: dict, run: CaseRun, recs: dict, claims: dict, ratios: dict) -> str:
    """The one screen: device, time, tests, cases, the claims' verdicts, the 29x under every
    memory definition, the ratios at 64^3."""
    from collections import Counter

    lines = [f"pinnbench gpu-check on {ctx['device']} ({ctx['started']}, git {ctx['git_commit']})",
             f"time: {ctx['elapsed_s']:.0f} s of the {ctx['time_box_s']:g} s box "
             f"(tests {tests.get('wall_s', 0):.0f} s, cases {ctx['cases_s']:.0f} s, reports {ctx['reports_s']:.0f} s)"]
    if tests.get("tests") is not None:
        lines.append(f"gpu tests (pytest -m gpu): {tests['status']}: {tests['passed']} passed, "
                     f"{tests['failures'] + tests['errors']} failed, {tests['skipped']} skipped")
    else:
        lines.append(f"gpu tests: {tests.get('status')}: {tests.get('why')}")
    for suite, rs in recs.items():
        st = Counter(r.get("status") for r in rs)
        sk = sum(1 for s in run.skipped if s["suite"] == suite)
        c = sum(1 for r in rs if (r.get("metrics") or {}).get("nvml_contaminated"))
        e = sum(1 for r in rs if (r.get("metrics") or {}).get("nvml_energy_per_step_j") is not None)
        lines.append(f"{suite}: {len(rs)} cases ({', '.join(f'{n} {k}' for k, n in sorted(st.items())) or 'none'}), "
                     f"{sk} skipped by the time box; energy/step in {e}, other processes on the GPU in {c}")
    lines += ["", "SPINN claims (Cho et al., NeurIPS 2023), pinn / spinn at equal collocation points:"]
    for c in claims["claims"]:
        lines.append(f"  {c['label']:<15} {c['verdict'].upper():<20} measured {c['measured']}")
        if c["verdict"] != "reproduced":
            why = c["why"] if len(c["why"]) <= 100 else c["why"][:97] + "..."
            lines.append(f"  {'':<15} {why}")
    defs = claims["memory_definitions"]
    if defs:
        cells = [f"{d['short']} {_cell(d['value'])}" for d in defs]
        lines.append("  29x memory by definition (best size): " + ", ".join(cells[:4]))
        lines.append("  " + " " * len("29x memory by definition (best size): ") + ", ".join(cells[4:]))
        ok = [d for d in defs if d["verdict"] == "reproduced"]
        lines.append("  memory definition that reproduces 29x: " + (
            "; ".join(f"{d['short']} ({d['what']})" for d in ok) if ok else
            "none here (GPU claim: only GPU records can reproduce it)"))
    for suite, rows in ratios.items():
        if not rows:
            continue
        lines += ["", f"{suite}: pinn / spinn at n/axis {CLAIM_N} (else the largest size both ran):",
                  "  " + f"{'PDE':<15}{'n':>4} " + "".join(f"{name:>11}" for name, _ in RATIO_COLUMNS)]
        for r in rows:
            lines.append("  " + f"{r['pde']:<15}{r['n_per_axis']:>4} " +
                         "".join(f"{_cell(r[name]):>11}" for name, _ in RATIO_COLUMNS))
    if run.skipped:
        lines += ["", f"not run: {len(run.skipped)} case(s) (" + "; ".join(
            f"{s['method']} {s['pde']} n={s['n_per_axis']}" for s in run.skipped[:6])
                  + ("; ..." if len(run.skipped) > 6 else "") + f"): {run.skipped[0]['why']}"]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------- the files in --out

def write_out(out: Path, reports: Path, stems: dict, summary: str, data: dict) -> list[dict]:
    """Copy the reports, packed records and figures into ``out`` (flat) and check the limits;
    the figures' tar is left out (and said so) where it would break them."""
    from bench import store

    out.mkdir(parents=True, exist_ok=True)
    files = []

    def put(name, src=None, text=None):
        dest = out / name
        if src is not None:
            shutil.copyfile(src, dest)
        else:
            dest.write_text(text)
        files.append(dest)

    for suite, stem in stems.items():
        if (reports / f"{stem}.md").exists():
            put(f"{stem}.md", reports / f"{stem}.md")
            put(f"{stem}.records.jsonl.gz", reports / stem / "records.jsonl.gz")
    figs = sorted(p for stem in stems.values() for p in (reports / stem).glob("fig-*.png"))
    if figs:
        tar = out / "figures.tar"
        with tarfile.open(tar, "w") as tf:
            for p in figs:
                tf.add(p, arcname=p.relative_to(reports).as_posix())
        if tar.stat().st_size > MAX_FILE_BYTES:
            data["notes"].append(f"figures left out of --out: the tar is {tar.stat().st_size / 2**20:.1f} MiB "
                                 f"(limit {MAX_FILE_BYTES / 2**20:g} MiB); they are in {reports}")
            tar.unlink()
        else:
            files.append(tar)
    put("gpu-check-summary.txt", text=summary)
    files.append(out / "gpu-check.json")
    listing = [{"name": f.name, "bytes": f.stat().st_size if f.exists() else None} for f in files]
    data["files"] = listing
    summary_json = json.dumps(store.json_safe(data), indent=1, default=str, allow_nan=False)
    (out / "gpu-check.json").write_text(summary_json + "\n")
    listing[-1]["bytes"] = (out / "gpu-check.json").stat().st_size
    too_big = [f for f in listing if f["bytes"] > MAX_FILE_BYTES]
    if len(listing) > MAX_FILES or too_big:
        raise BenchError(f"--out {out}: {len(listing)} files, {len(too_big)} over {MAX_FILE_BYTES} bytes "
                         f"(limits: {MAX_FILES} files, {MAX_FILE_BYTES} bytes each)")
    return listing


def unpack(src: Path, reports: Path, results: Path, say=print) -> int:
    """Install a ``--out`` folder carried back from the GPU machine: reports and figures into
    ``reports``, packed records beside the reports and as records under ``results``."""
    from bench import store

    src = Path(src)
    if not (src / "gpu-check.json").is_file():
        raise BenchError(f"--unpack {str(src)!r}: no gpu-check.json there (not a gpu-check --out folder)")
    reports.mkdir(parents=True, exist_ok=True)
    n = 0
    for md in sorted(src.glob("*.md")):
        shutil.copyfile(md, reports / md.name)
        packed = src / f"{md.stem}.records.jsonl.gz"
        if packed.is_file():
            (reports / md.stem).mkdir(exist_ok=True)
            shutil.copyfile(packed, reports / md.stem / "records.jsonl.gz")
            for rec in read_packed(packed):
                store.write_record(results, rec)
                n += 1
    tar = src / "figures.tar"
    if tar.is_file():
        with tarfile.open(tar) as tf:
            for m in tf.getmembers():
                parts = Path(m.name).parts
                if not m.isfile() or m.name.startswith("/") or ".." in parts or len(parts) != 2:
                    raise BenchError(f"--unpack: {tar.name} holds an unexpected member {m.name!r}")
                dest = reports / m.name
                dest.parent.mkdir(parents=True, exist_ok=True)
                dest.write_bytes(tf.extractfile(m).read())
    say(f"unpacked {src}: reports into {reports}, {n} records into {results}")
    return 0


# ---------------------------------------------------------------- the command

def add_arguments(p) -> None:
    p.add_argument("--out", type=Path, help="folder for everything written (at most 8 files of at most 16 MiB)")
    p.add_argument("--device", choices=("gpu", "cpu", "auto"), default="gpu",
                   help="gpu (default): refuses where JAX has no CUDA plugin; cpu: the same on the CPU")
    p.add_argument("--tiny", action="store_true", help="tiny sizes and budgets, scratch results and reports "
                                                       "(the CI check; about a minute on a CPU)")
    p.add_argument("--time-box", type=float, metavar="S",
                   help=f"seconds for the whole command (default {TIME_BOX_S:g}; --tiny {TINY_TIME_BOX_S:g})")
    p.add_argument("--results", type=Path, help="results directory (default results/gpu-check-<device>; "
                                                "--tiny: a scratch directory)")
    p.add_argument("--reports", type=Path, help="reports directory (default reports; --tiny: a scratch directory)")
    p.add_argument("--fresh", action="store_true", help="re-run cases already recorded in the results directory")
    p.add_argument("--dry-run", action="store_true", help="print the plan (cases, budgets, estimated time) and exit")
    p.add_argument("--unpack", type=Path, metavar="DIR",
                   help="install a --out folder carried back from a GPU machine into --reports and --results "
                        "(default reports, results/gpu-check-gpu) and exit")


def dry_run(plans: list[Plan], device: str, tiny: bool, box: float) -> int:
    n = sum(len(p.all_cases) for p in plans)
    for p in plans:
        print(f"{p.suite}: {p.rule}")
    for p, c in run_order(plans):
        print(f"  {c.case_id:<40} {c.method:<6} {c.pde}{c.dim} n/axis {c.n_per_axis:<4} steps {c.steps:<6} "
              f"max_seconds {c.max_seconds:g}")
    est = TESTS_ESTIMATE_S[tiny] + RESERVE_S[tiny] + n * (CASE_OVERHEAD_S[device] + plans[0].train_s)
    print(f"{n} cases; planned {est:.0f} s of the {box:g} s box (gpu tests {TESTS_ESTIMATE_S[tiny]:g} s, "
          f"{CASE_OVERHEAD_S[device]:g} s fixed + {plans[0].train_s:g} s training per case, "
          f"reports {RESERVE_S[tiny]:g} s)")
    return 0


def main(args, device: str) -> int:
    """Run the check on ``device`` (resolved by the caller: ``bench.devices.resolve_device``)."""
    if args.unpack is not None:
        return unpack(args.unpack, args.reports or Path("reports"), args.results or Path("results/gpu-check-gpu"))
    box = args.time_box if args.time_box is not None else (TINY_TIME_BOX_S if args.tiny else TIME_BOX_S)
    if not (box > 0 and math.isfinite(box)):
        raise BenchError(f"--time-box must be a positive number of seconds, got {args.time_box}")
    if args.out is not None and args.out.exists() and not args.out.is_dir():
        raise BenchError(f"--out {str(args.out)!r} exists and is not a folder")
    t0 = time.monotonic()
    deadline = t0 + box
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    scratch = tempfile.mkdtemp(prefix="pinnbench-gpucheck-") if args.tiny else None
    try:
        results = args.results or (Path(scratch) / "results" if scratch else Path(f"results/gpu-check-{device}"))
        reports = args.reports or (Path(scratch) / "reports" if scratch else Path("reports"))
        plans = make_plans(device, args.tiny, box)
        n_cases = sum(len(p.all_cases) for p in plans)
        if args.dry_run:
            return dry_run(plans, device, args.tiny, box)
        print(f"gpu-check on {device}: {n_cases} cases ({', '.join(f'{p.suite} {len(p.cases)}' for p in plans)}), "
              f"{plans[0].train_s:.2g} s training each, time box {box:g} s; results in {results}", flush=True)
        print("stage 1: pytest -m gpu" + (" (PINNBENCH_REQUIRE_GPU=1)" if device == "gpu" else ""), flush=True)
        tests = run_gpu_tests(device, min(TESTS_TIMEOUT_S[args.tiny], max(10.0, 0.3 * box)))
        counts = (f"{tests['passed']} passed, {tests['failures'] + tests['errors']} failed, {tests['skipped']} skipped"
                  if tests.get("tests") is not None else tests.get("why"))
        print(f"  {tests['status']}: {counts} ({tests.get('wall_s', 0):.0f} s)", flush=True)
        if args.fresh:
            for p in plans:
                shutil.rmtree(Path(results) / p.suite, ignore_errors=True)
        print("stage 2: cases", flush=True)
        t_cases = time.monotonic()
        run = run_plans(plans, Path(results), deadline, RESERVE_S[args.tiny], args.tiny, not args.fresh,
                        say=lambda s: print("  " + s, flush=True))
        cases_s = time.monotonic() - t_cases
        recs = load_run_records(Path(results), run)
        print("stage 3: reports", flush=True)
        t_rep = time.monotonic()
        device_name = next((r.get("env", {}).get("device_name") for rs in recs.values() for r in rs
                            if r.get("env", {}).get("device_name")), device)
        from bench.measure.env import git_commit

        ctx = {"command": "python -m bench gpu-check" + (" --tiny" if args.tiny else "") + f" --device {device}",
               "device": device_name, "device_class": device, "time_box_s": box, "started": started,
               "git_commit": git_commit(), "tiny": args.tiny}
        stems = {p.suite: report_stem(p.suite, device) for p in plans}
        reps = {}
        for p in plans:
            if recs.get(p.suite):
                reps[p.suite] = write_report(p.suite, recs[p.suite], Path(reports), stems[p.suite], Path(results),
                                             p, run.skipped, ctx)
        claims = claims_summary(recs.get("spinn-claims", []))
        ratios = {s: ratio_rows(rs) for s, rs in recs.items()}
        ctx.update(elapsed_s=time.monotonic() - t0, cases_s=cases_s, reports_s=time.monotonic() - t_rep)
        summary = summary_text(ctx, tests, run, recs, claims, ratios)
        data = {**ctx, "tests": tests, "interrupted": run.interrupted, "notes": [],
                "plans": [{"suite": p.suite, "rule": p.rule, "train_s": p.train_s,
                           "cases": [c.case_id for c in p.all_cases]} for p in plans],
                "skipped": run.skipped, "claims": claims, "ratios": ratios,
                "reports": {s: str(Path(reports) / f"{stems[s]}.md") for s in reps}}
        (Path(reports)).mkdir(parents=True, exist_ok=True)
        summary_file = Path(reports) / ("gpu-check-summary.txt" if device == "gpu"
                                        else f"gpu-check-summary-{device}.txt")
        summary_file.write_text(summary)
        if args.out is not None:
            write_out(args.out, Path(reports), {s: stems[s] for s in reps}, summary, data)
        print("\n" + summary, end="", flush=True)
        print(f"summary: {args.out / 'gpu-check-summary.txt' if args.out else summary_file}", flush=True)
        bad_cases = any(r.get("status") == "error" for rs in recs.values() for r in rs)
        if run.interrupted:
            return 130
        return 1 if tests["status"] in ("failed", "timeout", "error") or bad_cases else 0
    finally:
        if scratch:
            shutil.rmtree(scratch, ignore_errors=True)
