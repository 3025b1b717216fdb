"""Symbolic CP (canonical polyadic) tensors on a tensor grid, for grid-free SPINN losses.

A SPINN's output on the grid x_1 x ... x x_n is the CP tensor u = sum_k F_1[:, k] o ... o
F_n[:, k] (Cho et al., NeurIPS 2023, eq. 2). Every derivative changes one axis's factor, so
each *linear* term of a residual is a CP tensor; coordinates and separable data are rank-one
CP tensors; sums concatenate terms; a product of two CP tensors is the Khatri-Rao product of
their factors (rank r1 * r2). A PDE residual written against the fields vocabulary therefore
evaluates, unchanged, to a CP tensor when its fields (`CPFields`) and array namespace (`CPNamespace`)
are symbolic, and its weighted mean square needs no grid:

    sum_i q(i) T(i)^2 = sum_{s,t} c_s^T [ Hadamard_a  F_a^s^T diag(q_a) F_a^t ] c_t

with per-axis weights q_a (1/N_a for the mean over random per-axis points, normalised
Gauss-Legendre weights for the integral mean) -- O(sum_a N_a R^2) instead of O(prod_a N_a R).
This identity (the Gram/Hadamard form of the CP inner product) is Kolda & Bader, "Tensor
Decompositions and Applications", SIAM Review 51 (2009), sec. 3.1 / eq. for <X, X>; its use as
a grid-free PINN loss is pinnbench's own.

What the algebra cannot express raises `Unsupported` (a ValueError): an elementwise function
(sin, exp, ...) of a tensor that depends on more than one axis (e.g. sin(u), or a
non-separable source such as sin(x_0 + x_1)), division by such a tensor, a product of more
than ``max_degree`` model fields, or any array operation outside `CPNamespace`.
"""

from __future__ import annotations

import math
import numbers

import jax
import jax.numpy as jnp
import numpy as np

#: float32 Gram arithmetic of `Grid.inner`
GRAMS = ("double-float", "plain")


class Unsupported(ValueError):
    """The expression leaves the CP algebra; the message says why."""


# elementwise functions applied to tensors that depend on one axis only
UNARY = ("sin", "cos", "tan", "exp", "expm1", "log", "log1p", "sqrt", "tanh", "sinh", "cosh",
         "arctan", "arcsin", "arccos", "arctanh", "abs", "square", "sign", "reciprocal",
         "cbrt", "sinc", "exp2", "log2", "log10", "erf")


def _is_scalar(v) -> bool:
    if isinstance(v, bool):
        return False
    if isinstance(v, numbers.Number):
        return True
    return getattr(v, "ndim", None) == 0 and not isinstance(v, CP)


class Term:
    """coef (r,) and one factor per axis: an (N_a, r) array or None (all ones, no dependence)."""

    __slots__ = ("coef", "factors", "degree")

    def __init__(self, coef, factors, degree: int):
        self.coef, self.factors, self.degree = coef, list(factors), degree

    @property
    def rank(self) -> int:
        return int(self.coef.shape[0])

    def scaled(self, s) -> "Term":
        return Term(self.coef * s, self.factors, self.degree)


def _kr(a, b, ra: int, rb: int):
    """Column-wise Khatri-Rao product: column i*rb + j is a[:, i] * b[:, j]."""
    if a is None and b is None:
        return None
    if a is None:
        return jnp.tile(b, (1, ra))
    if b is None:
        return jnp.repeat(a, rb, axis=1)
    return (a[:, :, None] * b[:, None, :]).reshape(a.shape[0], ra * rb)


def _check_degree(deg: int, max_degree: int):
    if deg > max_degree:
        raise Unsupported(f"a product of {deg} model fields (CP rank r^{deg}) exceeds "
                          f"max_degree = {max_degree}")


def _product(s: Term, t: Term, max_degree: int) -> Term:
    """s * t: coefficients c_s (x) c_t, factors the column-wise Khatri-Rao products (rank r_s r_t).

    When s and t share every factor (u * u, gamma u * u: the same network features), the pairs
    (i, j) and (j, i) are one column: sum_{i<=j} c_ij f_i f_j with c_ii = a_i b_i and
    c_ij = a_i b_j + a_j b_i, rank r (r + 1) / 2 instead of r^2 -- the same tensor.
    """
    deg = s.degree + t.degree
    if deg > max_degree:
        raise Unsupported(f"a product of {deg} model fields (CP rank r^{deg}) exceeds "
                          f"max_degree = {max_degree}")
    if s.rank == t.rank and s.rank > 1 and all(fa is fb for fa, fb in zip(s.factors, t.factors)):
        i, j = np.triu_indices(s.rank)
        a, b = s.coef, t.coef
        coef = jnp.where(jnp.asarray(i == j), a[i] * b[j], a[i] * b[j] + a[j] * b[i])
        return Term(coef, [None if f is None else f[:, i] * f[:, j] for f in s.factors], deg)
    return Term((s.coef[:, None] * t.coef[None, :]).reshape(-1),
                [_kr(fa, fb, s.rank, t.rank) for fa, fb in zip(s.factors, t.factors)], deg)


