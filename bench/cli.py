"""Command line: ``python -m bench {list,run,export,report,compare,gpu-check}``.

Bad input ends with one line ``bench: error: ...`` naming the bad value and the valid choices,
and exit code 2.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bench.devices import jax_has_cuda, resolve_device, suite_frameworks  # noqa: F401 (the CLI's API)
from bench.errors import BenchError
from bench.outfiles import check_output, write_atomic  # noqa: F401

DEFAULT_RESULTS = Path("results")


class Parser(argparse.ArgumentParser):
    """One-line errors, exit 2; no abbreviated options (``--devic`` is an error, not
    ``--device``)."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def error(self, message):  # one line, exit 2
        sys.stderr.write(f"bench: error: {' '.join(message.split())}\n")
        raise SystemExit(2)


def build_parser() -> Parser:
    p = Parser(prog="python -m bench", description=__doc__.splitlines()[0])
    p.add_argument("--version", action="version", version=version_string())
    sub = p.add_subparsers(dest="command", required=True, parser_class=Parser)

    sub.add_parser("list", help="list suites, methods and PDEs")

    r = sub.add_parser("run", help="run a suite")
    r.add_argument("--suite", required=True, help="suite name (see `list`) or path to a .toml")
    r.add_argument("--methods", help="comma-separated subset of the suite's methods")
    r.add_argument("--seeds", type=int, help="run each case with this many seeds")
    r.add_argument("--results", type=Path, default=DEFAULT_RESULTS, help="results directory")
    r.add_argument("--resume", action=argparse.BooleanOptionalAction, default=True,
                   help="skip cases already recorded with a final status (default; --no-resume "
                        "re-runs them)")
    r.add_argument("--fresh", action="store_true", help="re-run cases already recorded (= --no-resume)")
    r.add_argument("--rerun-stale", action="store_true",
                   help="re-run recorded cases made by another git commit or other package versions "
                        "(by default they are reused and counted as stale)")
    r.add_argument("--executor", choices=("local", "submitit"), default="local",
                   help="local: one case at a time here; submitit: one SLURM job per case "
                        "(submitit's local executor where there is no SLURM)")
    r.add_argument("--slurm-partition", help="SLURM partition for --executor submitit")
    r.add_argument("--max-parallel", type=int, help="concurrent jobs for --executor submitit (default 8)")
    r.add_argument("--rounds", type=int, help="repeat every case this many times, interleaved "
                                              "(each round is its own record)")
    r.add_argument("--memory-limit", type=float, metavar="GB",
                   help="host memory limit per worker; a worker above it is killed and recorded oom")
    r.add_argument("--device", choices=("auto", "cpu", "gpu"), default="auto")
    r.add_argument("--timeout", type=float, help="per-case timeout in seconds (overrides the suite)")
    r.add_argument("--dry-run", action="store_true",
                   help="list the cases with time estimates and exit (nothing runs)")
    r.add_argument("--report", action="store_true", help="write the suite's report after the run")
    r.add_argument("--wait", action="store_true", help="if another run holds the results directory for "
                                                      "this suite, wait for it instead of refusing")

    e = sub.add_parser("export", help="write the records as a table (CSV or Parquet)")
    e.add_argument("--results", type=Path, default=DEFAULT_RESULTS)
    e.add_argument("--suite", help="only this suite's records")
    e.add_argument("--what", choices=("cases", "curves", "env"), default="cases",
                   help="cases: one row per record; curves: one row per record x training-curve "
                        "point (long format); env: one row per record, its environment")
    e.add_argument("--format", choices=("csv", "parquet"), default="csv")
    e.add_argument("-o", "--output", type=Path, help="output file (default: stdout for csv)")

    _add_report_commands(sub)

    from bench import gpucheck

    g = sub.add_parser("gpu-check", help="the GPU path in one time-boxed command: gpu tests, the "
                                          "spinn-claims and heat4d-gpu subsets, reports, claims summary")
    gpucheck.add_arguments(g)
    return p


def _add_report_commands(sub) -> None:
    """`report` and `compare` live in bench.report; registered here when available."""
    try:
        from bench.report import cli as report_cli
    except ImportError:
        return
    report_cli.add_commands(sub)


def cmd_list(args) -> int:
    import methods
    import pdes
    from bench.suite import available_suites, load

    print("Suites:")
    for name in available_suites():
        try:
            s = load(name)
            print(f"  {name:<22} {len(s.cases):>3} cases  {s.description}")
        except BenchError as e:
            print(f"  {name:<22} INVALID: {e}")
    print("Methods:")
    for name in methods.REGISTRY.names():
        m = methods.get(name)
        print(f"  {name:<22} [{m.framework}, {m.points_kind} points] {m.description}")
    print("Optimizers (case parameter `optimizer`; the methods that take each, presets left out):")
    from methods import optim

    for name, opt in optim.OPTIMIZERS.items():
        takers = [n for n in methods.REGISTRY.names()
                  if methods.get(n).preset_of is None and methods.get(n).optimizer_reason(name) is None]
        print(f"  {name:<22} {', '.join(takers)}  ({opt.citation})")
    print("PDEs:")
    for name in pdes.REGISTRY.names():
        c = pdes.get(name)
        dims = "any" if c.dims is None else ",".join(map(str, c.dims))
        kind = "(d+1)" if c.time_dependent else "d"
        print(f"  {name:<22} dims {dims} {kind}  {c.description}")
    return 0


