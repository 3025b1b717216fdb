"""The ``report`` and ``compare`` subcommands, registered by ``bench.cli``."""

from __future__ import annotations

import sys
from pathlib import Path

from bench.errors import BenchError

DEFAULT_RESULTS = Path("results")
DEFAULT_REPORTS = Path("reports")
REPO_CLAIMS = Path(__file__).resolve().parents[2] / "results" / "reference" / "claims.csv"


def default_claims() -> Path | None:
    """The repository's claims CSV, else ./results/reference/claims.csv, else None."""
    for p in (Path("results/reference/claims.csv"), REPO_CLAIMS):
        if p.is_file():
            return p
    return None


def add_commands(sub) -> None:
    r = sub.add_parser("report", help="write reports/<suite>.md with tables, figures and claims")
    r.add_argument("--suite", required=True, help="suite name (the records' subdirectory)")
    r.add_argument("--results", type=Path, default=DEFAULT_RESULTS, help="results directory")
    r.add_argument("--from", dest="from_data", type=Path, metavar="RECORDS_JSONL_GZ",
                   help="build from a report's shipped records (reports/<suite>/records.jsonl.gz) instead "
                        "of --results; used by default when --results has no records of the suite")
    r.add_argument("--out", type=Path, help="markdown file (default reports/<suite>.md)")
    r.add_argument("--baseline", help="method the ratios are taken against (default: the suite's "
                                      "`baseline`, else pinn, else the first method)")
    r.add_argument("--claims", type=Path, help="claims CSV (default results/reference/claims.csv)")
    r.add_argument("--no-figures", action="store_true", help="tables and claims only (faster)")
    r.set_defaults(handler=cmd_report)

    c = sub.add_parser("compare", help="compare two results directories case by case; "
                                       "exit 1 on a regression beyond the threshold")
    c.add_argument("base", type=Path, metavar="BASE", help="results directory of the reference run")
    c.add_argument("new", type=Path, metavar="NEW", help="results directory of the run to check")
    c.add_argument("--threshold", default="10%", help="relative change that counts: 10%% or 0.1 (a bare 10 "
                                                           "is ambiguous and refused)")
    c.add_argument("--suite", help="only this suite's records")
    c.add_argument("--metrics", default="time,memory,error",
                   help="comma-separated subset of time, memory, error")
    c.add_argument("--all", action="store_true", help="print every comparison, not only what moved")
    c.set_defaults(handler=cmd_compare)


def _suites_with_records(results: Path) -> list[str]:
    return sorted(p.name for p in results.iterdir() if p.is_dir() and any(p.glob("*.json"))) \
        if results.is_dir() else []


def choose_baseline(suite: str, methods) -> str:
    """The suite file's ``baseline`` if it ran, else ``pinn`` if it ran, else the first method."""
    from bench.report.markdown import suite_file

    declared = (suite_file(suite) or {}).get("baseline")
    for m in (declared, "pinn"):
        if m in methods:
            return m
    return sorted(m for m in methods if m)[0]


def build_report(suite: str, results: Path, out: Path | None = None, baseline: str | None = None,
                 claims: Path | None = None, figures: bool = True, from_data: Path | None = None):
    """Load the suite's records (from ``results``, or from shipped data: ``from_data``, else
    the report's own shipped data when ``results`` has none) and write the report; BenchError on
    bad input."""
    from bench.report import markdown
    from bench.report.claims import load_claims
    from bench.store import load_records, read_shipped, shipped_path

    results = Path(results)
    out = Path(out) if out is not None else DEFAULT_REPORTS / f"{suite}.md"
    if from_data is not None:
        records = [r for r in read_shipped(from_data) if r.get("suite") in (suite, None)]
        if not records:
            raise BenchError(f"--from {str(from_data)!r} holds no records of suite {suite!r}")
    else:
        records = load_records(results, suite) if results.is_dir() else []
        if not records and shipped_path(out).is_file():
            from_data = shipped_path(out)
            sys.stderr.write(f"bench: note: no records of suite {suite!r} under {results}; building from "
                             f"the report's shipped data {from_data}\n")
            records = read_shipped(from_data)
    if not records:
        if not results.is_dir():
            raise BenchError(f"--results {str(results)!r} does not exist (and no shipped data at "
                             f"{shipped_path(out)})")
        have = _suites_with_records(results)
        raise BenchError(f"no records for suite {suite!r} under {results} "
                         f"(suites with records: {', '.join(have) or 'none'})")
    methods = sorted({(r.get("case") or {}).get("method") for r in records} - {None})
    if baseline is None:
        baseline = choose_baseline(suite, methods)
    if baseline not in methods:
        raise BenchError(f"--baseline {baseline!r} has no records in suite {suite!r} "
                         f"(valid: {', '.join(methods)})")
    if claims is not None:
        if not Path(claims).is_file():
            raise BenchError(f"--claims {str(claims)!r} does not exist")
    else:
        claims = default_claims()
    if claims is not None:
        try:
            load_claims(claims)
        except (ValueError, KeyError) as e:
            raise BenchError(f"claims file: {e}") from None
    out = Path(out) if out is not None else DEFAULT_REPORTS / f"{suite}.md"
    from bench.outfiles import check_output

    check_output(out, "--out", make_parents=True)  # missing directories are made (reports/)
    try:
        return markdown.build(records, suite, out, results, baseline, claims, figures, shipped_from=from_data)
    except OSError as e:
        raise BenchError(f"--out {str(out)!r}: cannot write the report ({e.strerror or e})") from None


def write_report(suite_name, results_dir, out_path, console) -> Path:
    """Hook of ``bench run --report``: write the report and say where it went."""
    rep = build_report(suite_name, Path(results_dir), out_path)
    msg = f"report: {rep.path} ({len(rep.figures)} figures)"
    if console is not None:
        console.print(msg)
    else:
        print(msg)
    return rep.path


def cmd_report(args) -> int:
    rep = build_report(args.suite, args.results, args.out, args.baseline, args.claims,
                       not args.no_figures, args.from_data)
    # the report's own count (markdown.claim_counts), so the two never disagree
    print(f"report: {rep.path} ({len(rep.figures)} figures; claims: "
          + (", ".join(f"{n} {k}" for k, n in rep.claim_counts.items()) or "none") + ")")
    return 0


def cmd_compare(args) -> int:
    from bench.report.compare import METRICS, compare, parse_threshold, render

    thr = parse_threshold(args.threshold)
    metrics = tuple(m.strip() for m in args.metrics.split(",") if m.strip())
    bad = [m for m in metrics if m not in METRICS]
    if bad or not metrics:
        raise BenchError(f"--metrics {args.metrics!r}: {bad[0] if bad else 'empty'} is not valid "
                         f"(valid: {', '.join(METRICS)})")
    df, notes = compare(args.base, args.new, thr, args.suite, metrics)
    sys.stdout.write(render(df, notes, thr, args.all) + "\n")
    return 1 if (df["verdict"] == "regression").any() else 0
