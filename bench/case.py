"""The case: one measurement, and the one declaration of its keys.

Every field of :class:`Case` declares, in its metadata, what the rest of the harness needs to
know about it: the suite keys that set it (:class:`Key`: TOML types, description, suite
default, range, valid values, whether a ``[method.NAME]`` table may override it), whether it
is part of ``case_id``'s hash, whether it tells variants of one method apart
(``bench.variants``) and whether the export copies it from the record's case
(:func:`export_columns`, behind ``bench.record.flat``). The tables of ``bench.suite``
(``CASE_KEYS``, ``DEFAULTS``, ``POSITIVE``, ``METHOD_OVERRIDES``, ...),
``bench.variants.CONFIG_KEYS`` and the export's case columns are derived here. This module
imports no framework, method or PDE (reports import it).
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
from dataclasses import MISSING, asdict, dataclass
from typing import Any

#: the field metadata key holding a field's declaration
META = "pinnbench"


class _Unset:
    def __repr__(self):
        return "UNSET"


#: "no suite default given" (``dataclasses.MISSING`` would mean "no default" to the dataclass)
UNSET = _Unset()


@dataclass(frozen=True)
class Key:
    """A suite key that sets a case field. ``default``: the suite's default when it differs from
    the field's (or the field has none; UNSET with neither: the key is required)."""

    types: tuple
    doc: str
    default: Any = UNSET
    positive: bool = False
    nonnegative: bool = False
    #: a ``[method.NAME]`` table may set it for that method
    override: bool = False
    #: the valid values (strings)
    choices: tuple = ()


def case_field(*, default=MISSING, factory=MISSING, keys: dict[str, Key] | None = None,
               hashed: bool = True, variant: bool = False, export: bool = False, absent=None,
               doc: str = ""):
    """A :class:`Case` field and its declaration: ``keys`` (suite key -> :class:`Key`),
    ``hashed`` (part of ``case_id``), ``variant`` (tells variants apart), ``export`` (an
    export column copied from the record's case), ``absent`` (what the export reads for a
    record written before the field existed)."""
    md = {META: {"keys": dict(keys or {}), "hashed": hashed, "variant": variant, "export": export,
                 "absent": absent, "doc": doc}}
    if factory is not MISSING:
        return dataclasses.field(default_factory=factory, metadata=md)
    return dataclasses.field(default=default, metadata=md)


def _key(types, doc, **kw) -> Key:
    return Key(tuple(types), doc, **kw)


DTYPES = ("float32", "float64")
PRECISIONS = ("highest", "high", "default")


