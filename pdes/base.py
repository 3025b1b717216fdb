"""The PDE seam: a PDE knows its domain, exact solution, conditions and residual.

A residual is written against the *fields vocabulary* (`Fields`), never against an autodiff
mode, so one PDE definition serves a reverse-mode PINN (pointwise derivatives on scattered
points), a SPINN (forward-mode derivatives of per-axis networks, merged on a tensor grid) and
any other method that can hand out derivatives of its current model.

Conventions
-----------
* Inputs are ordered ``(t, x_0, ..., x_{d-1})`` for time-dependent PDEs and ``(x_0, ...,
  x_{d-1})`` otherwise. ``Fields.d(i, k)`` is the k-th derivative along *spatial* axis ``i``;
  ``Fields.dt(k)`` is the k-th time derivative. ``Fields.partial(idx)`` takes a multi-index of
  *input* axes (mixed derivatives).
* Coordinates handed to ``exact``/sources are a list of arrays, one per input axis, that
  broadcast against each other to the shape of the field (columns for scattered points,
  ``(1, .., N_a, .., 1)`` slabs on a tensor grid). Math goes through the array namespace
  ``xp`` (``jax.numpy`` or ``torch``), so the same code serves both frameworks.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar, Sequence

import numpy as np


class Fields:
    """Derivatives of the current model at a set of points (the vocabulary PDEs use).

    Subclasses implement `_partial(idx, c)` (a mixed partial along a sorted tuple of input
    axes, component ``c``) and set ``xp``, ``coords``, ``time_dependent``. Everything else
    derives from it. Results are cached per instance, so a residual may ask twice for free.
    """

    xp: Any
    coords: list
    time_dependent: bool

    def __init__(self, xp, coords, time_dependent: bool):
        self.xp = xp
        self.coords = list(coords)
        self.time_dependent = time_dependent
        self._cache: dict = {}

    # -- primitive ---------------------------------------------------------------------------
    def _partial(self, idx: tuple[int, ...], c: int):  # pragma: no cover - abstract
        raise NotImplementedError

    def partial(self, idx: Sequence[int] = (), c: int = 0):
        """Mixed partial derivative along input axes ``idx`` (``()`` is u itself)."""
        key = (tuple(sorted(int(i) for i in idx)), int(c))
        if key not in self._cache:
            self._cache[key] = self._partial(*key)
        return self._cache[key]

    # -- vocabulary ----------------------------------------------------------------------------
    @property
    def n_in(self) -> int:
        return len(self.coords)

    @property
    def dim(self) -> int:
        """Number of spatial dimensions."""
        return self.n_in - (1 if self.time_dependent else 0)

    def _ax(self, axis) -> int:
        if axis == "t":
            if not self.time_dependent:
                raise ValueError("this PDE has no time axis")
            return 0
        axis = int(axis)
        if not 0 <= axis < self.dim:
            raise ValueError(f"spatial axis {axis} out of range 0..{self.dim - 1}")
        return axis + (1 if self.time_dependent else 0)

    def u(self, c: int = 0):
        return self.partial((), c)

    def d(self, axis, order: int = 1, c: int = 0):
        """``order``-th derivative along spatial axis ``axis`` (an int, or ``"t"``)."""
        return self.partial((self._ax(axis),) * order, c)

    def dd(self, a, b, c: int = 0):
        """Mixed second derivative along spatial axes ``a`` and ``b`` (ints or ``"t"``)."""
        return self.partial((self._ax(a), self._ax(b)), c)

    def dt(self, order: int = 1, c: int = 0):
        return self.partial((0,) * order, c) if self.time_dependent else self._no_time()

    def _no_time(self):
        raise ValueError("this PDE has no time axis")

    def grad(self, c: int = 0) -> list:
        return [self.d(i, 1, c) for i in range(self.dim)]

    def lap(self, c: int = 0):
        out = self.d(0, 2, c)
        for i in range(1, self.dim):
            out = out + self.d(i, 2, c)
        return out

    def t(self):
        if not self.time_dependent:
            self._no_time()
        return self.coords[0]

    def x(self, i: int):
        return self.coords[self._ax(i)]

    def xs(self) -> list:
        return [self.x(i) for i in range(self.dim)]


@dataclass(frozen=True)
class Condition:
    """An initial/boundary term: a residual evaluated on one face of the domain.

    ``axis`` is an *input* index and ``side`` is ``"lo"`` or ``"hi"``: the face fixes that input
    to its bound. ``residual(f)`` is evaluated with fields on that face (defaults to
    ``u - u*``). Faces sharing a ``group`` are averaged into one loss term (mean of the face
    MSEs), which is identical for scattered points and grids when faces have equal size.
    """

    name: str
    group: str
    axis: int
    side: str
    residual: Callable | None = None


@dataclass(frozen=True)
class SeparableTerm:
    """A rank-one term ``coef * prod_a g_a(x_a)`` (used by grid-free methods)."""

    coef: float
    factors: tuple  # one callable per input axis: (coords_1d, xp) -> values


class PDE:
    """Base class. Subclasses set the class attributes and implement the hooks."""

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    citation: ClassVar[str] = ""
    #: dims this family supports: a tuple of allowed values, or None for any dim >= 1
    dims: ClassVar[tuple[int, ...] | None] = None
    time_dependent: ClassVar[bool] = False
    n_out: ClassVar[int] = 1
    #: loss weights per term group; "res" is the interior residual
    default_weights: ClassVar[dict[str, float]] = {"res": 1.0, "ic": 1.0, "bc": 1.0}
    #: parameter defaults a suite may override (validated by name and type)
    defaults: ClassVar[dict[str, Any]] = {}
    #: "exact" (closed form) or "reference" (a tested numerical reference solver)
    solution: ClassVar[str] = "exact"
    #: what the error fields mean (records carry it; see `errors`)
    error_definition: ClassVar[str] = "rel. L2 over all evaluation points and components"
    #: named coefficients of the residual an inverse problem may learn: name -> meaning. The
    #: true value is the attribute of that name; the residual reads it through `coef`
    coefficients: ClassVar[dict[str, str]] = {}
    #: a family of problems (input function -> solution): only operator-learning methods run it
    parametric: ClassVar[bool] = False
    #: input axes on which the solution is periodic (period = the axis' bounds)
    periodic_axes: ClassVar[tuple[int, ...]] = ()
    #: the mollifier that enforces BC/IC exactly for operator methods ("periodic", "initial"), if any
    output_transform: ClassVar[str | None] = None

    def __init__(self, dim: int, **params):
        check_dim(type(self), dim)
        self.dim = int(dim)
        self.params = dict(self.defaults)
        for k, v in params.items():
            if k not in self.defaults:
                raise ValueError(
                    f"unknown parameter {k!r} for PDE {self.name!r} "
                    f"(valid: {', '.join(sorted(self.defaults)) or 'none'})"
                )
            self.params[k] = v
        self.weights = dict(self.default_weights)
        self.setup()

    def setup(self) -> None:
        """Hook: derive constants from ``self.params`` and ``self.dim``."""

    # -- named coefficients (inverse problems) ---------------------------------------------------
    def coefficient_values(self) -> dict[str, float]:
        """The true value of every named coefficient."""
        return {k: float(getattr(self, k)) for k in self.coefficients}

    def coef(self, name: str):
        """Coefficient ``name`` as the residual sees it: a bound (trainable) value, else the true one."""
        return getattr(self, "_bound", {}).get(name, getattr(self, name))

    def bind(self, values: dict) -> "PDE":
        """A shallow copy whose *residual* reads ``values`` (e.g. traced parameters) for the
        named coefficients; ``exact`` and the IC/BC data keep the true ones."""
        for k in values:
            if k not in self.coefficients:
                raise ValueError(f"unknown coefficient {k!r} for PDE {self.name!r} "
                                 f"(valid: {', '.join(sorted(self.coefficients)) or 'none'})")
        out = copy.copy(self)
        out._bound = {**getattr(self, "_bound", {}), **values}
        return out

    # -- domain --------------------------------------------------------------------------------
    @property
    def n_in(self) -> int:
        return self.dim + (1 if self.time_dependent else 0)

    def bounds(self) -> list[tuple[float, float]]:  # pragma: no cover - abstract
        """(lo, hi) per input axis, time first."""
        raise NotImplementedError

    def axis_names(self) -> list[str]:
        return (["t"] if self.time_dependent else []) + [f"x{i}" for i in range(self.dim)]

    # -- physics -------------------------------------------------------------------------------
    def residual(self, f: Fields):  # pragma: no cover - abstract
        """Interior residual: an array, or a tuple of arrays (systems; all weight 'res')."""
        raise NotImplementedError

    def exact(self, coords: list, xp):  # pragma: no cover - abstract
        """Exact solution at broadcastable coords; for n_out > 1 a tuple of components."""
        raise NotImplementedError

    def conditions(self) -> list[Condition]:
        """Default: IC at t = t0 (u = u*), Dirichlet u = u* on every spatial face."""
        out = []
        if self.time_dependent:
            out.append(Condition("ic", "ic", 0, "lo"))
        off = 1 if self.time_dependent else 0
        for i in range(self.dim):
            for side in ("lo", "hi"):
                out.append(Condition(f"bc_x{i}_{side}", "bc", i + off, side))
        return out

    def condition_residual(self, cond: Condition, f: Fields):
        if cond.residual is not None:
            return cond.residual(f)
        ex = self.exact(f.coords, f.xp)
        if self.n_out == 1:
            return f.u() - ex
        return tuple(f.u(c) - ex[c] for c in range(self.n_out))

    def describe(self) -> dict:
        return {
            "name": self.name,
            "dim": self.dim,
            "n_in": self.n_in,
            "time_dependent": self.time_dependent,
            "n_out": self.n_out,
            "params": self.params,
            "weights": self.weights,
            "bounds": self.bounds(),
            "solution": self.solution,
            "error_definition": self.error_definition,
            **({"coefficients": self.coefficient_values()} if self.coefficients else {}),
        }

    def errors(self, pred, exact, xp) -> dict:
        """Optional hook: error fields that add to or replace the worker's defaults
        (``rel_l2``, ``rms_abs``, ``max_abs`` over everything). ``pred``/``exact`` are
        (n,) or (n, n_out) arrays at the evaluation points."""
        return {}

    # -- optional separable form (grid-free methods) ----------------------------------------
    def separable_source(self) -> list[SeparableTerm] | None:
        """The residual's source as a sum of rank-one terms, or None if it has none."""
        return None


