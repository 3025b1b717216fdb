"""The method seam.

A method turns a PDE and a case's size into a trainer with

* ``init(key) -> state``                  parameters and optimizer state
* ``sample(key) -> batch``                collocation points, the method's own layout
* ``step(state, batch) -> (state, metrics)``   one optimizer step: the timed thing; pure and
  jittable for JAX methods
* ``predict(state, points) -> values``    u at scattered points of shape (n, n_in)
* ``size_info()``                         what "number of collocation points" means here
* ``n_params(state)``, ``describe()``      for the record

and optional hooks with their defaults declared on :class:`Method` (``supports``,
``curve_keys``, ``evaluate``). The harness calls these and nothing else.

Registering a method is one module with a `Method` subclass and one line in
``methods/__init__.py``.
"""

from __future__ import annotations

from typing import Any, ClassVar

from pdes import PDE, as_tuple

# Parameter keys every JAX method accepts (optimizer settings are case parameters).
COMMON_DEFAULTS: dict[str, Any] = {"lr": 1e-3, "optimizer": "adam", "resample_every": 100}


class Method:
    """Base class for all methods. Subclasses set the class attributes."""

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    citation: ClassVar[str] = ""
    framework: ClassVar[str] = "jax"  # "jax" or "torch": tells the worker how to sync/measure
    #: "random" (i.i.d. points), "grid" (tensor grid of per-axis points), ...
    points_kind: ClassVar[str] = "random"
    #: method parameters a suite may set, with their defaults (types are checked against these)
    defaults: ClassVar[dict[str, Any]] = {}
    #: valid values for string parameters
    choices: ClassVar[dict[str, tuple]] = {"optimizer": ("adam",)}
    #: optional packages the method needs beyond the core install: (import name, pip fix)
    requires: ClassVar[tuple[tuple[str, str], ...]] = ()
    #: step metrics kept on the training curve besides the loss (e.g. causal ``min_w``)
    curve_keys: ClassVar[tuple[str, ...]] = ()
    #: ``evaluate(state, final=False) -> {rel_l2, ...}`` for methods with their own error
    #: protocol (operator learning); None: the harness compares ``predict`` with the exact
    #: solution at uniform random points
    evaluate = None

    def __init__(self, pde: PDE, n_per_axis: int, params: dict | None = None,
                 dtype: str = "float32"):
        self.pde = pde
        self.n_per_axis = int(n_per_axis)
        self.params = self.resolve_params(params or {})
        self.dtype = dtype

    @classmethod
    def all_defaults(cls) -> dict[str, Any]:
        return {**COMMON_DEFAULTS, **cls.defaults}

    @classmethod
    def resolve_params(cls, params: dict) -> dict:
        """Defaults updated by ``params``; unknown keys and wrong types raise ValueError."""
        out = cls.all_defaults()
        for k, v in params.items():
            if k not in out:
                raise ValueError(
                    f"unknown parameter {k!r} for method {cls.name!r} "
                    f"(valid: {', '.join(sorted(out))})"
                )
            out[k] = check_type(f"method.{cls.name}.{k}", v, out[k])
            if k in cls.choices and v not in cls.choices[k]:
                raise ValueError(
                    f"method.{cls.name}.{k} = {v!r} is not valid "
                    f"(valid: {', '.join(map(str, cls.choices[k]))})"
                )
        return out

    @classmethod
    def missing_requirement(cls) -> str | None:
        """None if every optional package in ``requires`` can be imported, else a one-line
        reason naming the fix. Found with ``find_spec``: nothing is imported."""
        import importlib.util

        for module, fix in cls.requires:
            try:
                found = importlib.util.find_spec(module) is not None
            except (ImportError, ValueError):  # a broken or stubbed-out module counts as absent
                found = False
            if not found:
                return f"method {cls.name!r} needs {module}, which is not installed: {fix}"
        return None

    @classmethod
    def supports(cls, pde: PDE) -> str | None:
        """None if the method can run this PDE, else a one-line reason."""
        if pde.parametric:
            return "parametric PDE: needs an operator-learning method (e.g. nsm)"
        return None

    @classmethod
    def supports_inverse(cls, pde: PDE) -> str | None:
        """None if the method can learn PDE coefficients from data (inverse mode), else a
        one-line reason. Default: not supported."""
        return f"method {cls.name!r} has no inverse mode (it trains the network's parameters only)"

    # -- trainer interface (see module docstring) ------------------------------------------
    def init(self, key):  # pragma: no cover - abstract
        raise NotImplementedError

    def sample(self, key):  # pragma: no cover - abstract
        raise NotImplementedError

    def step(self, state, batch):  # pragma: no cover - abstract
        raise NotImplementedError

    def predict(self, state, points):  # pragma: no cover - abstract
        raise NotImplementedError

    def size_info(self) -> dict:  # pragma: no cover - abstract
        raise NotImplementedError

    def n_params(self, state) -> int:  # pragma: no cover - abstract
        raise NotImplementedError

    def describe(self) -> dict:
        """Extra facts for the record (derivative engine, boundary weighting, ...)."""
        return {}

    def inference_programs(self, state) -> list:
        """Programs besides the step to time and cost once training is done, as a list of
        ``(label, fn, args, repeats)``: ``fn(*args)`` pure and jittable (JAX), ``label`` a
        JSON scalar (e.g. the output resolution). The backend compiles each, reads its FLOPs
        from the cost analysis and times ``repeats`` synchronised calls (``bench.measure``);
        the record gets ``infer_res`` (the labels), ``infer_ms`` (medians) and ``infer_flops``.
        A method never times itself. Default: none."""
        return []


def check_type(key: str, value, default):
    """Check ``value`` against the type of ``default`` (ints are accepted for floats)."""
    if isinstance(default, bool):
        ok = isinstance(value, bool)
    elif isinstance(default, int):
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif isinstance(default, float):
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        value = float(value) if ok else value
    elif isinstance(default, str):
        ok = isinstance(value, str)
    elif isinstance(default, (list, tuple)):
        ok = isinstance(value, (list, tuple))
    elif default is None:
        ok = True
    else:
        ok = isinstance(value, type(default))
    if not ok:
        raise ValueError(
            f"{key} = {value!r} has the wrong type (expected {type(default).__name__})"
        )
    return value


def pde_loss(pde: PDE, interior_fields, condition_fields: list, xp=None):
    """Loss = w_res * sum_r mean(r^2) + sum_groups w_g * mean_over_faces(mean(rc^2)).

    ``condition_fields`` pairs each of ``pde.conditions()`` with its fields. Returns
    (total, {term: value}). The per-face mean makes the boundary term the same quantity
    for scattered points and tensor grids (faces of equal size), unlike the SPINN code,
    which sums face MSEs (REFERENCES.md 1.1).
    """
    terms = {}
    res = sum(_ms(r) for r in as_tuple(pde.residual(interior_fields)))
    terms["res"] = res
    total = pde.weights.get("res", 1.0) * res
    groups: dict[str, list] = {}
    for cond, f in condition_fields:
        groups.setdefault(cond.group, []).append(
            sum(_ms(r) for r in as_tuple(pde.condition_residual(cond, f)))
        )
    for g, vals in groups.items():
        terms[g] = sum(vals) / len(vals)
        total = total + pde.weights.get(g, 1.0) * terms[g]
    return total, terms


def _ms(r):
    return (r * r).mean()