class CP:
    """A sum of CP terms on one grid (see module docstring). Arithmetic builds new tensors.

    A product of two tensors is kept as a pair until its terms are needed, so ``(r * r).mean()``
    (the mean square in `methods.base.pde_loss`) is the grid-free inner product and never forms
    the rank-R^2 Khatri-Rao factors.
    """

    __array_ufunc__ = None  # numpy scalars and arrays defer to our reflected operators

    def __init__(self, grid: "Grid", terms=None, pair=None):
        self.grid, self._terms, self._pair = grid, terms, pair

    # -- construction ----------------------------------------------------------------------
    @property
    def terms(self) -> list[Term]:
        if self._terms is None:
            a, b = self._pair
            self._terms = [_product(s, t, self.grid.max_degree) for s in a.terms for t in b.terms]
        return self._terms

    def _const(self, value) -> "CP":
        return self.grid.const(value)

    @property
    def rank(self) -> int:
        return sum(t.rank for t in self.terms)

    def axes_used(self) -> set[int]:
        return {a for t in self.terms for a, f in enumerate(t.factors) if f is not None}

    # -- arithmetic --------------------------------------------------------------------------
    def _coerce(self, other):
        if isinstance(other, CP):
            if other.grid is not self.grid:
                raise Unsupported("tensors on different grids cannot be combined")
            return other
        if _is_scalar(other):
            return self._const(other)
        shape = getattr(other, "shape", None)
        raise Unsupported(
            f"an array of shape {shape} ({type(other).__name__}) cannot enter a CP expression; "
            "write data through the fields' coords and xp so it stays separable")

    def __add__(self, other):
        if isinstance(other, numbers.Number) and not isinstance(other, bool) and other == 0:
            return self
        o = self._coerce(other)
        return CP(self.grid, self.terms + o.terms)

    __radd__ = __add__

    def __neg__(self):
        return CP(self.grid, [t.scaled(-1.0) for t in self.terms])

    def __pos__(self):
        return self

    def __sub__(self, other):
        return self + (-self._coerce(other))

    def __rsub__(self, other):
        return self._coerce(other) + (-self)

    def __mul__(self, other):
        if _is_scalar(other):
            return CP(self.grid, [t.scaled(other) for t in self.terms])
        o = self._coerce(other)
        return CP(self.grid, pair=(self, o))

    __rmul__ = __mul__

    def __truediv__(self, other):
        if _is_scalar(other):
            return self * (1.0 / other)
        o = self._coerce(other)
        return self * o._unary("reciprocal", jnp.reciprocal)

    def __rtruediv__(self, other):
        return self._coerce(other) * self._unary("reciprocal", jnp.reciprocal)

    def __pow__(self, p):
        if isinstance(p, numbers.Integral) and not isinstance(p, bool) and p >= 0:
            if p == 0:
                return self._const(1.0)
            out = self
            for _ in range(int(p) - 1):
                out = out * self
            return out
        if _is_scalar(p):
            return self._unary(f"power {p}", lambda v: v ** p)
        raise Unsupported(f"a power with exponent {type(p).__name__} is not expressible as a CP tensor")

    # -- elementwise functions ---------------------------------------------------------------
    def _unary(self, name: str, fn) -> "CP":
        """fn applied elementwise; only for tensors that depend on at most one axis."""
        used = self.axes_used()
        if len(used) > 1:
            names = ", ".join(self.grid.names[a] for a in sorted(used))
            raise Unsupported(
                f"{name}() of a tensor that depends on several axes ({names}) is not separable")
        if not used:  # constant
            val = sum(t.coef.sum() for t in self.terms)
            return self._const(fn(jnp.asarray(val)))
        (a,) = used
        v = 0.0
        for t in self.terms:
            v = v + (t.factors[a] @ t.coef if t.factors[a] is not None else t.coef.sum())
        return self.grid.univariate(a, fn(v))

    # -- reductions --------------------------------------------------------------------------
    def mean(self):
        """Weighted mean over the grid (the weights of `Grid`), without forming the grid."""
        if self._terms is None and self._pair is not None:
            return self.grid.inner(self._pair[0], self._pair[1])
        return self.grid.inner(self, self.grid.const(1.0))

    def full(self):
        """Materialise the dense tensor (tests and debugging only)."""
        shape = tuple(self.grid.sizes)
        out = jnp.zeros(shape, self.grid.dtype)
        letters = "abcdefghijklmnopqrstuvwxy"[: len(shape)]
        for t in self.terms:
            mats = [f if f is not None else jnp.ones((n, t.rank), self.grid.dtype)
                    for f, n in zip(t.factors, shape)]
            spec = ",".join(f"{c}z" for c in letters) + ",z->" + letters
            out = out + jnp.einsum(spec, *mats, t.coef)
        return out

    def __repr__(self):
        return f"CP(rank={self.rank}, terms={len(self.terms)}, axes={sorted(self.axes_used())})"

    def __bool__(self):
        raise Unsupported("the truth value of a CP tensor is not defined (no data-dependent branches)")