def check_dim(cls: type[PDE], dim) -> None:
    if isinstance(dim, bool) or not isinstance(dim, int) or dim < 1:
        raise ValueError(f"dim must be a positive integer, got {dim!r}")
    if cls.dims is not None and dim not in cls.dims:
        raise ValueError(
            f"dim {dim} not supported by PDE {cls.name!r} (valid: {', '.join(map(str, cls.dims))})"
        )


def as_tuple(r) -> tuple:
    return tuple(r) if isinstance(r, (tuple, list)) else (r,)


class UnknownName(ValueError):
    """A name not in a registry; the message lists the valid names."""


@dataclass
class Registry:
    """A plain name -> object registry whose errors list the valid names."""

    kind: str
    items: dict = field(default_factory=dict)

    def add(self, name: str, obj) -> None:
        if name in self.items:
            raise ValueError(f"{self.kind} {name!r} registered twice")
        self.items[name] = obj

    def get(self, name: str):
        try:
            return self.items[name]
        except (KeyError, TypeError):
            raise UnknownName(
                f"unknown {self.kind} {name!r} (valid: {', '.join(sorted(self.items))})"
            ) from None

    def names(self) -> list[str]:
        return sorted(self.items)

    def __contains__(self, name) -> bool:
        return name in self.items

    def load_plugins(self, group: str) -> None:
        """Add the out-of-tree entries of the entry-point ``group`` (name -> class), e.g.
        ``pinnbench.methods`` or ``pinnbench.pdes`` in a plugin package's metadata. A name
        already registered keeps its in-tree entry; a plugin that fails to load is skipped
        with a warning (a broken plugin must not break the harness)."""
        import warnings
        from importlib.metadata import entry_points

        for ep in entry_points(group=group):
            if ep.name in self.items:
                continue
            try:
                self.add(ep.name, ep.load())
            except Exception as e:
                warnings.warn(f"pinnbench: {self.kind} plugin {ep.name!r} failed to load: {e}", stacklevel=2)

