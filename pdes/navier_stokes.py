"""Incompressible Navier-Stokes in (2+1) and (3+1) dimensions, the SPINN paper's S5 and S6.

Cho et al., "Separable Physics-Informed Neural Networks", NeurIPS 2023 (arXiv 2306.15969),
(2+1)-d and (3+1)-d Navier-Stokes experiments; REFERENCES.md 1.1 S5/S6 and 1.5. The network
outputs the velocity (``n_out = dim``); the vorticity is taken from it by differentiation, as in
the paper.

dim = 2 (S5, velocity-vorticity form), on t in [0, T], (x, y) in [0, 2π]²::

    w = v_x - u_y,  R_w = w_t + u w_x + v w_y - ν Δw,  R_c = u_x + v_y,  ν = 0.01.

  The paper's reference data (the causal-PINN ``w_data.mat``) is not redistributable, so
  pinnbench uses the analytic Taylor-Green vortex instead: u = cos(κx) sin(κy) F,
  v = -sin(κx) cos(κy) F, w = -2κ cos(κx) cos(κy) F, F = exp(-2νκ² t) (κ = 1 by default, T = 1).
  It solves the same equations exactly (its advection term vanishes identically, so it is an
  easy instance). The paper enforces periodicity through a Fourier input embedding and has no
  BC loss; pinnbench's methods have no such embedding, so the periodic box is treated as a
  plain box with Dirichlet data u, v = exact on its faces (group ``bc``, weighted like the IC).
  Loss weights follow the paper: λ_c = 5000 (applied as √λ_c · R_c in the residual tuple) and
  λ_ic = 1e4 on MSE(u0) + MSE(v0) + MSE(w0).

dim = 3 (S6, vorticity form), on t in [0, 5], x in [0, 2π]³, ν = 0.05::

    ω = ∇×u,  R = ω_t + (u·∇)ω - (ω·∇)u - ν Δω - f,  plus √λ_c ∇·u with λ_c = 100,

  with the paper's manufactured solution (E = exp(-9νt))
  u* = E (2 cos2x sin2y sin z, -sin2x cos2y sin z, -2 sin2x sin2y cos z) and
  f = exp(-18νt) (-6 sin4y sin2z, -6 sin4x sin2z, 6 sin4x sin4y). IC on u and ω with
  λ_ic = 10; Dirichlet u = u* on the six faces of the box (the paper's "boundary" planes sit at
  ±1, inside the domain: not copied).

Error (both dims): the mean over velocity components of the per-component rel. L2, the paper's
S6 definition (the paper's S5 error is the vorticity rel. L2, which needs derivatives of the
prediction; pinnbench reports velocity errors for S5 and says so in ``error_definition``).
"""

from __future__ import annotations

import math

from .base import PDE, Condition, SeparableTerm