class Grid:
    """The tensor grid: per-axis sizes, weights (summing to 1 on each axis), dtype."""

    def __init__(self, sizes, weights, dtype, names=None, max_degree: int = 2,
                 gram: str = "double-float"):
        self.sizes = [int(n) for n in sizes]
        self.weights = list(weights)  # (N_a,) arrays, or None for uniform 1/N_a
        self.dtype = dtype
        self.names = names or [f"axis{a}" for a in range(len(self.sizes))]
        self.max_degree = int(max_degree)
        if gram not in GRAMS:
            raise ValueError(f"gram = {gram!r} (valid: {', '.join(GRAMS)})")
        #: "double-float": float32 inner products in double-float arithmetic; "plain": not
        self.gram = gram
        #: one (per-axis Gram widths, rank of x, rank of y) per `inner` traced on this grid
        self.stats: list[tuple[list[int], int, int]] = []

    @property
    def n_axes(self) -> int:
        return len(self.sizes)

    def const(self, value) -> CP:
        coef = jnp.reshape(jnp.asarray(value, self.dtype), (1,))
        return CP(self, [Term(coef, [None] * self.n_axes, 0)])

    def univariate(self, a: int, values, degree: int = 0) -> CP:
        values = jnp.asarray(values, self.dtype)
        if values.ndim == 0:
            return self.const(values)
        factors = [None] * self.n_axes
        factors[a] = values.reshape(-1, 1)
        return CP(self, [Term(jnp.ones((1,), self.dtype), factors, degree)])

    def factor_term(self, factors, degree: int = 1) -> CP:
        """One term with coefficient 1 and the given (N_a, r) factors."""
        r = factors[0].shape[1]
        return CP(self, [Term(jnp.ones((r,), self.dtype), factors, degree)])

    def inner(self, x: CP, y: CP):
        """Weighted mean of the elementwise product x * y over the grid, without the grid.

        Per axis, the distinct factor blocks of both tensors (by identity: the same network
        features reused by several terms count once; None = a ones column) are stacked into
        U_a (N_a, R_u) and one Gram G_a = U_a^T diag(q_a) U_a is formed; the (R_x, R_y) Gram of
        the two tensors is a gather of it. The result is c_x^T (Hadamard_a G_a[ix, iy]) c_y.

        In float32 the value is computed in double-float arithmetic (`_accurate_inner`), since
        the plain sum cancels as the residual shrinks, unless ``gram = "plain"``; other dtypes
        use the plain formula.
        """
        Us, ixs, iys = [], [], []
        for a in range(self.n_axes):
            blocks, offsets, width = [], {}, 0

            def cols(term):
                nonlocal width
                f = term.factors[a]
                k = id(f)
                if k not in offsets:
                    offsets[k] = width
                    blocks.append(f)
                    width += 1 if f is None else f.shape[1]
                o = offsets[k]
                return [o] * term.rank if f is None else list(range(o, o + term.rank))

            ixs.append(np.asarray([i for t in x.terms for i in cols(t)]))
            iys.append(np.asarray([i for t in y.terms for i in cols(t)]))
            n = self.sizes[a]
            Us.append(jnp.concatenate(
                [jnp.ones((n, 1), self.dtype) if f is None else f for f in blocks], axis=1))
        cx = jnp.concatenate([t.coef for t in x.terms])
        cy = jnp.concatenate([t.coef for t in y.terms])
        self.stats.append(([int(U.shape[1]) for U in Us], int(cx.shape[0]), int(cy.shape[0])))
        args = (Us, list(self.weights), cx, cy)
        if jnp.dtype(self.dtype) != jnp.float32 or self.gram == "plain":
            return _plain_inner(*args, ixs, iys)
        return _accurate_inner(ixs, iys)(*args)