@dataclass(frozen=True)
class Case:
    """One measurement. ``case_id`` hashes everything that changes the result."""

    suite: str = case_field(hashed=False, doc="the suite the case belongs to")
    pde: str = case_field(keys={"pde": _key((str,), "PDE family name")}, export=True)
    dim: int = case_field(keys={"dim": _key((int, list), "spatial dimension(s)", default=1, positive=True)},
                          export=True)
    method: str = case_field(keys={"methods": _key(
        (list, str), 'method names, or "all": every registered method that supports the PDE '
        '(minus "exclude"; the refused pairs go to the suite\'s support matrix)')}, export=True)
    n_per_axis: int = case_field(
        keys={"n_per_axis": _key((int, list), "collocation points per axis", default=[8], positive=True,
                                 override=True)}, export=True)
    seed: int = case_field(keys={"seeds": _key((int,), "number of seeds", default=1, positive=True),
                                 "seed0": _key((int,), "first seed", default=0, nonnegative=True)},
                           export=True)
    steps: int = case_field(default=100, keys={"steps": _key((int,), "training steps (budget)", positive=True,
                                                             override=True)}, variant=True, export=True)
    dtype: str = case_field(default="float32", keys={"dtype": _key((str,), "float32 or float64", override=True,
                                                                   choices=DTYPES)}, variant=True, export=True)
    device: str = case_field(default="cpu", export=True, doc="set by --device, not by the suite")
    pde_params: dict = case_field(factory=dict, keys={"pde_params": _key((dict,), "PDE parameters")},
                                  variant=True, export=True)
    method_params: dict = case_field(factory=dict, variant=True, export=True,
                                     doc="the [method.NAME] table's method parameters")
    timeout_s: float = case_field(default=900.0, keys={"timeout_s": _key(
        (int, float), "per-case timeout in seconds", positive=True, override=True)}, hashed=False)
    eval_points: int = case_field(default=4096, keys={"eval_points": _key(
        (int,), "held-out evaluation points", positive=True)}, variant=True)
    eval_every: int = case_field(default=0, keys={"eval_every": _key(
        (int,), "steps between evaluations on the training curve", nonnegative=True, override=True)})
    max_seconds: float = case_field(default=0.0, keys={"max_seconds": _key(
        (int, float), "wall-clock training budget", nonnegative=True, override=True)}, variant=True)
    target_rel_l2: float = case_field(default=0.0, keys={"target_rel_l2": _key(
        (int, float), "stop once rel. L2 reaches this", nonnegative=True)}, variant=True)
    #: the error a report times to without stopping the training (the leaderboard's target,
    #: ``bench.report.leaderboard``): the run still spends its whole budget, so the error at
    #: the budget is measured too. A reading of the curve, not a setting of the run: not hashed
    target_error: float = case_field(default=0.0, keys={"target_error": _key(
        (int, float), "rel. L2 the report times to from the training curve (training does not "
        "stop there)", nonnegative=True)}, hashed=False)
    timing_samples: int = case_field(default=9, keys={"timing_samples": _key(
        (int,), "timed samples (each several steps)", positive=True, override=True)})
    precision: str = case_field(default="highest", keys={"precision": _key(
        (str,), "matmul precision: highest, high or default", choices=PRECISIONS)}, variant=True)
    #: host memory limit of the worker in GB (0: none); the runner's watchdog enforces it
    memory_limit_gb: float = case_field(default=0.0, keys={"memory_limit_gb": _key(
        (int, float), "host memory limit of the worker (GB); above it: oom", nonnegative=True,
        override=True)}, hashed=False)
    #: inverse mode (``bench.suite.inverse_specs``): {learn, init, n_data, noise, data_weight,
    #: target_coef_err}; empty for a forward problem (and then not part of the hash, so forward
    #: ids are unchanged)
    inverse: dict = case_field(factory=dict, keys={"inverse": _key(
        (dict,), "inverse mode: learn named PDE coefficients from data")}, variant=True)
    #: timing round (``--rounds``): round r > 0 is a repeat of round 0, stored as its own record
    #: (a suffix of the id instead of part of the hash, so ids of round 0 are those of a run
    #: without rounds)
    round: int = case_field(default=0, hashed=False, export=True, absent=0)
    #: optimizer steps per compiled call (``bench.loop``: a fused block of K steps is one
    #: ``lax.scan`` over the method's step, never crossing a resample); 1 (the default, not
    #: part of the hash, so ids of unfused cases are unchanged) is one call per step
    fused_steps: int = case_field(default=1, keys={"fused_steps": _key(
        (int,), "optimizer steps per compiled call (1: one call per step)", positive=True,
        override=True)}, variant=True, export=True, absent=1)

    @functools.cached_property
    def case_id(self) -> str:
        d = {k: v for k, v in asdict(self).items() if k not in NOT_HASHED}
        if not d["inverse"]:
            del d["inverse"]
        if d["fused_steps"] == 1:
            del d["fused_steps"]
        h = hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:10]
        rnd = f"-r{self.round}" if self.round else ""
        inv = "-inv" if self.inverse else ""
        return f"{self.pde}{self.dim}{inv}-{self.method}-n{self.n_per_axis}-s{self.seed}-{h}{rnd}"

    def to_dict(self) -> dict:
        return {**asdict(self), "case_id": self.case_id}

    @classmethod
    def from_dict(cls, d: dict) -> "Case":
        return cls(**{k: v for k, v in d.items() if k != "case_id"})


