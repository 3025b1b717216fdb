"""Parametric PDEs for operator learning, and the periodic Poisson problem of the NSM paper.

Du, Chalapathi, Krishnapriyan, "Neural Spectral Methods: Self-supervised learning in the
spectral domain", ICLR 2024 (arXiv 2312.05225), sec. 4.1 "Poisson equation", periodic case
(REFERENCES.md 1.3, N1):

    -Lap u = s on the torus [0, 1)^d,   u(0) = 0,

with the source ``s`` drawn from a zero-mean Gaussian process with the periodic kernel
``exp(-sum_i sin^2(pi (x_i - y_i)) / (2 l^2))``, l = 0.2, sampled on a ``res^d`` grid (res = 16)
and taken as its trigonometric interpolant; the grid mean is subtracted so the problem is
solvable. The solution is exact in Fourier space, ``u_k = s_k / (4 pi^2 |k|^2)``, so the
reference is computed here with numpy FFTs and the periodic-sinc interpolant, independently of
the method's basis code.

A *parametric* PDE is a family: the learner maps an input function phi (a source or an initial
condition) to the solution, trained on fresh GP draws and tested on held-out draws. Such PDEs
subclass ``pdes.base.ParametricPDE`` (``parametric = True``: pointwise PINN methods refuse
them) and provide, beyond `PDE`:

* ``basis_kinds()``: "fourier" or "chebyshev" per input axis (time first), the basis that fits
  the domain;
* ``input_grid()``: the (kind, n) grid per input axis on which phi is sampled;
* ``sample_inputs(key, batch, dtype)``: phi on that grid, ``(batch, *grid)`` (jax, jittable);
* ``output_transform``: the mollifier that enforces the BC/IC exactly ("periodic", "initial");
* ``residual(f)`` written with the fields vocabulary plus ``f.phi`` (phi's values at the
  fields' points);
* ``reference(phi, axes)``: numpy reference solutions on the tensor grid of the 1-d point sets
  ``axes``; ``eval_axes()``: the evaluation grid; ``test_inputs()``: the held-out inputs.
"""

from __future__ import annotations

import numpy as np

from .base import PDE, ParametricPDE  # noqa: F401 (ParametricPDE re-exported)


def periodic_gp_factor(n: int, length: float) -> np.ndarray:
    """Symmetric square root A of the periodic-kernel Gram matrix on the 1-d grid j/n.

    The d-dimensional kernel is a product over axes, so contracting i.i.d. normals with A on
    every axis samples the GP on the tensor grid (the NSM repo's ``Gaussian.Per`` kernel).
    """
    x = np.arange(n) / n
    K = np.exp(-np.sin(np.pi * (x[:, None] - x[None, :])) ** 2 / (2.0 * length**2))
    lam, U = np.linalg.eigh(K)
    return (U * np.sqrt(np.clip(lam, 0.0, None))) @ U.T


def periodic_sinc_matrix(n: int, x) -> np.ndarray:
    """(len(x), n) matrix mapping values on the grid j/n to the trigonometric interpolant at x.

    Periodic sinc (Dirichlet kernel); for even n the Nyquist mode is the cosine, the
    convention of a real trigonometric interpolant. Computed from the explicit sum so that it
    does not share code with the method's transforms.
    """
    x = np.asarray(x, np.float64).reshape(-1, 1)
    y = x - np.arange(n)[None, :] / n
    m = n // 2
    out = np.ones_like(y)
    for k in range(1, m + 1):
        w = 1.0 if (n % 2 == 0 and k == m) else 2.0
        out = out + w * np.cos(2 * np.pi * k * y)
    return out / n


class NsmPoisson(ParametricPDE):
    name = "nsm-poisson"
    description = ("periodic Poisson -Lap u = s on [0,1)^d, u(0) = 0, s ~ periodic GP "
                   "(NSM N1; operator learning)")
    citation = "Du, Chalapathi, Krishnapriyan, ICLR 2024, arXiv 2312.05225, sec. 4.1 (periodic)"
    dims = None
    time_dependent = False
    output_transform = "periodic"
    defaults = {"res": 16, "length": 0.2, "n_test": 32, "test_seed": 0, "eval_res": 64}

    def setup(self):
        for k in ("res", "n_test", "eval_res"):
            v = self.params[k]
            if isinstance(v, bool) or not isinstance(v, int) or v < 2:
                raise ValueError(f"nsm-poisson: {k} = {v!r} must be an integer >= 2")
        if not float(self.params["length"]) > 0:
            raise ValueError(f"nsm-poisson: length = {self.params['length']!r} must be positive")
        self.res = int(self.params["res"])
        self.A = periodic_gp_factor(self.res, float(self.params["length"]))

    def bounds(self):
        return [(0.0, 1.0)] * self.dim

    def basis_kinds(self):
        return ["fourier"] * self.dim

    def input_grid(self):
        return [("fourier", self.res)] * self.dim

    def sample_inputs(self, key, batch, dtype):
        import jax
        import jax.numpy as jnp

        A = jnp.asarray(self.A, dtype)
        s = jax.random.normal(key, (batch,) + (self.res,) * self.dim, dtype)
        for a in range(1, self.dim + 1):
            s = jnp.moveaxis(jnp.tensordot(A, s, axes=([1], [a])), 0, a)
        axes = tuple(range(1, self.dim + 1))
        return s - s.mean(axis=axes, keepdims=True)

    def residual(self, f):
        return f.lap() + f.phi

    def solve_grid(self, s: np.ndarray) -> np.ndarray:
        """Exact solution on the source's own grid: FFT, divide by 4 pi^2 |k|^2, pin u(0)."""
        n, d = self.res, self.dim
        axes = tuple(range(1, d + 1))
        sh = np.fft.fftn(s, axes=axes)
        k = np.fft.fftfreq(n, 1.0 / n)
        k2 = np.zeros((n,) * d)
        for a in range(d):
            shape = [1] * d
            shape[a] = n
            k2 = k2 + (k.reshape(shape)) ** 2
        k2[(0,) * d] = 1.0
        uh = sh / (4 * np.pi**2 * k2)
        uh[(slice(None),) + (0,) * d] = 0.0
        u = np.real(np.fft.ifftn(uh, axes=axes))
        return u - u[(slice(None),) + (0,) * d][(...,) + (None,) * d]

    def reference(self, phi, axes):
        u = self.solve_grid(np.asarray(phi, np.float64))
        for a, x in enumerate(axes):
            P = periodic_sinc_matrix(self.res, x)
            u = np.moveaxis(np.tensordot(P, u, axes=([1], [a + 1])), 0, a + 1)
        return u

    def eval_axes(self):
        r = int(self.params["eval_res"])
        return [np.arange(r) / r] * self.dim