def _plain_inner(Us, weights, cx, cy, ixs, iys):
    """c_x^T (Hadamard_a G_a[ix_a, iy_a]) c_y in the array dtype (see `Grid.inner`)."""
    hadamard = None
    for U, w, ix, iy in zip(Us, weights, ixs, iys):
        Uw = U / U.shape[0] if w is None else U * w[:, None]
        G = Uw.T @ U
        g = G[ix][:, iy]
        hadamard = g if hadamard is None else hadamard * g
    return cx @ (hadamard @ cy)


def _accurate_inner(ixs, iys):
    """`_plain_inner` for float32 with ~2^-45 relative error in the terms (`methods.dfloat`).

    Cancellation: with a relative residual rho = |res| / sum_p |c_p| |x_p| the plain float32
    Gram sum is off by about eps / rho^2 of the loss, the dense float32 loss by eps / rho. Here
    each G_a is an error-free double-float matmul (Ozaki splitting), the Hadamard product and the
    coefficient products are double-float products, the R_x R_y-term sum an exact sum; uniform
    weights 1/N_a are applied once at the end, Gauss-Legendre weights are folded into one side
    (a rounding of one side is a perturbation of the data, not of the cancelling sum). Error
    against float64 arithmetic on the same float32 factors: ~2^-45 * (sum_p |c_p| |x_p|)^2.
    Derivatives (custom_jvp, so reverse mode and jvp-of-grad both work) are those of the plain
    float32 formula: its gradient is a contraction of the residual, not a difference of squares,
    and is as accurate as the dense loss's.
    """
    from . import dfloat as D

    def value(Us, weights, cx, cy):
        hadamard, scale = None, 1.0
        for U, w, ix, iy in zip(Us, weights, ixs, iys):
            if w is None:
                scale = scale / U.shape[0]
                hi, lo = D.gram(U)
            else:
                hi, lo = D.gram(U * w[:, None], U)
            g = (hi[ix][:, iy], lo[ix][:, iy])
            hadamard = g if hadamard is None else D.df_mul(hadamard, g)
        terms = D.df_mul(hadamard, D.two_prod(cx[:, None], cy[None, :]))
        hi, lo = D.exact_sum(terms[0])
        return (hi + (lo + jnp.sum(terms[1]))) * jnp.asarray(scale, cx.dtype)

    @jax.custom_jvp
    def inner(Us, weights, cx, cy):
        return value(Us, weights, cx, cy)

    @inner.defjvp
    def _jvp(primals, tangents):
        _, t = jax.jvp(lambda *a: _plain_inner(*a, ixs, iys), primals, tangents)
        return value(*primals), t

    return inner


class CPNamespace:
    """The ``xp`` handed to PDE code by `CPFields`: jnp-like functions on CP tensors."""

    pi = math.pi
    e = math.e

    def __init__(self, grid: Grid):
        self._grid = grid

    def __getattr__(self, name):
        if name.startswith("_"):
            raise AttributeError(name)
        if name in UNARY:
            fn = getattr(jnp, name)

            def apply(x, *args, **kwargs):
                if args or kwargs:
                    raise Unsupported(f"xp.{name} with extra arguments is not supported")
                if isinstance(x, CP):
                    return x._unary(name, fn)
                return fn(x)

            return apply
        raise Unsupported(
            f"xp.{name} is not expressible in the CP algebra "
            f"(available: arithmetic, ones_like, zeros_like, full_like, {', '.join(UNARY)})")

    def power(self, x, p):
        return x ** p

    def ones_like(self, x, *args, **kwargs):
        return self._grid.const(1.0) if isinstance(x, CP) else jnp.ones_like(x)

    def zeros_like(self, x, *args, **kwargs):
        return self._grid.const(0.0) if isinstance(x, CP) else jnp.zeros_like(x)

    def full_like(self, x, value, *args, **kwargs):
        return self._grid.const(value) if isinstance(x, CP) else jnp.full_like(x, value)

    def asarray(self, x, *args, **kwargs):
        if isinstance(x, CP) or _is_scalar(x):
            return x
        raise Unsupported("xp.asarray of a non-scalar array cannot enter a CP expression")