class ParametricPDE(PDE):
    """Base of the operator-learning PDE families (see the module docstring)."""

    parametric = True
    output_transform = "periodic"

    def basis_kinds(self) -> list[str]:  # pragma: no cover - abstract
        raise NotImplementedError

    def input_grid(self) -> list[tuple[str, int]]:  # pragma: no cover - abstract
        raise NotImplementedError

    def sample_inputs(self, key, batch: int, dtype):  # pragma: no cover - abstract
        raise NotImplementedError

    def reference(self, phi: np.ndarray, axes: list) -> np.ndarray:  # pragma: no cover
        raise NotImplementedError

    def eval_axes(self) -> list[np.ndarray]:  # pragma: no cover - abstract
        raise NotImplementedError

    def test_inputs(self) -> np.ndarray:
        """The held-out inputs: ``n_test`` draws from PRNGKey(test_seed) (REFERENCES 1.3)."""
        import jax

        key = jax.random.PRNGKey(int(self.params["test_seed"]))
        return np.asarray(self.sample_inputs(key, int(self.params["n_test"]), np.float64
                                             if jax.config.jax_enable_x64 else np.float32),
                          np.float64)

    def exact(self, coords, xp):
        raise ValueError(f"PDE {self.name!r} is parametric: no single exact solution "
                         "(use reference(phi, axes))")

    def conditions(self):
        return []  # BC/IC are enforced exactly by the output transform
