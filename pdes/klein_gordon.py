"""Klein-Gordon equation in (d+1) dimensions (SPINN paper S3 for d = 2, S4 for d = 3).

u_tt - Δu + u² = f on t in [0, 10], x in [-1, 1]^d, with the exact solution
u*(t, x) = (sum_i x_i) cos(k t) + (prod_i x_i) sin(k t) and f = u*² - k² u* (Δu* = 0 because
both terms are multilinear). IC u(0, x) = sum_i x_i; Dirichlet BC u = u* on every spatial face.

Cho et al., "Separable Physics-Informed Neural Networks", NeurIPS 2023 (arXiv 2306.15969),
(2+1)-d and (3+1)-d Klein-Gordon experiments; REFERENCES.md 1.1 S3/S4 and 1.6
"klein-gordon(d+1)". The nonlinearity is u² (not u³), as in the paper's code.

Two deliberate choices, both recorded in the PDE params of every record:

* ``k`` is one number for every method (default 2, the (2+1)-d value). The paper's (3+1)-d
  scripts use k = 2 for the PINN and k = 1 for the SPINN (REFERENCES.md S4); pinnbench does not.
* ``ut_ic`` (default False, matching the paper) adds the second initial condition
  u_t(0, x) = k prod_i x_i as its own loss group ``ic_t``. Without it the problem is second order
  in time with one IC (under-determined), although u* still satisfies everything imposed.
"""

from __future__ import annotations

from .base import PDE, Condition, SeparableTerm


class KleinGordon(PDE):
    name = "klein-gordon"
    description = ("Klein-Gordon u_tt - Lap(u) + u^2 = f on [0,10]x[-1,1]^d, "
                   "u* = sum(x)cos(kt) + prod(x)sin(kt) (SPINN S3/S4)")
    citation = "Cho et al., SPINN, NeurIPS 2023, (2+1)-d and (3+1)-d Klein-Gordon"
    dims = None
    time_dependent = True
    defaults = {"k": 2.0, "ut_ic": False, "t_max": 10.0}
    default_weights = {"res": 1.0, "ic": 1.0, "ic_t": 1.0, "bc": 1.0}
    #: u_tt - alpha Lap(u) + gamma u^2 = f with alpha = gamma = 1 (inverse mode may learn them)
    coefficients = {"alpha": "Laplacian coefficient (1)", "gamma": "coefficient of u^2 (1)"}
    alpha = 1.0
    gamma = 1.0

    def setup(self):
        if not isinstance(self.params["ut_ic"], bool):
            raise ValueError(f"klein-gordon: ut_ic must be true or false, got {self.params['ut_ic']!r}")
        self.k = float(self.params["k"])
        self.t_max = float(self.params["t_max"])

    def bounds(self):
        return [(0.0, self.t_max)] + [(-1.0, 1.0)] * self.dim

    @staticmethod
    def _sum_prod(xs):
        s, p = xs[0], xs[0]
        for x in xs[1:]:
            s, p = s + x, p * x
        return s, p

    def exact(self, coords, xp):
        t = coords[0]
        s, p = self._sum_prod(coords[1:])
        return s * xp.cos(self.k * t) + p * xp.sin(self.k * t)

    def source(self, coords, xp):
        u = self.exact(coords, xp)
        return u * u - self.k**2 * u

    def residual(self, f):
        u = f.u()
        return f.dt(2) - self.coef("alpha") * f.lap() + self.coef("gamma") * u * u - self.source(f.coords, f.xp)

    def conditions(self):
        out = super().conditions()
        if self.params["ut_ic"]:
            out.insert(1, Condition("ic_t", "ic_t", 0, "lo", residual=self._ut_residual))
        return out

    def _ut_residual(self, f):
        _, p = self._sum_prod(f.xs())
        return f.dt() - self.k * p

    def separable_exact(self):
        """u* as d + 1 rank-one terms: x_i cos(kt) (one per axis) and prod x_i sin(kt)."""
        k = self.k
        one = lambda x, xp: xp.ones_like(x)  # noqa: E731
        ident = lambda x, xp: x  # noqa: E731
        terms = [SeparableTerm(1.0, (lambda t, xp: xp.cos(k * t),)
                               + tuple(ident if j == i else one for j in range(self.dim)))
                 for i in range(self.dim)]
        terms.append(SeparableTerm(1.0, (lambda t, xp: xp.sin(k * t),) + (ident,) * self.dim))
        return terms
