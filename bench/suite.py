"""Suite files: parse, validate up front, expand into cases with stable ids.

A suite is a TOML file in ``bench/suites/<name>.toml`` (or any path). Top-level keys are the
defaults of every case; ``[method.NAME]`` tables hold method parameters plus per-method
overrides of the case keys; an optional ``[[matrix]]`` array repeats the expansion with some
keys overridden (several PDEs or dims in one suite)::

    description = "..."
    pde = "heat"
    dim = 4
    methods = ["pinn", "spinn"]
    n_per_axis = [4, 6, 8]      # n_points = n_per_axis ** n_in for both methods
    steps = 100

    [method.spinn]
    rank = 32

``methods = "all"`` takes every registered method (in-tree and plugins, at expansion time) that
supports the PDE, less those named in ``exclude = [...]``; a method that cannot run a PDE
(``supports``, a missing optional package, an optimizer without a model for it) is then no error:
the pair goes into the suite's support matrix (``Suite.refused``, one line of reason each), which
``bench run --dry-run`` prints and the leaderboard report shows. A named method that cannot run
its PDE stays an error. The leaderboard suites (``leaderboard``, ``leaderboard-gpu``) are one
``[[matrix]]`` entry per PDE with ``methods = "all"``.

Every problem is reported as `SuiteError` with one line naming the key, the bad value and the
valid choices.
"""

from __future__ import annotations

import errno
import math
import os
import re
import stat
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path

import methods
import pdes
from bench.case import CASE_KEYS, DEFAULTS, DTYPES, METHOD_OVERRIDES, NONNEGATIVE, POSITIVE, PRECISIONS, Case
from bench.case import copied as case_copied
from bench.errors import BenchError

SUITES_DIR = Path(__file__).parent / "suites"


class SuiteError(BenchError):
    pass


# The case keys are declared once, on the fields of bench.case.Case; the tables are derived there.
SUITE_KEYS = {"description": ((str,), "one-line description"),
              "method": ((dict,), "per-method tables"),
              "matrix": ((list,), "array of override tables"),
              "rounds": ((int,), "timing rounds: every case is run this many times, interleaved"),
              "baseline": ((str,), "method the report's ratios are taken against (default pinn)"),
              "exclude": ((list,), 'methods left out of methods = "all"'),
              **CASE_KEYS}
#: the value of ``methods`` that takes every registered method supporting the PDE
ALL_METHODS = "all"


@dataclass(frozen=True)
class Refusal:
    """A method x PDE pair of a ``methods = "all"`` suite that cannot run, and why (one line)."""

    pde: str
    dim: int
    pde_params: dict
    method: str
    reason: str

    @property
    def problem(self) -> str:
        """The PDE entry as the report names it: name, dim and parameters."""
        return problem_label(self.pde, self.dim, self.pde_params)


def problem_label(pde: str, dim: int, pde_params: dict | None) -> str:
    """``heat2 (c=3.14159)``: one PDE entry of a suite, as tables and the dry run name it."""
    extra = ", ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}"
                      for k, v in sorted((pde_params or {}).items()))
    return f"{pde}{dim}" + (f" ({extra})" if extra else "")


@dataclass
class Suite:
    name: str
    description: str
    path: Path
    cases: list[Case]
    #: the pairs a ``methods = "all"`` suite left out because the method cannot run the PDE
    refused: list[Refusal] = field(default_factory=list)
    #: the methods its ``exclude`` lists keep out of ``methods = "all"``
    excluded: list[str] = field(default_factory=list)

    @property
    def methods(self) -> list[str]:
        return list(dict.fromkeys(c.method for c in self.cases))


def available_suites() -> dict[str, Path]:
    return {p.stem: p for p in sorted(SUITES_DIR.glob("*.toml"))}


