"""Heat equation in (d+1) dimensions.

u_t = kappa * Δu on t in [0, 1], x in [0, 1]^d, with the exact solution
u*(t, x) = exp(-kappa c^2 t) * sum_i sin(c x_i); IC and Dirichlet BC are taken from u*.

With kappa = 1/4 and c = 2 this is the (4+1)-d heat problem of Dangel, Müller, Zeinhofer,
"Kronecker-Factored Approximate Curvature for Physics-Informed Neural Networks", NeurIPS 2024
(arXiv 2405.15603), appendix "(4+1)d heat equation": u* = exp(-t) sum_i sin(2 x_i).

``form = "product"`` is the separated mode u*(t, x) = exp(-kappa d c^2 t) prod_i sin(c x_i)
(Lap u* = -d c^2 u*); with c = pi its Dirichlet data vanish on every face of the cube, the
setting of a sine mollifier (pinnbench's leaderboard, where NSM runs in single-instance mode,
``methods/nsm.py``). The default ``"sum"`` is the KFAC paper's problem.
"""

from __future__ import annotations

from .base import PDE, SeparableTerm

FORMS = ("sum", "product")


class Heat(PDE):
    name = "heat"
    description = ("heat u_t = kappa*Lap(u) on [0,1]^(d+1), u* = exp(-kappa c^2 t) sum sin(c x_i) (KFAC-PINN K6); "
                   "form = product: exp(-kappa d c^2 t) prod sin(c x_i)")
    citation = "Dangel, Müller, Zeinhofer, NeurIPS 2024, arXiv 2405.15603, (4+1)-d heat"
    dims = None
    time_dependent = True
    defaults = {"kappa": 0.25, "c": 2.0, "form": "sum"}
    coefficients = {"kappa": "diffusivity"}

    def setup(self):
        self.kappa = float(self.params["kappa"])
        self.c = float(self.params["c"])
        self.form = self.params["form"]
        if self.form not in FORMS:
            raise ValueError(f"heat: form {self.form!r} is not valid (valid: {', '.join(FORMS)})")

    def bounds(self):
        return [(0.0, 1.0)] * (self.dim + 1)

    def residual(self, f):
        return f.dt() - self.coef("kappa") * f.lap()

    def exact(self, coords, xp):
        t, xs = coords[0], coords[1:]
        if self.form == "product":
            p = xp.sin(self.c * xs[0])
            for x in xs[1:]:
                p = p * xp.sin(self.c * x)
            return xp.exp(-self.kappa * self.dim * self.c**2 * t) * p
        s = xp.sin(self.c * xs[0])
        for x in xs[1:]:
            s = s + xp.sin(self.c * x)
        return xp.exp(-self.kappa * self.c**2 * t) * s

    def separable_source(self):
        return []

    def separable_exact(self):
        """u* as rank-one terms: exp(-k c^2 t) * sin(c x_i) * prod_{j != i} 1."""
        rate = self.kappa * self.c**2
        if self.form == "product":
            return [SeparableTerm(1.0, (lambda t, xp: xp.exp(-rate * self.dim * t),)
                                  + tuple(lambda x, xp: xp.sin(self.c * x) for _ in range(self.dim)))]
        terms = []
        for i in range(self.dim):
            factors = [lambda t, xp: xp.exp(-rate * t)]
            for j in range(self.dim):
                if j == i:
                    factors.append(lambda x, xp: xp.sin(self.c * x))
                else:
                    factors.append(lambda x, xp: xp.ones_like(x))
            terms.append(SeparableTerm(1.0, tuple(factors)))
        return terms