class NavierStokes(PDE):
    name = "navier-stokes"
    description = ("incompressible Navier-Stokes on [0,2pi]^d: d=2 velocity-vorticity Taylor-Green "
                   "(SPINN S5 stand-in), d=3 vorticity form, manufactured u* (SPINN S6)")
    citation = "Cho et al., SPINN, NeurIPS 2023, (2+1)-d and (3+1)-d Navier-Stokes"
    dims = (2, 3)
    time_dependent = True
    n_out = 2
    #: per dim: nu, t_max, lambda_c, lambda_ic (paper values)
    PAPER = {2: (0.01, 1.0, 5000.0, 1e4), 3: (0.05, 5.0, 100.0, 10.0)}
    defaults = {"nu": None, "t_max": None, "kappa": 1}  # None: the paper value for the dim
    error_definition = "mean over velocity components of rel. L2 (rel_l2); rel_l2_joint over all"

    def setup(self):
        nu, t_max, lam_c, lam_ic = self.PAPER[self.dim]
        self.nu = nu if self.params["nu"] is None else float(self.params["nu"])
        self.t_max = t_max if self.params["t_max"] is None else float(self.params["t_max"])
        self.params["nu"], self.params["t_max"] = self.nu, self.t_max
        self.kappa = self.params["kappa"]
        if self.dim == 3 and self.kappa != 1:
            raise ValueError(f"navier-stokes: kappa applies to dim 2 only (got {self.kappa!r} at dim 3)")
        self.n_out = self.dim
        self.sqrt_lam_c = math.sqrt(lam_c)
        self.weights = {"res": 1.0, "ic": lam_ic, "bc": lam_ic if self.dim == 2 else 1.0}

    def bounds(self):
        return [(0.0, self.t_max)] + [(0.0, 2.0 * math.pi)] * self.dim

    # -- exact solutions ------------------------------------------------------------------------
    def exact(self, coords, xp):
        if self.dim == 2:
            t, x, y = coords
            k, F = self.kappa, xp.exp(-2.0 * self.nu * self.kappa**2 * t)
            return (xp.cos(k * x) * xp.sin(k * y) * F, -xp.sin(k * x) * xp.cos(k * y) * F)
        t, x, y, z = coords
        E = xp.exp(-9.0 * self.nu * t)
        return (2.0 * E * xp.cos(2 * x) * xp.sin(2 * y) * xp.sin(z),
                -E * xp.sin(2 * x) * xp.cos(2 * y) * xp.sin(z),
                -2.0 * E * xp.sin(2 * x) * xp.sin(2 * y) * xp.cos(z))

    def exact_vorticity(self, coords, xp):
        if self.dim == 2:
            t, x, y = coords
            k = self.kappa
            return -2.0 * k * xp.cos(k * x) * xp.cos(k * y) * xp.exp(-2.0 * self.nu * k**2 * t)
        t, x, y, z = coords
        E = xp.exp(-9.0 * self.nu * t)
        return (-3.0 * E * xp.sin(2 * x) * xp.cos(2 * y) * xp.cos(z),
                6.0 * E * xp.cos(2 * x) * xp.sin(2 * y) * xp.cos(z),
                -6.0 * E * xp.cos(2 * x) * xp.cos(2 * y) * xp.sin(z))

    def forcing(self, coords, xp):
        t, x, y, z = coords
        G = xp.exp(-18.0 * self.nu * t)
        return (-6.0 * G * xp.sin(4 * y) * xp.sin(2 * z),
                -6.0 * G * xp.sin(4 * x) * xp.sin(2 * z),
                6.0 * G * xp.sin(4 * x) * xp.sin(4 * y))

    # -- vorticity from velocity derivatives ---------------------------------------------------
    def _vort(self, f, i: int, extra: tuple = ()):
        """Partial derivative along input axes ``extra`` of vorticity component i (d = 3), or of
        the scalar vorticity (d = 2, i ignored)."""
        if self.dim == 2:
            return f.partial((1,) + extra, 1) - f.partial((2,) + extra, 0)
        j, k = (i + 1) % 3, (i + 2) % 3
        return f.partial((1 + j,) + extra, k) - f.partial((1 + k,) + extra, j)

    def _div(self, f):
        out = f.partial((1,), 0)
        for i in range(1, self.dim):
            out = out + f.partial((1 + i,), i)
        return out

    def residual(self, f):
        X = range(1, self.dim + 1)  # spatial input axes
        if self.dim == 2:
            u, v = f.u(0), f.u(1)
            rw = (self._vort(f, 0, (0,)) + u * self._vort(f, 0, (1,)) + v * self._vort(f, 0, (2,))
                  - self.nu * sum(self._vort(f, 0, (a, a)) for a in X))
            return rw, self.sqrt_lam_c * self._div(f)
        us = [f.u(c) for c in range(3)]
        ws = [self._vort(f, i) for i in range(3)]
        fs = self.forcing(f.coords, f.xp)
        out = []
        for i in range(3):
            r = self._vort(f, i, (0,)) - fs[i] - self.nu * sum(self._vort(f, i, (a, a)) for a in X)
            for j in range(3):
                r = r + us[j] * self._vort(f, i, (1 + j,)) - ws[j] * f.partial((1 + j,), i)
            out.append(r)
        return (*out, self.sqrt_lam_c * self._div(f))

    # -- conditions ----------------------------------------------------------------------------
    def conditions(self):
        out = [Condition("ic", "ic", 0, "lo", residual=self._ic_residual)]
        for i in range(self.dim):
            for side in ("lo", "hi"):
                out.append(Condition(f"bc_x{i}_{side}", "bc", i + 1, side))
        return out

    def _ic_residual(self, f):
        ex = self.exact(f.coords, f.xp)
        wx = self.exact_vorticity(f.coords, f.xp)
        vel = tuple(f.u(c) - ex[c] for c in range(self.dim))
        if self.dim == 2:
            return (*vel, self._vort(f, 0) - wx)
        return (*vel, *(self._vort(f, i) - wx[i] for i in range(3)))

    # -- error and separable form --------------------------------------------------------------
    def errors(self, pred, exact, xp) -> dict:
        """Mean over components of the per-component rel. L2 (the paper's S6 definition)."""
        rels = [xp.linalg.norm(pred[:, c] - exact[:, c]) / xp.linalg.norm(exact[:, c])
                for c in range(self.n_out)]
        out = {f"rel_l2_c{c}": float(r) for c, r in enumerate(rels)}
        out["rel_l2_joint"] = float(xp.linalg.norm(pred - exact) / xp.linalg.norm(exact))
        out["rel_l2"] = sum(out[f"rel_l2_c{c}"] for c in range(self.n_out)) / self.n_out
        return out

    def separable_exact(self):
        """Each velocity component of u* is one rank-one term (a tuple of per-component lists)."""
        if self.dim == 2:
            k, rate = self.kappa, 2.0 * self.nu * self.kappa**2
            F = lambda t, xp: xp.exp(-rate * t)  # noqa: E731
            return ([SeparableTerm(1.0, (F, lambda x, xp: xp.cos(k * x), lambda y, xp: xp.sin(k * y)))],
                    [SeparableTerm(-1.0, (F, lambda x, xp: xp.sin(k * x), lambda y, xp: xp.cos(k * y)))])
        E = lambda t, xp: xp.exp(-9.0 * self.nu * t)  # noqa: E731
        s2 = lambda x, xp: xp.sin(2 * x)  # noqa: E731
        c2 = lambda x, xp: xp.cos(2 * x)  # noqa: E731
        s1 = lambda x, xp: xp.sin(x)  # noqa: E731
        c1 = lambda x, xp: xp.cos(x)  # noqa: E731
        return ([SeparableTerm(2.0, (E, c2, s2, s1))],
                [SeparableTerm(-1.0, (E, s2, c2, s1))],
                [SeparableTerm(-2.0, (E, s2, s2, c1))])