def _path_problem(p: Path) -> str | None:
    """Why ``p`` cannot be read as a suite file (None when it is a readable regular file)."""
    try:
        st = os.stat(p)
    except OSError as e:
        if e.errno == errno.ELOOP:
            return "is a symbolic link loop"
        if e.errno == errno.ENOENT and os.path.islink(p):
            return f"is a broken symbolic link (to {os.readlink(p)!r})"
        if e.errno == errno.ENOENT:
            return "does not exist"
        if e.errno == errno.ENOTDIR:
            return "does not exist (a part of the path is a file, not a directory)"
        return f"cannot be read: {e.strerror or e}"
    if stat.S_ISDIR(st.st_mode):
        return "is a directory, not a suite file"
    if not stat.S_ISREG(st.st_mode):
        kind = ("a FIFO (named pipe)" if stat.S_ISFIFO(st.st_mode) else
                "a character device" if stat.S_ISCHR(st.st_mode) else
                "a block device" if stat.S_ISBLK(st.st_mode) else
                "a socket" if stat.S_ISSOCK(st.st_mode) else "not a regular file")
        return f"is {kind}, not a suite file"
    if st.st_size > MAX_SUITE_BYTES:
        return f"is {st.st_size} bytes, more than a suite file can be ({MAX_SUITE_BYTES} bytes)"
    return None


#: a suite file is a few kB; anything far larger is not one (and is not read into memory)
MAX_SUITE_BYTES = 4 * 2**20


def resolve(name_or_path: str) -> Path:
    p = Path(name_or_path)
    if p.suffix == ".toml" or os.path.lexists(p) or os.sep in str(name_or_path):
        problem = _path_problem(p)
        if problem:
            raise SuiteError(f"suite file {name_or_path!r} {problem}")
        return p
    suites = available_suites()
    if name_or_path not in suites:
        raise SuiteError(
            f"unknown suite {name_or_path!r} (valid: {', '.join(suites)}; or a path to a .toml file)"
        )
    return suites[name_or_path]


def suite_name(stem: str) -> str:
    """The suite name a file stem gives, safe as one directory name inside ``--results``:
    characters other than letters, digits, ``_``, ``-`` and ``.`` become ``_``, leading dots
    are dropped (no ``..``, no hidden directory); an empty name becomes ``suite``."""
    name = re.sub(r"[^A-Za-z0-9_.-]", "_", stem).lstrip(".")
    return name[:100] or "suite"


UTF8_BOM = b"\xef\xbb\xbf"
#: deepest nesting of arrays/tables a suite may have (real suites nest 3 levels)
MAX_DEPTH = 32


def load(name_or_path: str, device: str = "cpu", methods_filter: list[str] | None = None,
         seeds: int | None = None, rounds: int | None = None) -> Suite:
    path = resolve(name_or_path)
    try:
        data = path.read_bytes()
        if data.startswith(UTF8_BOM):
            raise SuiteError(f"suite {path.name}: the file starts with a UTF-8 byte-order mark (BOM), "
                             "which TOML does not allow; save it as UTF-8 without BOM")
        raw = tomllib.loads(data.decode("utf-8"))
    except tomllib.TOMLDecodeError as e:
        raise SuiteError(f"suite {path.name}: malformed TOML: {e}") from None
    except UnicodeDecodeError as e:
        raise SuiteError(f"suite {path.name}: not a UTF-8 text file (byte {e.start})") from None
    except RecursionError:
        raise SuiteError(f"suite {path.name}: arrays or tables nested too deeply for the TOML "
                         f"parser (a suite nests at most {MAX_DEPTH} levels)") from None
    except (OSError, MemoryError) as e:
        raise SuiteError(f"suite {path.name}: cannot read: {getattr(e, 'strerror', None) or e}") from None
    return parse(raw, suite_name(path.stem), path, device, methods_filter, seeds, rounds)


#: sanity bounds that keep a typo from expanding into millions of cases or overflowing a seed
MAX_CASES = 10_000
MAX_SEEDS = 1_000
MAX_ROUNDS = 100
MAX_DIM = 1_000_000
MAX_SEED = 2**32 - 1  # jax.random.PRNGKey takes a uint32 seed


