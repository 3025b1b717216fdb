"""Spectral bases on [0, 1]: Fourier (periodic axes) and Chebyshev (non-periodic axes, time).

The Neural Spectral Method (Du, Chalapathi, Krishnapriyan, "Neural Spectral Methods:
Self-supervised learning in the spectral domain", ICLR 2024, arXiv 2312.05225, sec. 3 and
appendix A) represents every field by its coefficients in a tensor-product basis, differentiates
by acting on the coefficients, forms products on the collocation grid, and measures the residual
by the sum of its squared coefficients (Parseval). This module holds those pieces.

Conventions (REFERENCES.md 2.7)
-------------------------------
* ``Fourier(n)``: n grid points ``j/n`` (no endpoint); real storage, cosines first:
  ``[a_0, a_1, .., a_m, b_1, .., b_{n-1-m}]`` with ``m = n // 2`` and
  ``u(x) = sum_k a_k cos(2 pi k x) + sum_k b_k sin(2 pi k x)``. For even n the last cosine is
  the Nyquist mode, which has no sine partner. ``a_k`` is twice the real part of the
  forward-normalised ``rfft`` (non-DC modes), ``b_k`` minus twice the imaginary part.
* ``Chebyshev(n)``: Chebyshev-Gauss-Lobatto grid ``(1 + cos(pi j/(n-1)))/2`` (from 1 down to
  0) and ``u(x) = sum_k c_k T_k(2x - 1)``; the grid -> coefficient map is the DCT-I.
* Transforms are dense n x n matrices built once in float64 (numpy) and applied per axis. At the
  mode counts NSM uses (16-64 per axis) that costs O(n) per value instead of FFT's O(log n),
  is exact, differentiable and counted correctly by XLA's cost analysis.
* Parseval weights ``gamma``: with the normalised measures (uniform on [0,1) for Fourier, the
  Chebyshev weight normalised to mass 1 for Chebyshev) and the grid quadrature (grid mean for
  Fourier; Lobatto weights 1/(n-1), halved at the ends, for Chebyshev)
  ``sum_j w_j u(x_j)^2 == sum_k gamma_k c_k^2`` holds exactly for every grid function, with
  ``gamma = 1`` for the constant mode (and for the Nyquist cosine / the last Chebyshev mode)
  and ``1/2`` otherwise.

Coefficient arrays carry the basis axes just before a trailing channel axis:
``(*batch, n_1, .., n_d, C)``.
"""

from __future__ import annotations

from typing import Sequence

import jax.numpy as jnp
import numpy as np


class Basis1D:
    """One axis. Subclasses fill ``kind``, ``n``, ``nodes`` and the float64 matrices."""

    kind: str = ""
    periodic: bool = False

    def __init__(self, n: int):
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 2:
            raise ValueError(f"{type(self).__name__}: number of modes must be an integer >= 2, got {n!r}")
        self.n = int(n)
        self.nodes = self._nodes()
        self.to_grid = self.values(self.nodes)            # (n, n): grid values <- coefficients
        self.from_grid = np.linalg.inv(self.to_grid)       # (n, n): coefficients <- grid values
        self.gamma = self._gamma()
        self.quad = self._quad()                            # grid quadrature weights (sum 1)

    def values(self, x) -> np.ndarray:  # pragma: no cover - abstract
        """(len(x), n) basis-function values at points x (float64)."""
        raise NotImplementedError

    def values_xp(self, x, xp):  # pragma: no cover - abstract
        """The same in the array namespace ``xp`` (``jax.numpy``: traceable points)."""
        raise NotImplementedError

    def deriv_matrix(self, order: int = 1) -> np.ndarray:  # pragma: no cover - abstract
        """(n, n) matrix D with coef(u^(order)) = D @ coef(u), exact within the span."""
        raise NotImplementedError

    def _nodes(self):  # pragma: no cover - abstract
        raise NotImplementedError

    def _gamma(self):  # pragma: no cover - abstract
        raise NotImplementedError

    def _quad(self):  # pragma: no cover - abstract
        raise NotImplementedError

    def uniform(self, r: int) -> np.ndarray:
        """r uniform output points: no endpoint on a periodic axis, both ends otherwise."""
        return np.arange(r) / r if self.periodic else np.linspace(0.0, 1.0, r)

    def resize_index(self, n_new: int) -> tuple[np.ndarray, np.ndarray]:
        """Index pairs (src, dst) that copy shared modes when truncating or zero-padding."""
        raise NotImplementedError  # pragma: no cover


