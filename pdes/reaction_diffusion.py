"""Reaction-diffusion (Fisher-KPP) as a parametric family: initial condition -> solution.

Du, Chalapathi, Krishnapriyan, ICLR 2024 (arXiv 2312.05225), sec. 4.2 "Reaction-diffusion"
(REFERENCES.md 1.3, N3):

    u_t - nu u_xx = rho u (1 - u),   x in [0, 1) periodic,  t in [0, 1],  u(0, x) = phi(x),

rho = 5, nu in {0.005, 0.01, 0.05, 0.1}. phi is a periodic-kernel GP (l = 0.2) sampled on a
``res``-point grid (res = 64), min-max scaled to [0, 1] per instance, and taken as its
trigonometric interpolant. Basis: Chebyshev in t, Fourier in x. There is no closed form: the
reference is this module's own numpy solver, Strang splitting (half reaction step with the exact
logistic flow, full diffusion step exact in Fourier space, half reaction step): second order in
dt, spectral in x (the test suite checks the convergence order). The paper's reference uses
operator splitting at nx = 4096, nt = 4097.
"""

from __future__ import annotations

import numpy as np

from .base import ParametricPDE
from .nsm_poisson import periodic_gp_factor, periodic_sinc_matrix


def logistic_flow(u, rho: float, dt: float):
    """Exact solution of u' = rho u (1 - u) after time dt."""
    e = np.exp(rho * dt)
    return u * e / (1.0 + u * (e - 1.0))


def strang_solve(u0: np.ndarray, nu: float, rho: float, times, n_steps: int) -> np.ndarray:
    """Solve on the periodic grid of u0 (..., nx) from t = 0; return (..., len(times), nx).

    ``times`` must be multiples of 1/n_steps (dt = 1/n_steps over t in [0, 1]).
    """
    u = np.array(u0, np.float64)
    nx = u.shape[-1]
    dt = 1.0 / n_steps
    k = np.fft.rfftfreq(nx, 1.0 / nx)
    decay = np.exp(-nu * (2 * np.pi * k) ** 2 * dt)
    targets = []
    for t in times:
        s = round(float(t) * n_steps)
        if abs(s - float(t) * n_steps) > 1e-9 or not 0 <= s <= n_steps:
            raise ValueError(f"time {t} is not a multiple of dt = 1/{n_steps} in [0, 1]")
        targets.append(s)
    out = {0: u.copy()}
    for step in range(1, max(targets) + 1):
        u = logistic_flow(u, rho, dt / 2)
        u = np.fft.irfft(np.fft.rfft(u, axis=-1) * decay, n=nx, axis=-1)
        u = logistic_flow(u, rho, dt / 2)
        if step in targets:
            out[step] = u.copy()
    return np.stack([out[s] for s in targets], axis=-2)


class ReactionDiffusion(ParametricPDE):
    name = "nsm-reaction"
    description = ("reaction-diffusion u_t - nu u_xx = rho u(1-u), periodic x, u0 ~ GP in [0,1] "
                   "(NSM N3; operator learning)")
    citation = "Du, Chalapathi, Krishnapriyan, ICLR 2024, arXiv 2312.05225, sec. 4.2"
    dims = (1,)
    time_dependent = True
    output_transform = "initial"
    defaults = {"nu": 0.01, "rho": 5.0, "res": 64, "length": 0.2, "n_test": 32, "test_seed": 0,
                "eval_nt": 33, "eval_nx": 64, "solver_nx": 256, "solver_steps": 2048}

    def setup(self):
        for k in ("res", "n_test", "eval_nt", "eval_nx", "solver_nx", "solver_steps"):
            v = self.params[k]
            if isinstance(v, bool) or not isinstance(v, int) or v < 2:
                raise ValueError(f"nsm-reaction: {k} = {v!r} must be an integer >= 2")
        for k in ("nu", "rho", "length"):
            v = self.params[k]
            if isinstance(v, bool) or not isinstance(v, (int, float)) or v < 0:
                raise ValueError(f"nsm-reaction: {k} = {v!r} must be a non-negative number")
        p = self.params
        if p["solver_nx"] % p["eval_nx"]:
            raise ValueError(f"nsm-reaction: solver_nx = {p['solver_nx']} must be a multiple of "
                             f"eval_nx = {p['eval_nx']}")
        if p["solver_steps"] % (p["eval_nt"] - 1):
            raise ValueError(f"nsm-reaction: solver_steps = {p['solver_steps']} must be a "
                             f"multiple of eval_nt - 1 = {p['eval_nt'] - 1}")
        self.nu, self.rho = float(p["nu"]), float(p["rho"])
        self.res = int(p["res"])
        self.A = periodic_gp_factor(self.res, float(p["length"]))

    def bounds(self):
        return [(0.0, 1.0), (0.0, 1.0)]

    def basis_kinds(self):
        return ["chebyshev", "fourier"]

    def input_grid(self):
        # phi is constant in t: two Chebyshev nodes (t = 1, t = 0) holding the same values
        return [("chebyshev", 2), ("fourier", self.res)]

    def sample_inputs(self, key, batch, dtype):
        import jax
        import jax.numpy as jnp

        z = jax.random.normal(key, (batch, self.res), dtype)
        u = z @ jnp.asarray(self.A, dtype).T
        lo = u.min(axis=-1, keepdims=True)
        hi = u.max(axis=-1, keepdims=True)
        u = (u - lo) / (hi - lo)
        return jnp.broadcast_to(u[:, None, :], (batch, 2, self.res))

    def residual(self, f):
        u = f.u()
        return f.dt() - self.nu * f.d(0, 2) - self.rho * u * (1.0 - u)

    def reference(self, phi, axes):
        """Reference on the tensor grid ``axes = [t_points, x_points]`` (uniform; see eval_axes)."""
        p = self.params
        t, x = (np.asarray(a, np.float64) for a in axes)
        u0 = np.asarray(phi, np.float64)[:, 0, :]
        nx = int(p["solver_nx"])
        u0f = u0 @ periodic_sinc_matrix(self.res, np.arange(nx) / nx).T
        u = strang_solve(u0f, self.nu, self.rho, t, int(p["solver_steps"]))
        # x points must lie on the solver grid
        idx = np.rint(x * nx).astype(int)
        if np.max(np.abs(idx / nx - x)) > 1e-12:
            raise ValueError("nsm-reaction: reference x points must lie on the solver grid")
        return u[..., idx % nx]

    def eval_axes(self):
        p = self.params
        return [np.linspace(0.0, 1.0, int(p["eval_nt"])), np.arange(p["eval_nx"]) / p["eval_nx"]]