def cmd_run(args) -> int:
    from bench import api

    resume = args.resume and not args.fresh
    mfilter = [m.strip() for m in args.methods.split(",") if m.strip()] if args.methods else None
    if args.methods is not None and not mfilter:
        raise BenchError("--methods is empty (give a comma-separated list of method names)")
    for flag, v in (("--seeds", args.seeds), ("--rounds", args.rounds)):
        if v is not None and v < 1:
            raise BenchError(f"{flag} must be a positive integer, got {v}")
    for flag, v, unit in (("--timeout", args.timeout, "seconds"), ("--memory-limit", args.memory_limit, "GB")):
        if v is not None and not (v > 0 and v != float("inf")):
            raise BenchError(f"{flag} must be a positive number of {unit}, got {v}")
    options = dict(methods=mfilter, seeds=args.seeds, rounds=args.rounds, device=args.device,
                   timeout=args.timeout, memory_limit=args.memory_limit, executor=args.executor,
                   slurm_partition=args.slurm_partition, max_parallel=args.max_parallel)
    console = api.default_console()
    if args.dry_run:
        from bench.estimate import total

        s, ex, cases, est = api.plan(args.suite, results=args.results, **options)
        for c in cases:
            rnd = f" round={c.round}" if c.round else ""
            e = est.get(c.case_id)
            console.print(f"{c.case_id}  {c.method:<14} n_per_axis={c.n_per_axis} seed={c.seed}{rnd}  "
                          f"estimate {e.label() if e else 'unknown'}", markup=False)
        if s.refused or s.excluded:  # a methods = "all" suite: the matrix, PDE by PDE
            from bench.suite import problem_label

            matrix: dict[str, list[str]] = {}
            for c in cases:
                ms = matrix.setdefault(problem_label(c.pde, c.dim, c.pde_params), [])
                if c.method not in ms:
                    ms.append(c.method)
            console.print("matrix (PDE: methods that run):", markup=False)
            for p, ms in matrix.items():
                console.print(f"  {p}: {len(ms)} methods: {', '.join(ms)}", markup=False)
        if s.refused:
            console.print(f"support matrix: {len(s.refused)} method x PDE pair(s) of methods = \"all\" "
                          "cannot run (not cases):", markup=False)
            for r in s.refused:
                console.print(f"  {r.problem}  {r.method:<14} cannot: {r.reason}", markup=False)
        if s.excluded:
            console.print(f"excluded by the suite: {', '.join(s.excluded)}", markup=False)
        known, unknown = total(est)
        from bench.progress import fmt_duration

        console.print(f"{len(cases)} cases; estimated total ~{fmt_duration(known)}"
                      + (f" (+{unknown} cases without an estimate)" if unknown else "")
                      + " (estimates, not measurements)", markup=False)
        return 0
    s, ex, cases, _ = api.plan(args.suite, results=args.results, estimate=False, **options)
    from rich.markup import escape

    from bench import guard
    from bench.store import code_version, stale_reason

    current = code_version()
    guard.probe(args.results)  # before the header line: a refusal is the only output
    console.print(f"[bold]suite {s.name}[/]: {len(cases)} cases on {cases[0].device if cases else '?'} "
                  f"({ex.name} executor); results in {args.results / s.name}")
    done = api.run(args.suite, results=args.results, resume=resume, console=console,
                   rerun_stale=args.rerun_stale, wait=args.wait, **options)  # probes and locks too
    state = api.run.last_state
    console.print(summary_table(done))
    stale = [r for r in done if stale_reason(r, current)]  # reused records made by other code
    if stale:
        why = sorted({stale_reason(r, current) for r in stale})
        console.print(escape(f"stale: reused {len(stale)} record(s) made by other code ({why[0]}"
                             + (f"; and {len(why) - 1} more" if len(why) > 1 else "")
                             + "); --rerun-stale re-runs them"))
    console.print(f"records: {args.results / s.name}")
    if getattr(state, "write_error", None):
        sys.stderr.write(f"bench: error: {' '.join(state.write_error.split())}\n")
        return 1
    if state.stop_requested:
        console.print("[yellow]interrupted: records written so far are kept; rerun to resume[/]")
        return 130
    if args.report:
        from bench.report import cli as report_cli

        report_cli.write_report(s.name, args.results, None, console)
    return 0