def parse(raw: dict, name: str, path: Path | None = None, device: str = "cpu",
          methods_filter: list[str] | None = None, seeds: int | None = None,
          rounds: int | None = None) -> Suite:
    where = f"suite {name}"
    if not isinstance(raw, dict):
        raise SuiteError(f"{where}: the top level must be a table of keys")
    try:
        _check_depth(raw, where)
        return _parse(raw, name, path, device, methods_filter, seeds, rounds)
    except RecursionError:
        raise SuiteError(f"{where}: nested too deeply (at most {MAX_DEPTH} levels)") from None


def _check_depth(v, where: str) -> None:
    """Refuse documents nested deeper than MAX_DEPTH (iteratively: no recursion limit)."""
    stack = [(v, 0, "")]
    while stack:
        x, d, key = stack.pop()
        if d > MAX_DEPTH:
            raise SuiteError(f"{where}: key {key or '?'!r} is nested more than {MAX_DEPTH} levels deep")
        if isinstance(x, dict):
            stack.extend((y, d + 1, f"{key}.{k}" if key else str(k)) for k, y in x.items())
        elif isinstance(x, list):
            stack.extend((y, d + 1, key) for y in x)


def _parse(raw: dict, name: str, path: Path | None, device: str, methods_filter, seeds, rounds) -> Suite:
    where = f"suite {name}"
    _check_keys(raw, SUITE_KEYS, where)
    _check_method_tables(raw.get("method", {}), where)
    matrix = raw.get("matrix", [{}])
    if not isinstance(matrix, list) or not matrix or not all(isinstance(m, dict) for m in matrix):
        raise SuiteError(f"{where}: 'matrix' must be a non-empty array of tables ([[matrix]])")
    cases: list[Case] = []
    refused: list[Refusal] = []
    for i, entry in enumerate(matrix):
        w = f"{where} matrix[{i}]" if "matrix" in raw else where
        _check_keys(entry, {**CASE_KEYS, "method": SUITE_KEYS["method"], "exclude": SUITE_KEYS["exclude"]}, w)
        _check_method_tables(entry.get("method", {}), w)
        cfg = {**DEFAULTS, **{k: v for k, v in raw.items() if k in CASE_KEYS or k == "exclude"}, **entry}
        mtables = {**raw.get("method", {})}
        for mname, tbl in entry.get("method", {}).items():
            mtables[mname] = {**mtables.get(mname, {}), **tbl}
        cases += _expand(cfg, mtables, name, w, device, limit=MAX_CASES - len(cases), refused=refused)
    present = list(dict.fromkeys(c.method for c in cases))
    if "baseline" in raw and raw["baseline"] not in present:
        raise SuiteError(f"{where}: baseline = {raw['baseline']!r} is not one of the suite's methods "
                         f"(valid: {', '.join(present)})")
    if methods_filter:
        for m in methods_filter:
            if m not in present:
                raise SuiteError(
                    f"--methods: {m!r} is not in suite {name} (valid: {', '.join(present)})"
                )
        cases = [c for c in cases if c.method in methods_filter]
        refused = [r for r in refused if r.method in methods_filter]
    if seeds is not None:
        if isinstance(seeds, bool) or not isinstance(seeds, int) or not 1 <= seeds <= MAX_SEEDS:
            raise SuiteError(f"--seeds must be an integer from 1 to {MAX_SEEDS}, got {seeds!r}")
        cases = _reseed(cases, seeds)
    n_rounds = raw.get("rounds", 1) if rounds is None else rounds
    if isinstance(n_rounds, bool) or not isinstance(n_rounds, int) or not 1 <= n_rounds <= MAX_ROUNDS:
        what = "rounds" if rounds is None else "--rounds"
        raise SuiteError(f"{where}: {what} = {n_rounds!r} must be an integer from 1 to {MAX_ROUNDS}")
    if len(cases) * n_rounds > MAX_CASES:
        raise SuiteError(f"{where}: {len(cases)} cases x {n_rounds} rounds is more than "
                         f"{MAX_CASES} cases; split the suite")
    cases = [replace(c, round=r) for r in range(n_rounds) for c in cases]
    if not cases:
        raise SuiteError(f"{where} expands to zero cases")
    seen: set[str] = set()
    for c in cases:
        if c.case_id in seen:
            raise SuiteError(f"{where}: case {c.case_id} appears twice (a repeated value in "
                             "dim, methods, n_per_axis or overlapping [[matrix]] entries)")
        seen.add(c.case_id)
    excluded = sorted({m for e in [raw, *matrix] for m in (e.get("exclude") or [])})
    return Suite(name, str(raw.get("description", "")), path or Path(name), cases, refused, excluded)


