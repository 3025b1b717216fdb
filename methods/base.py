"""The method seam.

A method turns a PDE and a case's size into a trainer with

* ``init(key) -> state``                  parameters and optimizer state
* ``sample(key) -> batch``                collocation points, the method's own layout
* ``step(state, batch) -> (state, metrics)``   one optimizer step: the timed thing; pure and
  jittable for JAX methods
* ``predict(state, points) -> values``    u at scattered points of shape (n, n_in)
* ``size_info()``                         what "number of collocation points" means here
* ``n_params(state)``, ``describe()``      for the record (``facts()`` adds the optimizer's)

and optional hooks with their defaults declared on :class:`Method` (``supports``,
``curve_keys``, ``evaluate``, ``inference_programs``). The harness calls these and nothing else.

The optimizer is a case parameter of its own (``optimizer``, ``methods/optim.py``): every
registered optimizer whose ``supports`` accepts the method class is valid, and its
hyper-parameters (with their defaults) join the method's parameters. A *preset* (``preset_of``
names its base method) is a method name for the base method with another default optimizer,
e.g. ``kfac`` = ``pinn-fl`` trained by KFAC; ``methods.canonical`` gives every computation one
name.

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
    #: valid values for string parameters (the valid optimizers come from the registry)
    choices: ClassVar[dict[str, tuple]] = {}
    #: numeric ranges of parameters beyond the suite-wide ones (``bench.suite.PARAM_RANGES``):
    #: name -> an object with ``check(v) -> bool`` and ``describe() -> str`` (e.g.
    #: ``bench.suite.Range``), checked at suite validation; default none
    ranges: ClassVar[dict] = {}
    #: the base method of a preset (a method name with another default optimizer), else None
    preset_of: ClassVar[str | None] = None
    #: True when ``step`` is the optimizer's step (``JaxMethod.step``); a method with a step
    #: of its own (causal's schedule, NSM's input draw) takes first-order optimizers only
    optimizer_steps: ClassVar[bool] = True
    #: for a method that trains with its framework's own optimizers (torch): the registry
    #: names it implements; JAX methods take every optax optimizer of the registry
    native_optimizers: ClassVar[tuple[str, ...]] = ()
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
    def all_defaults(cls, optimizer: str | None = None) -> dict[str, Any]:
        """The method's parameters with their defaults, with those of ``optimizer`` (default:
        the method's default optimizer)."""
        from . import optim

        out = {**COMMON_DEFAULTS, **cls.defaults}
        name = optimizer or out["optimizer"]
        if name in optim.OPTIMIZERS:
            for k, v in optim.OPTIMIZERS[name].defaults.items():
                out.setdefault(k, v)
        return out

    @classmethod
    def optimizers(cls) -> list[str]:
        """The registered optimizers that can train this method."""
        from . import optim

        return optim.valid_for(cls)

    @classmethod
    def optimizer_reason(cls, name, pde=None, params=None) -> str | None:
        """None if optimizer ``name`` can train this method (on ``pde`` with resolved
        ``params`` when given), else a one-line reason naming the valid choices."""
        from . import optim

        valid = cls.optimizers()
        opt = optim.OPTIMIZERS.get(name) if isinstance(name, str) else None
        why = "is not registered" if opt is None else opt.supports(cls, pde, params)
        if why is None:
            return None
        return (f"method.{cls.name}.optimizer = {name!r} is not valid ({why}; valid: "
                f"{', '.join(valid)})")

    @classmethod
    def resolve_params(cls, params: dict) -> dict:
        """Defaults updated by ``params``; unknown keys, wrong types, values outside their
        choices and optimizers that cannot train the method raise ValueError."""
        from . import optim

        name = params.get("optimizer", cls.all_defaults()["optimizer"])
        reason = cls.optimizer_reason(name)
        if reason:
            raise ValueError(reason)
        out = cls.all_defaults(name)
        choices = {**optim.OPTIMIZERS[name].choices, **cls.choices}
        for k, v in params.items():
            if k not in out:
                raise ValueError(
                    f"unknown parameter {k!r} for method {cls.name!r} with optimizer {name!r} "
                    f"(valid: {', '.join(sorted(out))})"
                )
            out[k] = check_type(f"method.{cls.name}.{k}", v, out[k])
            if k in choices and v not in choices[k]:
                raise ValueError(
                    f"method.{cls.name}.{k} = {v!r} is not valid "
                    f"(valid: {', '.join(map(str, choices[k]))})"
                )
        optim.OPTIMIZERS[name].check(out, f"method.{cls.name}")
        reason = optim.OPTIMIZERS[name].supports(cls, None, out)
        if reason:
            raise ValueError(f"method.{cls.name}.optimizer = {name!r}: {reason}")
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

    def optimizer_describe(self) -> dict:
        """The optimizer's facts for the record (e.g. KFAC's FLOP loop correction); default
        none."""
        return {}

    def facts(self) -> dict:
        """Everything the record's ``method`` entry states: ``describe()`` and the optimizer's."""
        return {**self.describe(), **self.optimizer_describe()}

    def inference_programs(self, state) -> list:
        """Programs besides the step to time and cost once training is done, as a list of
        ``(label, fn, args, repeats)``: ``fn(*args)`` pure and jittable (JAX), ``label`` a
        JSON scalar (e.g. the output resolution). The backend compiles each, reads its FLOPs
        from the cost analysis and times ``repeats`` synchronised calls (``bench.measure``);
        the record gets ``infer_res`` (the labels), ``infer_ms`` (medians) and ``infer_flops``.
        A method never times itself. Default: none."""
        return []


class TorchMethod(Method):
    """The PyTorch contract (the JAX one is ``methods.jaxutil.JaxMethod``): ``init(seed)`` and
    ``sample(seed)`` take integer seeds (torch generators), ``step`` runs eagerly and may update
    the state in place, returning loss tensors without synchronising (the backend syncs), and
    the backend sets ``device`` before ``init``. Optimizers are torch's own: the registry names
    a torch method implements are its ``native_optimizers``."""

    framework: ClassVar[str] = "torch"
    native_optimizers: ClassVar[tuple[str, ...]] = ("adam",)
    #: where tensors live; set by the torch backend (``bench.backends.torch``) before ``init``
    device: Any = "cpu"


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
