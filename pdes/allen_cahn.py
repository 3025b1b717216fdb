"""Allen-Cahn u_t - nu u_xx + r u^3 - r u = 0, x in [-1, 1) periodic, u0 = x^2 cos(pi x).

The causal-PINN benchmark (Wang, Sankaran, Perdikaris, arXiv 2203.07404, sec. 5.1; REFERENCES.md
1.4, C1) with nu = 1e-4, r = 5 on t in [0, 1]. The IC loss weight defaults to 100 as in the
paper's Allen-Cahn setting (lambda_ic = 100; REFERENCES.md 2.3), for every method alike.

There is no closed form. ``exact`` is a *reference*: bilinear interpolation of the solution of
pinnbench's own Fourier/ETDRK4 solver (``pdes/allen_cahn_solver.py``; 1024 modes, dt = 1e-3,
201 snapshots), computed on first use and cached in memory (about 0.6 s). Its interpolation
error is about 1.3e-4 relative L2, measured against a 2048-mode solution. The IC term uses the
closed-form u0; the worker's random evaluation points are scored against the interpolant.

Periodicity: ``periodic_axes = (1,)``. Methods with a periodic input embedding drop the
x-boundary terms; the others get Dirichlet data u(t, +-1) = the reference boundary value (it
stays within about 3e-3 of -1, the stable state, for all t).
"""

from __future__ import annotations

from .allen_cahn_solver import allen_cahn_u0, interpolate, reference
from .base import PDE, Condition


class AllenCahn(PDE):
    name = "allen-cahn"
    description = "Allen-Cahn u_t = 1e-4 u_xx + 5u - 5u^3, x in [-1,1) periodic, u0 = x^2 cos(pi x) (C1)"
    citation = "Wang, Sankaran, Perdikaris, arXiv 2203.07404, sec. 5.1 (reference: own ETDRK4 solver)"
    dims = (1,)
    time_dependent = True
    default_weights = {"res": 1.0, "ic": 100.0, "bc": 1.0}
    defaults = {"nu": 1e-4, "r": 5.0}
    periodic_axes = (1,)
    solution = "reference"  # interpolated ETDRK4 reference, not a closed form

    def setup(self):
        for k, v in self.params.items():
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                raise ValueError(f"allen_cahn parameter {k} = {v!r} must be a number")
        self.nu = float(self.params["nu"])
        self.r = float(self.params["r"])
        if not self.nu > 0:
            raise ValueError(f"allen_cahn parameter nu = {self.nu!r} must be positive")

    def bounds(self):
        return [(0.0, 1.0), (-1.0, 1.0)]

    def residual(self, f):
        u = f.u()
        return f.dt() - self.nu * f.d(0, 2) + self.r * u**3 - self.r * u

    def reference(self):
        """(t (201,), x (1024,), u (201, 1024)) of the reference solver, cached."""
        return reference(nu=self.nu, r=self.r)

    def exact(self, coords, xp):
        t, x = coords
        tg, _, u = self.reference()
        return interpolate(u, tg, -1.0, 2.0, t, x, xp)

    def _ic(self, f):
        return f.u() - allen_cahn_u0(f.x(0), f.xp)

    def _bc(self, f):
        tg, _, u = self.reference()
        return f.u() - f.xp.interp(f.t(), f.xp.asarray(tg), f.xp.asarray(u[:, 0]))

    def conditions(self):
        return [Condition("ic", "ic", 0, "lo", self._ic),
                Condition("bc_x0_lo", "bc", 1, "lo", self._bc),
                Condition("bc_x0_hi", "bc", 1, "hi", self._bc)]

    def describe(self):
        return {**super().describe(), "periodic_axes": list(self.periodic_axes),
                "exact": "reference: bilinear interpolation of own ETDRK4 solution (1024 x 201)",
                "bc_without_embedding": "Dirichlet u(t, +-1) = reference boundary value"}