def _reseed(cases: list[Case], k: int) -> list[Case]:
    if not cases:
        return cases
    seed0 = min(c.seed for c in cases)
    if seed0 + k - 1 > MAX_SEED:
        raise SuiteError(f"--seeds {k}: seeds from {seed0} would exceed {MAX_SEED}")
    base: dict[str, Case] = {}
    for c in cases:
        b = replace(c, seed=seed0)
        base.setdefault(b.case_id, b)
    if len(base) * k > MAX_CASES:
        raise SuiteError(f"--seeds {k}: {len(base)} cases x {k} seeds is more than {MAX_CASES} "
                         "cases; split the suite")
    return [replace(c, seed=seed0 + s) for c in base.values() for s in range(k)]


def _type_name(types) -> str:
    names = {int: "integer", float: "number", str: "string", list: "array", dict: "table"}
    return " or ".join(names.get(t, t.__name__) for t in types)


INT64 = (-(2**63), 2**63 - 1)


def _check_value(where: str, key: str, v) -> None:
    """Numbers anywhere in a suite must be finite (TOML allows nan and inf) and integers
    within 64 bits (TOML 1.0: an integer that does not fit is an error; tomllib accepts it)."""
    if isinstance(v, float) and not math.isfinite(v):
        raise SuiteError(f"{where}: key {key!r} = {v!r} must be a finite number")
    if isinstance(v, int) and not isinstance(v, bool) and not INT64[0] <= v <= INT64[1]:
        raise SuiteError(f"{where}: key {key!r} = {_short(v)} is not a 64-bit integer "
                         f"(valid: {INT64[0]} to {INT64[1]})")
    if isinstance(v, list):
        for x in v:
            _check_value(where, key, x)
    elif isinstance(v, dict):
        for k, x in v.items():
            _check_value(where, f"{key}.{k}", x)


def _check_keys(tbl: dict, allowed: dict, where: str) -> None:
    for k, v in tbl.items():
        if k not in allowed:
            raise SuiteError(
                f"{where}: unknown key {k!r} (valid: {', '.join(sorted(allowed))})"
            )
        types = allowed[k][0]
        if isinstance(v, bool) or not isinstance(v, types):
            raise SuiteError(f"{where}: key {k!r} = {_short(v)} must be {_type_name(types)}")
        _check_value(where, k, v)


def _check_method_tables(tables: dict, where: str) -> None:
    for mname, tbl in tables.items():
        if mname not in methods.REGISTRY:
            raise SuiteError(
                f"{where}: [method.{mname}]: unknown method {mname!r} "
                f"(valid: {', '.join(methods.REGISTRY.names())})"
            )
        if not isinstance(tbl, dict):
            raise SuiteError(f"{where}: 'method.{mname}' = {_short(tbl)} must be a table")
        _check_value(where, f"method.{mname}", tbl)


def _short(v) -> str:
    r = repr(v)
    return r if len(r) <= 60 else r[:57] + "..."


