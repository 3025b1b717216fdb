"""Log-Fokker-Planck equation in (d+1) dimensions (KFAC-PINN paper K7, d = 9 there).

q = log p for the Fokker-Planck equation p_t + ∇·(μ p) - ½ tr(σσᵀ ∇²p) = 0 with μ = -x/2 and
σ = √2 I. In q the equation reads

    q_t - d/2 - ½ ∇q·x - ‖∇q‖² - Δq = 0,   t in [0, 1], x in [-5, 5]^d,

with the exact solution q*(t, x) = log N(x; 0, s(t) I), s(t) = 2 - exp(-t), i.e.
q* = -(d/2) log(2π s) - ‖x‖² / (2 s). Only the initial condition is imposed (no boundary term),
as in the paper. Dangel, Müller, Zeinhofer, "Kronecker-Factored Approximate Curvature for
Physics-Informed Neural Networks", NeurIPS 2024 (arXiv 2405.15603), appendix "log-Fokker-Planck";
REFERENCES.md 1.2 K7 and 1.6 "log-fp(d+1)". The formula is dimension-generic.
"""

from __future__ import annotations

import math

from .base import PDE, Condition, SeparableTerm


class LogFokkerPlanck(PDE):
    name = "log-fokker-planck"
    description = ("log-Fokker-Planck q_t - d/2 - x.grad(q)/2 - |grad q|^2 - Lap(q) = 0 "
                   "on [0,1]x[-5,5]^d (KFAC K7)")
    citation = "Dangel, Müller, Zeinhofer, NeurIPS 2024, (9+1)-d log-Fokker-Planck"
    dims = None
    time_dependent = True
    defaults = {"half_width": 5.0}
    default_weights = {"res": 1.0, "ic": 1.0}

    def setup(self):
        self.L = float(self.params["half_width"])

    def bounds(self):
        return [(0.0, 1.0)] + [(-self.L, self.L)] * self.dim

    def exact(self, coords, xp):
        t, xs = coords[0], coords[1:]
        s = 2.0 - xp.exp(-t)
        r2 = xs[0] * xs[0]
        for x in xs[1:]:
            r2 = r2 + x * x
        return -0.5 * self.dim * xp.log(2.0 * math.pi * s) - r2 / (2.0 * s)

    def residual(self, f):
        g = f.grad()
        xs = f.xs()
        gx = g[0] * xs[0]
        gg = g[0] * g[0]
        for gi, x in zip(g[1:], xs[1:]):
            gx, gg = gx + gi * x, gg + gi * gi
        return f.dt() - 0.5 * self.dim - 0.5 * gx - gg - f.lap()

    def conditions(self):
        return [Condition("ic", "ic", 0, "lo")]

    def separable_exact(self):
        """q* as 2d rank-one terms: -½ log(2π s(t)) * 1 and -x_i² / (2 s(t)), per axis i."""
        one = lambda x, xp: xp.ones_like(x)  # noqa: E731
        sq = lambda x, xp: x * x  # noqa: E731
        log_term = lambda t, xp: -0.5 * xp.log(2.0 * math.pi * (2.0 - xp.exp(-t)))  # noqa: E731
        quad_term = lambda t, xp: -0.5 / (2.0 - xp.exp(-t))  # noqa: E731
        terms = []
        for i in range(self.dim):
            terms.append(SeparableTerm(1.0, (log_term,) + (one,) * self.dim))
            terms.append(SeparableTerm(1.0, (quad_term,) + tuple(sq if j == i else one
                                                                 for j in range(self.dim))))
        return terms