# ---------------------------------------------------------------- the tables, derived

def declarations() -> dict[str, dict]:
    """Field name -> its declaration (``case_field``'s metadata), in field order."""
    return {f.name: f.metadata[META] for f in dataclasses.fields(Case)}


def _field_default(f):
    if f.default is not MISSING:
        return f.default
    if f.default_factory is not MISSING:
        return f.default_factory()
    return MISSING


def _suite_keys() -> dict[str, Key]:
    return {k: key for f in dataclasses.fields(Case) for k, key in f.metadata[META]["keys"].items()}


def _suite_defaults() -> dict[str, Any]:
    out = {}
    for f in dataclasses.fields(Case):
        for k, key in f.metadata[META]["keys"].items():
            d = key.default if key.default is not UNSET else _field_default(f)
            if d is not MISSING:
                out[k] = d
    return out


SUITE_CASE_KEYS: dict[str, Key] = _suite_keys()
#: suite key -> (python types, description); "list-or" keys accept a scalar or a list of scalars
CASE_KEYS: dict[str, tuple] = {k: (key.types, key.doc) for k, key in SUITE_CASE_KEYS.items()}
#: the suite's default of every case key that has one (``pde`` and ``methods`` are required)
DEFAULTS: dict[str, Any] = _suite_defaults()
#: case keys that must be positive / must not be negative
POSITIVE: tuple[str, ...] = tuple(k for k, key in SUITE_CASE_KEYS.items() if key.positive)
NONNEGATIVE: tuple[str, ...] = tuple(k for k, key in SUITE_CASE_KEYS.items() if key.nonnegative)
#: keys a [method.NAME] table may override besides the method's own parameters
METHOD_OVERRIDES: tuple[str, ...] = tuple(k for k, key in SUITE_CASE_KEYS.items() if key.override)
#: fields that do not change what is measured (not part of ``case_id``'s hash)
NOT_HASHED: tuple[str, ...] = tuple(n for n, d in declarations().items() if not d["hashed"])
#: case fields whose values make two runs of one method different experiments (``bench.variants``)
VARIANT_KEYS: tuple[str, ...] = tuple(n for n, d in declarations().items() if d["variant"])
#: case fields the export copies from the record's case (``bench.record.flat``)
EXPORT_KEYS: tuple[str, ...] = tuple(n for n, d in declarations().items() if d["export"])
_TABLES = {f.name for f in dataclasses.fields(Case) if f.default_factory is dict}
#: fields the suite expansion derives itself (from other keys, the loop or the CLI); every
#: other field set by a suite key of its own name is copied from the resolved key (``copied``)
EXPANDED = ("suite", "pde", "dim", "method", "n_per_axis", "seed", "device", "pde_params",
            "method_params", "inverse")


def copied(cfg: dict) -> dict:
    """The fields a suite key of the same name sets directly (``steps``, ``dtype``,
    ``timeout_s``, ...), from the resolved keys ``cfg``; a float field gets a float. Adding such
    a key to :class:`Case` needs no change in ``bench.suite``."""
    out = {}
    for f in dataclasses.fields(Case):
        if f.name in EXPANDED or f.name not in f.metadata[META]["keys"] or f.name not in cfg:
            continue
        v = cfg[f.name]
        out[f.name] = float(v) if f.type in (float, "float") else v
    return out


def export_columns(case: dict) -> dict:
    """The export columns of a record's ``case``: each ``export`` field's value (its ``absent``
    value when the record predates it), tables (``pde_params``, ...) as canonical JSON."""
    decl = declarations()
    out = {}
    for k in EXPORT_KEYS:
        v = case.get(k, decl[k]["absent"])
        out[k] = json.dumps(v or {}, sort_keys=True, default=str) if k in _TABLES else v
    return out