def _as_list(v, key: str, where: str, kind=int) -> list:
    vals = v if isinstance(v, list) else [v]
    if not vals:
        raise SuiteError(f"{where}: key {key!r} is an empty list")
    for x in vals:
        if isinstance(x, bool) or not isinstance(x, kind):
            raise SuiteError(f"{where}: key {key!r} has {_short(x)}; expected {_type_name((kind,))}s")
    return vals


def _check_positive(key: str, v, where: str) -> None:
    for x in v if isinstance(v, list) else [v]:
        if isinstance(x, (int, float)) and not isinstance(x, bool) and x <= 0:
            raise SuiteError(f"{where}: key {key!r} = {x!r} must be positive")


def _check_case_values(c: dict, where: str) -> None:
    """Ranges of the case keys (types were checked by _check_keys)."""
    for k in POSITIVE:
        _check_positive(k, c[k], where)
    for k in NONNEGATIVE:
        if c[k] < 0:
            raise SuiteError(f"{where}: key {k!r} = {c[k]!r} must not be negative")
    if not 1 <= c["seeds"] <= MAX_SEEDS:
        raise SuiteError(f"{where}: key 'seeds' = {c['seeds']!r} must be from 1 to {MAX_SEEDS}")
    if c["seed0"] + c["seeds"] - 1 > MAX_SEED:
        raise SuiteError(f"{where}: seeds from seed0 = {c['seed0']} would exceed {MAX_SEED}")
    for d in c["dim"] if isinstance(c["dim"], list) else [c["dim"]]:
        if d > MAX_DIM:
            raise SuiteError(f"{where}: key 'dim' = {d} is more than {MAX_DIM}")
    if c["dtype"] not in DTYPES:
        raise SuiteError(f"{where}: dtype {c['dtype']!r} is not valid (valid: {', '.join(DTYPES)})")
    if c["precision"] not in PRECISIONS:
        raise SuiteError(
            f"{where}: precision {c['precision']!r} is not valid (valid: {', '.join(PRECISIONS)})"
        )


@dataclass(frozen=True)
class Range:
    """Valid values of a numeric parameter: ``lo <= v <= hi`` (``lo < v`` when ``open_lo``);
    ``integer``: an int is required. Lists are checked element by element."""

    lo: float | None = None
    hi: float | None = None
    open_lo: bool = False
    integer: bool = False

    def check(self, v) -> bool:
        if isinstance(v, bool) or not isinstance(v, (int, float)) or (self.integer and not isinstance(v, int)):
            return False
        if self.lo is not None and (v <= self.lo if self.open_lo else v < self.lo):
            return False
        return self.hi is None or v <= self.hi

    def describe(self) -> str:
        kind = "an integer" if self.integer else "a number"
        if self.lo is not None and self.hi is not None and not self.open_lo:
            return f"{kind} from {self.lo:g} to {self.hi:g}"
        lo = f"> {self.lo:g}" if self.open_lo else f">= {self.lo:g}" if self.lo is not None else ""
        hi = f"<= {self.hi:g}" if self.hi is not None else ""
        return f"{kind} " + " and ".join(filter(None, (lo, hi)))


POS_INT, NONNEG_INT = Range(1, integer=True), Range(0, integer=True)
POS, NONNEG, UNIT = Range(0, open_lo=True), Range(0), Range(0, 1)
#: ranges of method parameters by name, for every method that has the parameter (a method
#: may declare its own in a ``ranges`` class attribute, which wins): sizes are positive,
#: counts and "0 = off/auto" switches non-negative, rates positive
PARAM_RANGES: dict[str, Range] = {
    "width": POS_INT, "depth": POS_INT, "rank": POS_INT, "widths": POS_INT, "batch": POS_INT,
    "fd_grid": POS_INT, "infer_res": POS_INT, "infer_repeats": POS_INT, "check_every": POS_INT,
    "n_t": NONNEG_INT, "resample_every": NONNEG_INT, "n_interior": NONNEG_INT, "n_boundary": NONNEG_INT,
    "max_steps_per_eps": NONNEG_INT, "decay_steps": NONNEG_INT, "time_modes": NONNEG_INT,
    "fourier_modes": NONNEG_INT, "max_degree": NONNEG_INT,
    "lr": POS, "lr_decay": POS, "decay_rate": POS, "eps": NONNEG, "mollifier_scale": POS,
    "damping": NONNEG, "clip": NONNEG, "ic_weight": NONNEG, "tol": Range(0, 1, open_lo=True),
    "ema": UNIT, "momentum": UNIT,
}