def summary_table(records: list[dict]):
    """Method x size table of the run, from the report's aggregation (``tables.aggregate``: one
    row per device, PDE, dtype, method variant and size; medians over runs, 95% CI over runs)."""
    from rich.markup import escape
    from rich.table import Table

    from bench.report.tables import aggregate, ci_cell, fmt

    t = Table(title="summary (run = one record, seed x round; median and 95% bootstrap CI over runs; "
                    "failed = runs not ok / runs)")
    cols = ["pde", "method", "n/axis", "n_points", "ms/step", "95% CI", "runs", "compile s", "XLA temp",
            "peak RSS", "NVML peak", "GFLOP/step", "rel L2", "failed", "status", "dtype"]
    aggs = aggregate(records) if records else None
    multi_dev = aggs is not None and not aggs.empty and aggs["device_name"].nunique() > 1
    for col in cols + (["device"] if multi_dev else []):
        t.add_column(col)
    if aggs is None or aggs.empty:
        return t
    for _, a in aggs.sort_values(["device_name", "pde", "dim", "label", "dtype", "n_per_axis"]).iterrows():
        flops = a["flops_per_step"]  # with the method's loop correction (bench.record.flat)
        bound = ">= " if flops and a.get("flops_uncounted_calls") else ""  # custom calls XLA does not count
        npts = fmt(a["n_points"], "int").replace(",", "") if a["n_points"] is not None else "n/a"
        ok = a["n_ok"] > 0
        # escape: a variant label such as "spinn-lowrank [points=random]" is not rich markup
        row = [f"{a['pde']}{a['dim']}", escape(str(a["label"])), str(a["n_per_axis"]), npts,
               fmt(a["step_ms"]), ci_cell(a["step_ms_lo"], a["step_ms_hi"], a["n_runs"]) if ok else "n/a",
               str(a["n_runs"]), fmt(a["compile_s"]), fmt(a["xla_temp_bytes"], "bytes"),
               fmt(a["peak_rss_bytes"], "bytes"), fmt(a["nvml_peak_bytes"], "bytes"),
               bound + fmt(flops / 1e9 if flops else None), fmt(a["rel_l2"]),
               f"{a['n_records'] - a['n_ok']}/{a['n_records']}", ",".join(sorted(a["statuses"])),
               str(a["dtype"])]
        if multi_dev:
            row.append(escape(str(a["device_name"])))
        t.add_row(*row)
    return t


def cmd_export(args) -> int:
    from bench.api import frame
    from bench.store import load_records

    if not args.results.exists():
        raise BenchError(f"--results {str(args.results)!r} does not exist")
    recs = load_records(args.results, args.suite)
    if not recs:
        raise BenchError(f"no records under {args.results}" + (f" for suite {args.suite!r}" if args.suite else ""))
    if args.format == "parquet" and args.output is None:
        raise BenchError("--format parquet needs -o FILE")
    if args.output is not None:
        check_output(args.output, "-o")
    df = frame(recs, args.what)
    if args.output is None:
        df.to_csv(sys.stdout, index=False)
    else:
        write_atomic(args.output, lambda tmp: (df.to_parquet(tmp, index=False) if args.format == "parquet"
                                               else df.to_csv(tmp, index=False)), "-o")
    if args.output is not None:
        print(f"{len(df)} rows -> {args.output}", file=sys.stderr)
    return 0


VALUE_MAY_START_WITH_DASH = ("--threshold",)


def _join_dash_values(argv: list[str]) -> list[str]:
    """``--threshold -5%`` -> ``--threshold=-5%``: argparse takes a value that starts with "-"
    and is not a plain negative number for an option."""
    out, i = [], 0
    while i < len(argv):
        a = argv[i]
        if a in VALUE_MAY_START_WITH_DASH and i + 1 < len(argv) and argv[i + 1].startswith("-") \
                and argv[i + 1] not in ("-h", "--help") and not argv[i + 1].startswith("--"):
            out.append(f"{a}={argv[i + 1]}")
            i += 2
            continue
        out.append(a)
        i += 1
    return out




def cmd_gpu_check(args) -> int:
    from bench import gpucheck

    device = "gpu" if args.unpack is not None else resolve_device(args.device, ("jax",))
    return gpucheck.main(args, device)


COMMANDS = {"list": cmd_list, "run": cmd_run, "export": cmd_export, "gpu-check": cmd_gpu_check}


def version_string() -> str:
    """``pinnbench 0.1.0 (git <commit>)``: the package version and the checkout's commit."""
    from bench import __version__
    from bench.measure.env import git_commit

    commit = git_commit()
    return f"pinnbench {__version__}" + (f" (git {commit[:12]}{'-dirty' if commit.endswith('-dirty') else ''})"
                                         if commit else "")


def main(argv=None) -> int:
    argv = _join_dash_values(list(sys.argv[1:] if argv is None else argv))
    args = build_parser().parse_args(argv)
    handler = COMMANDS.get(args.command) or getattr(args, "handler", None)
    try:
        return handler(args)
    except BenchError as e:
        sys.stderr.write(f"bench: error: {e}\n")
        return e.exit_code
    except BrokenPipeError:
        return 0