class Fourier(Basis1D):
    """Real Fourier series on [0, 1) (see module docstring for the storage)."""

    kind = "fourier"
    periodic = True

    @property
    def m(self) -> int:
        return self.n // 2

    @property
    def n_sin(self) -> int:
        return self.n - 1 - self.m

    def wavenumbers(self) -> tuple[np.ndarray, np.ndarray]:
        return np.arange(self.m + 1), np.arange(1, self.n_sin + 1)

    def _nodes(self):
        return np.arange(self.n) / self.n

    def values(self, x):
        return self.values_xp(np.asarray(x, np.float64), np)

    def values_xp(self, x, xp):
        kc, ks = self.wavenumbers()
        x = x.reshape(-1, 1)
        return xp.concatenate([xp.cos(2 * np.pi * kc * x), xp.sin(2 * np.pi * ks * x)], axis=1)

    def deriv_matrix(self, order: int = 1):
        kc, ks = self.wavenumbers()
        n, m = self.n, self.m
        D = np.zeros((n, n))
        if order == 0:
            return np.eye(n)
        if order % 2 == 0:
            sign = (-1) ** (order // 2)
            D[np.arange(m + 1), np.arange(m + 1)] = sign * (2 * np.pi * kc) ** order
            s = m + 1 + np.arange(self.n_sin)
            D[s, s] = sign * (2 * np.pi * ks) ** order
            return D
        # odd: cos_k -> -+(2 pi k)^o sin_k and sin_k -> +-(2 pi k)^o cos_k; the Nyquist cosine
        # (even n) differentiates into a sine the grid cannot hold, so that entry is dropped.
        sign = (-1) ** ((order - 1) // 2)
        for j, k in enumerate(ks):
            w = (2 * np.pi * k) ** order
            D[m + 1 + j, k] = -sign * w   # d cos_k -> sin_k
            D[k, m + 1 + j] = sign * w    # d sin_k -> cos_k
        return D

    def _gamma(self):
        g = np.full(self.n, 0.5)
        g[0] = 1.0
        if self.n % 2 == 0:
            g[self.m] = 1.0  # Nyquist cosine: cos^2 = 1 on the grid
        return g

    def _quad(self):
        return np.full(self.n, 1.0 / self.n)

    def labels(self) -> list[tuple[str, int]]:
        kc, ks = self.wavenumbers()
        return [("cos", int(k)) for k in kc] + [("sin", int(k)) for k in ks]

    def resize_index(self, n_new: int):
        new = Fourier(n_new).labels()
        pos = {lab: i for i, lab in enumerate(new)}
        src, dst = [], []
        for i, lab in enumerate(self.labels()):
            if lab in pos:
                src.append(i)
                dst.append(pos[lab])
        return np.array(src), np.array(dst)


class Chebyshev(Basis1D):
    """Chebyshev series T_k(2x - 1) on [0, 1] on the Gauss-Lobatto grid."""

    kind = "chebyshev"
    periodic = False

    def _nodes(self):
        return (1.0 + np.cos(np.pi * np.arange(self.n) / (self.n - 1))) / 2.0

    def values(self, x):
        return self.values_xp(np.asarray(x, np.float64), np)

    def values_xp(self, x, xp):
        xi = 2.0 * x.reshape(-1) - 1.0
        cols = [xp.ones_like(xi), xi]
        for _ in range(2, self.n):
            cols.append(2.0 * xi * cols[-1] - cols[-2])
        return xp.stack(cols[: self.n], axis=1)

    def deriv_matrix(self, order: int = 1):
        """Derivative by the recurrence c'_{k-1} = c'_{k+1} + 2k c_k (times 2 for [0, 1])."""
        n = self.n
        D1 = np.zeros((n, n))
        for i in range(n):
            for k in range(i + 1, n, 2):
                D1[i, k] = 2.0 * k
            if i == 0:
                D1[i] /= 2.0
        D1 *= 2.0  # d/dx = 2 d/dxi
        return np.linalg.matrix_power(D1, order)

    def _gamma(self):
        g = np.full(self.n, 0.5)
        g[0] = g[-1] = 1.0
        return g

    def _quad(self):
        w = np.full(self.n, 1.0 / (self.n - 1))
        w[0] = w[-1] = 0.5 / (self.n - 1)
        return w

    def resize_index(self, n_new: int):
        k = np.arange(min(self.n, n_new))
        return k, k


BASES = {"fourier": Fourier, "chebyshev": Chebyshev}


def make(kind: str, n: int) -> Basis1D:
    if kind not in BASES:
        raise ValueError(f"unknown basis {kind!r} (valid: {', '.join(BASES)})")
    return BASES[kind](n)


def apply_axis(M, x, axis: int):
    """Contract matrix ``M`` (r, n) with axis ``axis`` of ``x`` (length n) -> length r there."""
    return jnp.moveaxis(jnp.tensordot(M, x, axes=([1], [axis])), 0, axis)


class TensorBasis:
    """Tensor product of 1-d bases; fields are ``(*batch, n_1, .., n_d, C)`` arrays."""

    def __init__(self, bases: Sequence[Basis1D], dtype=jnp.float32):
        self.bases = list(bases)
        self.dtype = dtype
        self.d = len(self.bases)
        c = lambda a: jnp.asarray(a, dtype)  # noqa: E731
        self._to = [c(b.to_grid) for b in self.bases]
        self._from = [c(b.from_grid) for b in self.bases]
        self._deriv: dict = {}

    @property
    def modes(self) -> tuple[int, ...]:
        return tuple(b.n for b in self.bases)

    def _ax(self, a: int) -> int:
        return a - self.d - 1  # basis axes sit before the trailing channel axis

    def to_grid(self, coef):
        for a, M in enumerate(self._to):
            coef = apply_axis(M, coef, self._ax(a))
        return coef

    def from_grid(self, vals):
        for a, M in enumerate(self._from):
            vals = apply_axis(M, vals, self._ax(a))
        return vals

    def deriv(self, coef, axis: int, order: int = 1):
        key = (axis, order)
        if key not in self._deriv:  # numpy, so a cache filled inside a trace holds no tracer
            self._deriv[key] = self.bases[axis].deriv_matrix(order).astype(np.dtype(self.dtype))
        return apply_axis(self._deriv[key], coef, self._ax(axis))

    def grid(self) -> list[np.ndarray]:
        return [b.nodes for b in self.bases]

    def grid_coords(self, xp=jnp) -> list:
        """Broadcastable node coordinates, one ``(1, .., n_a, .., 1)`` slab per axis."""
        out = []
        for a, b in enumerate(self.bases):
            shape = [1] * self.d
            shape[a] = b.n
            out.append(xp.asarray(b.nodes.reshape(shape), self.dtype))
        return out

    def gamma(self):
        """Tensor-product Parseval weights, shape (n_1, .., n_d)."""
        g = np.ones(())
        for b in self.bases:
            g = np.multiply.outer(g, b.gamma)
        return jnp.asarray(g, self.dtype)

    def quad(self):
        """Tensor-product grid quadrature weights, shape (n_1, .., n_d), summing to 1."""
        w = np.ones(())
        for b in self.bases:
            w = np.multiply.outer(w, b.quad)
        return jnp.asarray(w, self.dtype)

    def eval_matrices(self, points_per_axis: Sequence) -> list:
        return [jnp.asarray(b.values(p), self.dtype) for b, p in zip(self.bases, points_per_axis)]

    def evaluate(self, coef, points_per_axis: Sequence = None, mats: list | None = None):
        """Values on the tensor grid of the given 1-d point sets: sum_k c_k phi_k(x)."""
        mats = mats if mats is not None else self.eval_matrices(points_per_axis)
        for a, M in enumerate(mats):
            coef = apply_axis(M, coef, self._ax(a))
        return coef

    def evaluate_points(self, coef, X):
        """Values at scattered points ``X`` (p, d) for coefficients (n_1..n_d, C) -> (p, C)."""
        X = jnp.asarray(X, self.dtype)  # traceable: predict is jitted by the harness
        rows = [b.values_xp(X[:, a], jnp) for a, b in enumerate(self.bases)]
        letters = "abcdefgh"[: self.d]
        spec = ",".join(f"p{ch}" for ch in letters) + f",{letters}z->pz"
        return jnp.einsum(spec, *rows, coef)

    def resize(self, coef, modes: Sequence[int]):
        """Truncate or zero-pad coefficients to ``modes`` (shared modes are copied)."""
        for a, (b, n_new) in enumerate(zip(self.bases, modes)):
            if b.n == n_new:
                continue
            src, dst = b.resize_index(n_new)
            ax = coef.ndim + self._ax(a)
            shape = list(coef.shape)
            shape[ax] = n_new
            out = jnp.zeros(shape, coef.dtype)
            idx_dst = [slice(None)] * coef.ndim
            idx_src = [slice(None)] * coef.ndim
            idx_dst[ax], idx_src[ax] = dst, src
            coef = out.at[tuple(idx_dst)].set(coef[tuple(idx_src)])
        return coef

    def value_at_origin(self, coef):
        """u(0, .., 0) per channel: one row of basis values per axis."""
        return self.evaluate(coef, [np.zeros(1)] * self.d)


def periodic_kernel_sqrt(n: int, length: float) -> np.ndarray:
    """Symmetric square root of the 1-d periodic-kernel Gram matrix on the grid j/n.

    Kernel exp(-sin^2(pi (x - y)) / (2 l^2)) (the NSM repo's ``Gaussian.Per``, per axis); the
    d-dimensional kernel is the product over axes, so a sample is ``A z A^T`` (2-d) and in
    general ``z`` contracted with ``A`` on every axis. Eigenvalues below zero (round-off) are
    clipped.
    """
    x = np.arange(n) / n
    K = np.exp(-np.sin(np.pi * (x[:, None] - x[None, :])) ** 2 / (2.0 * length**2))
    lam, U = np.linalg.eigh(K)
    return (U * np.sqrt(np.clip(lam, 0.0, None))) @ U.T


def check_modes(modes, what: str = "modes") -> None:
    for n in modes:
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 2:
            raise ValueError(f"{what} must be integers >= 2, got {list(modes)!r}")


__all__ = ["Basis1D", "Fourier", "Chebyshev", "TensorBasis", "make", "apply_axis",
           "periodic_kernel_sqrt", "check_modes"]