def _check_ranges(params: dict, ranges: dict, where: str, prefix: str) -> None:
    for k, v in params.items():
        r = ranges.get(k)
        if r is None:
            continue
        for x in v if isinstance(v, list) else [v]:
            if not r.check(x):
                raise SuiteError(f"{where}: {prefix}{k} = {_short(x)} is not valid (valid: {r.describe()})")


def _check_pde_params(pde_cls, params: dict, where: str) -> None:
    """A bool is never a number: ``kappa = true`` would run as 1.0."""
    defaults = getattr(pde_cls, "defaults", {}) or {}
    for k, v in params.items():
        d = defaults.get(k)
        if isinstance(v, bool) and not isinstance(d, bool):
            raise SuiteError(f"{where}: pde_params.{k} = {v!r} must be "
                             f"{'a number' if isinstance(d, (int, float)) else 'of the type of ' + repr(d)}, "
                             "not a boolean")


def fuse_reason(mcls, resolved: dict, fused: int) -> str | None:
    """Why ``fused_steps = fused`` cannot train ``mcls`` with parameters ``resolved``: its
    framework's backend runs one call per step (``Backend.can_fuse``), or a fused block would
    cross a resample (``fused_steps`` > ``resample_every``); None when it can."""
    if fused == 1:
        return None
    from bench import backends

    if not backends.get(mcls.framework).can_fuse:
        fusing = ", ".join(n for n, b in backends.BACKENDS.items() if b.can_fuse)
        return (f"fused_steps = {fused}: the {mcls.framework} backend runs one call per step "
                f"(fused steps need a backend that compiles them: {fusing}; use fused_steps = 1)")
    every = int(resolved.get("resample_every", 0) or 0)
    if every and fused > every:
        return (f"fused_steps = {fused} is more than resample_every = {every}: a fused block never "
                f"crosses a resample (valid: fused_steps from 1 to {every})")
    return None


#: what a PDE or method constructor may raise for a bad parameter value (a float() of a
#: string, a comparison of a list with a number, ...): reported as a SuiteError
_BAD_PARAM = (ValueError, TypeError, OverflowError, ArithmeticError, KeyError, IndexError)


def method_names(cfg: dict, where: str) -> tuple[list[str], bool]:
    """The methods an entry names, and whether they came from ``methods = "all"`` (every
    registered method, now, less ``exclude``)."""
    v, exclude = cfg["methods"], cfg.get("exclude")
    if exclude is not None:
        ex = exclude
        if not isinstance(ex, list) or not all(isinstance(m, str) for m in ex):
            raise SuiteError(f"{where}: key 'exclude' = {_short(ex)} must be a list of method names")
        if v != ALL_METHODS:
            raise SuiteError(f"{where}: key 'exclude' applies to methods = {ALL_METHODS!r} only "
                             f"(methods = {_short(v)} names its methods)")
        for m in ex:
            if m not in methods.REGISTRY:
                raise SuiteError(f"{where}: exclude: unknown method {m!r} "
                                 f"(valid: {', '.join(methods.REGISTRY.names())})")
    if isinstance(v, str):
        if v != ALL_METHODS:
            raise SuiteError(f"{where}: key 'methods' = {v!r} is not valid (valid: a list of method "
                             f"names, or {ALL_METHODS!r})")
        return [m for m in methods.REGISTRY.names() if m not in (exclude or [])], True
    return _as_list(v, "methods", where, str), False


