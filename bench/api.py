"""pinnbench from Python (a notebook, a script): the same behaviour as the CLI, which uses it.

>>> from bench import api
>>> cases, est = api.plan("smoke")                 # the cases and their time estimates
>>> records = api.run("smoke", results="results")  # progress shown as in the CLI
>>> df = api.results("results", suite="smoke")     # one row per record (pandas)
>>> api.report("smoke", results="results")         # reports/smoke.md, tables and figures

Errors are ``bench.errors.BenchError`` (the CLI prints them as one line and exits 2).
"""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

from bench.errors import BenchError

DEFAULT_RESULTS = Path("results")


def _check_positive(name: str, value, integer: bool = False) -> None:
    if value is None:
        return
    ok = isinstance(value, int) and not isinstance(value, bool) if integer else \
        isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or value <= 0:
        kind = "a positive integer" if integer else "a positive number"
        raise BenchError(f"{name} must be {kind}, got {value!r}")


def plan(suite: str, *, results: str | Path | None = DEFAULT_RESULTS, methods: list[str] | None = None,
         seeds: int | None = None, rounds: int | None = None, device: str = "auto",
         timeout: float | None = None, memory_limit: float | None = None, executor: str = "local",
         estimate: bool = True, flops: bool = True, **executor_options):
    """The suite, its executor, the cases a run would execute (in run order) and their time
    estimates (``{case_id: bench.estimate.Estimate}``; empty if ``estimate`` is false;
    ``flops=False`` skips the FLOP pass, which lowers every case in a helper process)."""
    from bench import executors
    from bench import suite as msuite

    _check_positive("seeds", seeds, integer=True)
    _check_positive("rounds", rounds, integer=True)
    _check_positive("timeout", timeout)
    _check_positive("memory_limit", memory_limit)
    if methods is not None and not methods:
        raise BenchError("methods is empty (give one or more method names)")
    ex = executors.make(executor, **executor_options)
    s = msuite.load(str(suite), device="cpu", methods_filter=methods, seeds=seeds, rounds=rounds)
    from bench.devices import resolve_device, suite_frameworks

    dev = resolve_device(device, suite_frameworks(s))
    cases = [replace(c, device=dev) for c in s.cases]
    if timeout:
        cases = [replace(c, timeout_s=float(timeout)) for c in cases]
    if memory_limit:
        cases = [replace(c, memory_limit_gb=float(memory_limit)) for c in cases]
    cases = ex.order(cases)
    est = {}
    if estimate:
        from bench.estimate import estimate_cases

        est = estimate_cases(cases, Path(results) / s.name if results is not None else None, flops=flops)
    return s, ex, cases, est


def run(suite: str, *, results: str | Path = DEFAULT_RESULTS, resume: bool = True, rerun_stale: bool = False,
        wait: bool = False, console=None, progress: bool = True, **options) -> list[dict]:
    """Run a suite (resuming by default) and return every record of it, skipped ones too.
    ``rerun_stale``: also re-run recorded cases made by another git commit or other package
    versions (``store.stale_reason``; by default they are reused, and the skip line says so).
    ``options`` as for ``plan``. Progress goes to ``console`` (a rich Console; default stdout),
    live on a terminal, plain lines elsewhere; ``progress=False`` shows nothing.
    Before any case, the results directory is probed (a record must be writable there) and
    locked for this suite (``bench.guard``): a second run on it refuses, or with ``wait``
    waits for the first."""
    from bench import guard
    from bench.progress import RunProgress
    from bench.store import code_version, stale_reason

    results = Path(results)
    # records and budgets only: the FLOP pass would delay the first case (dry runs have it)
    s, ex, cases, est = plan(suite, results=results, flops=False, **options)
    current = code_version()
    if rerun_stale:
        ex.rerun_stale = current
    if console is None:
        console = default_console()
    prog = RunProgress(console, cases, est, skip_note=lambda rec: stale_reason(rec, current)) \
        if progress else None
    guard.probe(results)  # refuse before a case trains, not after
    try:
        with guard.RunLock(results, s.name, wait=wait):
            state = ex.run(cases, results, resume=resume, progress=prog)
    finally:
        if prog is not None:
            prog.close()
    run.last_state = state  # the CLI reads stop_requested from here
    return state.done


run.last_state = None


def results(results: str | Path = DEFAULT_RESULTS, suite: str | None = None, what: str = "cases"):
    """The records under ``results`` as a pandas DataFrame: ``what`` is ``cases`` (one row per
    record), ``curves`` (one row per record x training-curve point) or ``env`` (one row per
    record: its environment)."""
    from bench import store

    results = Path(results)
    if not results.exists():
        raise BenchError(f"results {str(results)!r} does not exist")
    recs = store.load_records(results, suite)
    return frame(recs, what)


#: the tables ``results``/``bench export --what`` can give
TABLES = ("cases", "curves", "env")


def frame(records: list[dict], what: str = "cases"):
    from bench import export

    if what not in TABLES:
        raise BenchError(f"what {what!r} is not valid (valid: {', '.join(TABLES)})")
    return {"cases": export.cases_frame, "curves": export.curves_frame, "env": export.env_frame}[what](records)


def report(suite: str, *, results: str | Path = DEFAULT_RESULTS, out: str | Path | None = None,
           baseline: str | None = None, figures: bool = True) -> Path:
    """Write the suite's markdown report (default ``reports/<suite>.md``); its path."""
    from bench.report.markdown import build_report

    return build_report(suite, Path(results), Path(out) if out else None, baseline, None, figures).path


def default_console():
    import sys

    from rich.console import Console

    return Console(highlight=False, width=None if sys.stdout.isatty() else 160)
