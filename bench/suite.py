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

Every problem is reported as `SuiteError` with one line naming the key, the bad value and the
valid choices.
"""

from __future__ import annotations

import hashlib
import json
import tomllib
from dataclasses import asdict, dataclass, field
from pathlib import Path

import methods
import pdes
from bench.errors import BenchError

SUITES_DIR = Path(__file__).parent / "suites"


class SuiteError(BenchError):
    pass


# key -> (python types, description). "list-or" keys accept a scalar or a list of scalars.
CASE_KEYS: dict[str, tuple] = {
    "pde": ((str,), "PDE family name"),
    "dim": ((int, list), "spatial dimension(s)"),
    "pde_params": ((dict,), "PDE parameters"),
    "methods": ((list,), "method names"),
    "n_per_axis": ((int, list), "collocation points per axis"),
    "steps": ((int,), "training steps (budget)"),
    "seeds": ((int,), "number of seeds"),
    "seed0": ((int,), "first seed"),
    "dtype": ((str,), "float32 or float64"),
    "timeout_s": ((int, float), "per-case timeout in seconds"),
    "eval_points": ((int,), "held-out evaluation points"),
    "eval_every": ((int,), "steps between evaluations on the training curve"),
    "max_seconds": ((int, float), "wall-clock training budget"),
    "target_rel_l2": ((int, float), "stop once rel. L2 reaches this"),
    "timing_samples": ((int,), "timed samples (each several steps)"),
    "precision": ((str,), "matmul precision: highest, high or default"),
}
SUITE_KEYS = {"description": ((str,), "one-line description"),
              "method": ((dict,), "per-method tables"),
              "matrix": ((list,), "array of override tables"),
              **CASE_KEYS}
# keys a [method.NAME] table may override besides the method's own parameters
METHOD_OVERRIDES = ("n_per_axis", "steps", "dtype", "timeout_s", "max_seconds", "eval_every",
                    "timing_samples")
DTYPES = ("float32", "float64")
PRECISIONS = ("highest", "high", "default")
DEFAULTS = {"dim": 1, "pde_params": {}, "n_per_axis": [8], "steps": 100, "seeds": 1, "seed0": 0,
            "dtype": "float32", "timeout_s": 900.0, "eval_points": 4096, "eval_every": 0,
            "max_seconds": 0.0, "target_rel_l2": 0.0, "timing_samples": 9,
            "precision": "highest"}
POSITIVE = ("dim", "n_per_axis", "steps", "seeds", "timeout_s", "eval_points", "timing_samples")


@dataclass(frozen=True)
class Case:
    """One measurement. ``case_id`` hashes everything that changes the result."""

    suite: str
    pde: str
    dim: int
    method: str
    n_per_axis: int
    seed: int
    steps: int = 100
    dtype: str = "float32"
    device: str = "cpu"
    pde_params: dict = field(default_factory=dict)
    method_params: dict = field(default_factory=dict)
    timeout_s: float = 900.0
    eval_points: int = 4096
    eval_every: int = 0
    max_seconds: float = 0.0
    target_rel_l2: float = 0.0
    timing_samples: int = 9
    precision: str = "highest"

    # fields that do not change what is measured
    _NOT_HASHED = ("suite", "timeout_s")

    @property
    def case_id(self) -> str:
        d = {k: v for k, v in asdict(self).items() if k not in self._NOT_HASHED}
        h = hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:10]
        return f"{self.pde}{self.dim}-{self.method}-n{self.n_per_axis}-s{self.seed}-{h}"

    def to_dict(self) -> dict:
        return {**asdict(self), "case_id": self.case_id}

    @classmethod
    def from_dict(cls, d: dict) -> "Case":
        return cls(**{k: v for k, v in d.items() if k != "case_id"})


@dataclass
class Suite:
    name: str
    description: str
    path: Path
    cases: list[Case]

    @property
    def methods(self) -> list[str]:
        return list(dict.fromkeys(c.method for c in self.cases))


def available_suites() -> dict[str, Path]:
    return {p.stem: p for p in sorted(SUITES_DIR.glob("*.toml"))}


def resolve(name_or_path: str) -> Path:
    p = Path(name_or_path)
    if p.suffix == ".toml" or p.exists():
        if not p.is_file():
            raise SuiteError(f"suite file {name_or_path!r} does not exist")
        return p
    suites = available_suites()
    if name_or_path not in suites:
        raise SuiteError(
            f"unknown suite {name_or_path!r} (valid: {', '.join(suites)}; or a path to a .toml file)"
        )
    return suites[name_or_path]


def load(name_or_path: str, device: str = "cpu", methods_filter: list[str] | None = None,
         seeds: int | None = None) -> Suite:
    path = resolve(name_or_path)
    try:
        raw = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as e:
        raise SuiteError(f"suite {path.name}: malformed TOML: {e}") from None
    except UnicodeDecodeError:
        raise SuiteError(f"suite {path.name}: not a UTF-8 text file") from None
    return parse(raw, path.stem, path, device, methods_filter, seeds)


def parse(raw: dict, name: str, path: Path | None = None, device: str = "cpu",
          methods_filter: list[str] | None = None, seeds: int | None = None) -> Suite:
    where = f"suite {name}"
    _check_keys(raw, SUITE_KEYS, where)
    matrix = raw.get("matrix", [{}])
    if not isinstance(matrix, list) or not matrix or not all(isinstance(m, dict) for m in matrix):
        raise SuiteError(f"{where}: 'matrix' must be a non-empty array of tables ([[matrix]])")
    cases: list[Case] = []
    for i, entry in enumerate(matrix):
        w = f"{where} matrix[{i}]" if "matrix" in raw else where
        _check_keys(entry, {**CASE_KEYS, "method": SUITE_KEYS["method"]}, w)
        cfg = {**DEFAULTS, **{k: v for k, v in raw.items() if k in CASE_KEYS}, **entry}
        mtables = {**raw.get("method", {})}
        for mname, tbl in entry.get("method", {}).items():
            mtables[mname] = {**mtables.get(mname, {}), **tbl}
        cases += _expand(cfg, mtables, name, w, device)
    if methods_filter:
        present = list(dict.fromkeys(c.method for c in cases))
        for m in methods_filter:
            if m not in present:
                raise SuiteError(
                    f"--methods: {m!r} is not in suite {name} (valid: {', '.join(present)})"
                )
        cases = [c for c in cases if c.method in methods_filter]
    if seeds is not None:
        if seeds < 1:
            raise SuiteError(f"--seeds must be a positive integer, got {seeds}")
        cases = _reseed(cases, seeds)
    if not cases:
        raise SuiteError(f"{where} expands to zero cases")
    return Suite(name, str(raw.get("description", "")), path or Path(name), cases)


def _reseed(cases: list[Case], k: int) -> list[Case]:
    from dataclasses import replace

    seed0 = min(c.seed for c in cases)
    base: dict[str, Case] = {}
    for c in cases:
        b = replace(c, seed=seed0)
        base.setdefault(b.case_id, b)
    return [replace(c, seed=seed0 + s) for c in base.values() for s in range(k)]


def _type_name(types) -> str:
    names = {int: "integer", float: "number", str: "string", list: "array", dict: "table"}
    return " or ".join(names.get(t, t.__name__) for t in types)


def _check_keys(tbl: dict, allowed: dict, where: str) -> None:
    for k, v in tbl.items():
        if k not in allowed:
            raise SuiteError(
                f"{where}: unknown key {k!r} (valid: {', '.join(sorted(allowed))})"
            )
        types = allowed[k][0]
        if isinstance(v, bool) or not isinstance(v, types):
            raise SuiteError(f"{where}: key {k!r} = {v!r} must be {_type_name(types)}")


def _as_list(v, key: str, where: str, kind=int) -> list:
    vals = v if isinstance(v, list) else [v]
    if not vals:
        raise SuiteError(f"{where}: key {key!r} is an empty list")
    for x in vals:
        if isinstance(x, bool) or not isinstance(x, kind):
            raise SuiteError(f"{where}: key {key!r} has {x!r}; expected {_type_name((kind,))}s")
    return vals


def _check_positive(key: str, v, where: str) -> None:
    for x in v if isinstance(v, list) else [v]:
        if isinstance(x, (int, float)) and not isinstance(x, bool) and x <= 0:
            raise SuiteError(f"{where}: key {key!r} = {x!r} must be positive")


def _expand(cfg: dict, mtables: dict, suite: str, where: str, device: str) -> list[Case]:
    if "pde" not in cfg:
        raise SuiteError(f"{where}: missing key 'pde' (valid: {', '.join(pdes.REGISTRY.names())})")
    if "methods" not in cfg:
        raise SuiteError(f"{where}: missing key 'methods' (valid: {', '.join(methods.REGISTRY.names())})")
    try:
        pde_cls = pdes.get(cfg["pde"])
    except pdes.UnknownName as e:
        raise SuiteError(f"{where}: {e}") from None
    dims = _as_list(cfg["dim"], "dim", where)
    mnames = _as_list(cfg["methods"], "methods", where, str)
    for k in POSITIVE:
        _check_positive(k, cfg[k], where)
    for k in ("max_seconds", "target_rel_l2", "eval_every", "seed0"):
        if cfg[k] < 0:
            raise SuiteError(f"{where}: key {k!r} = {cfg[k]!r} must not be negative")
    if cfg["dtype"] not in DTYPES:
        raise SuiteError(f"{where}: dtype {cfg['dtype']!r} is not valid (valid: {', '.join(DTYPES)})")
    if cfg["precision"] not in PRECISIONS:
        raise SuiteError(
            f"{where}: precision {cfg['precision']!r} is not valid (valid: {', '.join(PRECISIONS)})"
        )
    for mname in mtables:
        if mname not in methods.REGISTRY:
            raise SuiteError(
                f"{where}: [method.{mname}]: unknown method {mname!r} "
                f"(valid: {', '.join(methods.REGISTRY.names())})"
            )
        if not isinstance(mtables[mname], dict):
            raise SuiteError(f"{where}: 'method.{mname}' must be a table")
    cases = []
    for dim in dims:
        try:
            pde = pde_cls(dim, **cfg["pde_params"])
        except ValueError as e:
            raise SuiteError(f"{where}: {e}") from None
        for mname in mnames:
            try:
                mcls = methods.get(mname)
            except pdes.UnknownName as e:
                raise SuiteError(f"{where}: {e}") from None
            reason = mcls.supports(pde)
            if reason:
                raise SuiteError(f"{where}: method {mname!r} cannot run PDE {pde.name!r}: {reason}")
            tbl = dict(mtables.get(mname, {}))
            over = {k: tbl.pop(k) for k in METHOD_OVERRIDES if k in tbl}
            mw = f"{where} [method.{mname}]"
            _check_keys(over, CASE_KEYS, mw)
            for k, v in over.items():
                _check_positive(k, v, mw)
            try:
                mparams = mcls.resolve_params(tbl)
            except ValueError as e:
                raise SuiteError(f"{mw}: {e}") from None
            mparams = {k: v for k, v in tbl.items()}  # store only what the suite set
            c = {**cfg, **over}
            if c["dtype"] not in DTYPES:
                raise SuiteError(f"{mw}: dtype {c['dtype']!r} is not valid (valid: {', '.join(DTYPES)})")
            for n in _as_list(c["n_per_axis"], "n_per_axis", mw):
                for s in range(c["seeds"]):
                    cases.append(Case(
                        suite=suite, pde=cfg["pde"], dim=dim, method=mname, n_per_axis=n,
                        seed=c["seed0"] + s, steps=c["steps"], dtype=c["dtype"], device=device,
                        pde_params=dict(cfg["pde_params"]), method_params=mparams,
                        timeout_s=float(c["timeout_s"]), eval_points=c["eval_points"],
                        eval_every=c["eval_every"], max_seconds=float(c["max_seconds"]),
                        target_rel_l2=float(c["target_rel_l2"]),
                        timing_samples=c["timing_samples"], precision=c["precision"],
                    ))
    return cases