def _expand(cfg: dict, mtables: dict, suite: str, where: str, device: str,
            limit: int = MAX_CASES, refused: list | None = None) -> list[Case]:
    if "pde" not in cfg:
        raise SuiteError(f"{where}: missing key 'pde' (valid: {', '.join(pdes.REGISTRY.names())})")
    if "methods" not in cfg:
        raise SuiteError(f"{where}: missing key 'methods' (valid: {', '.join(methods.REGISTRY.names())})")
    try:
        pde_cls = pdes.get(cfg["pde"])
    except pdes.UnknownName as e:
        raise SuiteError(f"{where}: {e}") from None
    dims = _as_list(cfg["dim"], "dim", where)
    mnames, every = method_names(cfg, where)
    if every and not mnames:
        raise SuiteError(f"{where}: methods = {ALL_METHODS!r} less exclude leaves no method")
    _as_list(cfg["n_per_axis"], "n_per_axis", where)
    _check_case_values(cfg, where)
    cases = []
    _check_pde_params(pde_cls, cfg["pde_params"], where)
    for dim in dims:
        try:
            pde = pde_cls(dim, **cfg["pde_params"])
        except _BAD_PARAM as e:
            raise SuiteError(f"{where}: pde_params {_short(cfg['pde_params'])}: "
                             f"{type(e).__name__}: {e}") from None
        specs = inverse_specs(cfg["inverse"], pde, where)
        for written in mnames:
            try:
                methods.get(written)
            except pdes.UnknownName as e:
                raise SuiteError(f"{where}: {e}") from None
            tbl = dict(mtables.get(written, {}))
            over = {k: tbl.pop(k) for k in METHOD_OVERRIDES if k in tbl}
            mw = f"{where} [method.{written}]"
            # one computation, one name: a preset and its base with the preset's optimizer
            # are the same case (kfac = pinn-fl + optimizer kfac)
            try:
                mname, tbl = methods.canonical(written, tbl)
            except _BAD_PARAM as e:
                raise SuiteError(f"{mw}: {e}") from None
            mcls = methods.get(mname)
            if every and mname != written and mname in mnames:
                continue  # "all" lists the preset and its base: one computation, one case
            why = (mcls.missing_requirement() or mcls.supports(pde)
                   or (mcls.supports_inverse(pde) if cfg["inverse"] else None))
            if every and not why:
                try:
                    params = mcls.resolve_params(tbl)
                    why = mcls.optimizer_reason(params["optimizer"], pde, params)
                except _BAD_PARAM:
                    why = None  # a bad parameter is the suite's error, reported below
            if every and why:
                if refused is not None:
                    refused.append(Refusal(cfg["pde"], dim, dict(cfg["pde_params"]), mname,
                                           " ".join(str(why).split())))
                continue
            missing = mcls.missing_requirement()
            if missing:
                raise SuiteError(f"{where}: {missing}")
            reason = mcls.supports(pde)
            if reason:
                raise SuiteError(f"{where}: method {mname!r} cannot run PDE {pde.name!r}: {reason}")
            reason = mcls.supports_inverse(pde) if cfg["inverse"] else None
            if reason:
                capable = [n for n in methods.REGISTRY.names() if not methods.get(n).supports_inverse(pde)]
                raise SuiteError(f"{where}: [inverse]: method {mname!r} cannot: {reason} "
                                 f"(valid: {', '.join(capable)})")
            _check_keys(over, CASE_KEYS, mw)
            try:
                resolved = mcls.resolve_params(tbl)
            except _BAD_PARAM as e:
                raise SuiteError(f"{mw}: {e}") from None
            reason = mcls.optimizer_reason(resolved["optimizer"], pde, resolved)
            if reason:
                raise SuiteError(f"{mw}: {reason}")
            _check_ranges(tbl, {**PARAM_RANGES, **mcls.ranges}, mw, f"method.{mname}.")
            mparams = {k: v for k, v in tbl.items()}  # store only what the suite set
            c = {**cfg, **over}
            _check_case_values(c, mw)
            reason = fuse_reason(mcls, resolved, c["fused_steps"])
            if reason:
                raise SuiteError(f"{mw}: {reason}")
            copied_fields = case_copied(c)
            for n, spec in ((n, spec) for n in _as_list(c["n_per_axis"], "n_per_axis", mw) for spec in specs):
                if len(cases) + c["seeds"] > limit:
                    raise SuiteError(f"{where} expands to more than {MAX_CASES} cases; split the suite")
                for s in range(c["seeds"]):
                    cases.append(Case(
                        suite=suite, pde=cfg["pde"], dim=dim, method=mname, n_per_axis=n,
                        seed=c["seed0"] + s, device=device, pde_params=dict(cfg["pde_params"]),
                        method_params=mparams, inverse=spec, **copied_fields,
                    ))
    return cases


INVERSE_KEYS = {"learn": "names of the PDE coefficients to learn", "init": "their initial values",
                "n_data": "number of observations of u", "noise": "relative Gaussian noise level(s)",
                "data_weight": "weight of the data term", "target_coef_err": "coefficient error to time"}


def inverse_specs(tbl: dict, pde, where: str) -> list[dict]:
    """The ``[inverse]`` table -> one spec per noise level ([{}] for a forward problem)."""
    if not tbl:
        return [{}]
    w = f"{where}: [inverse]"
    for k in tbl:
        if k not in INVERSE_KEYS:
            raise SuiteError(f"{w}: unknown key {k!r} (valid: {', '.join(INVERSE_KEYS)})")
    valid = ", ".join(pde.coefficients) or "none"
    learn = tbl.get("learn")
    if not isinstance(learn, list) or not learn or not all(isinstance(x, str) for x in learn):
        raise SuiteError(f"{w}: 'learn' = {_short(learn)} must be a non-empty list of coefficient names "
                         f"of PDE {pde.name!r} (valid: {valid})")
    for name in learn:
        if name not in pde.coefficients:
            raise SuiteError(f"{w}: unknown coefficient {name!r} for PDE {pde.name!r} (valid: {valid})")
    if len(set(learn)) != len(learn):
        raise SuiteError(f"{w}: 'learn' = {learn!r} names a coefficient twice")
    init = tbl.get("init", {})
    if not isinstance(init, dict):
        raise SuiteError(f"{w}: 'init' = {_short(init)} must be a table of coefficient = number")
    for k, v in init.items():
        if k not in learn:
            raise SuiteError(f"{w}: init.{k}: not a learned coefficient (valid: {', '.join(learn)})")
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise SuiteError(f"{w}: init.{k} = {_short(v)} must be a number")
    n_data = tbl.get("n_data", 1000)
    if isinstance(n_data, bool) or not isinstance(n_data, int) or n_data <= 0:
        raise SuiteError(f"{w}: n_data = {_short(n_data)} must be a positive integer")
    noise = tbl.get("noise", 0.0)
    noises = noise if isinstance(noise, list) else [noise]
    if not noises:
        raise SuiteError(f"{w}: 'noise' is an empty list")
    for x in noises:
        if isinstance(x, bool) or not isinstance(x, (int, float)) or x < 0:
            raise SuiteError(f"{w}: noise = {_short(x)} must be a non-negative number (0.01 = 1%)")
    extra = {}
    for k in ("data_weight", "target_coef_err"):
        v = tbl.get(k, 1.0 if k == "data_weight" else 0.0)
        if isinstance(v, bool) or not isinstance(v, (int, float)) or v < 0:
            raise SuiteError(f"{w}: {k} = {_short(v)} must be a non-negative number")
        extra[k] = float(v)
    init = {k: float(init.get(k, 0.0)) for k in learn}
    return [{"learn": list(learn), "init": init, "n_data": n_data, "noise": float(x), **extra}
            for x in noises]
