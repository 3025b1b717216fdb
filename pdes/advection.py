"""Linear advection u_t + c u_x = 0, periodic in x: the causal-PINN "hard for vanilla" case.

x in [0, 2 pi) periodic, t in [0, 1], u0 = sin x, exact solution u* = sin(x - c t). This is the
jaxpi ``examples/adv`` problem (Wang, Sankaran, Perdikaris, arXiv 2203.07404, and the jaxpi
README; REFERENCES.md 1.4, C6), where c = 80 (code) or 100 (README); the default c = 5 is the
CPU-sized correctness case of REFERENCES.md 4.6.

Periodicity: the class declares ``periodic_axes = (1,)`` (input axis of x, period 2 pi). A
method with a periodic input embedding (``causal`` with ``fourier_modes > 0``) enforces it
exactly and drops the x-boundary terms; methods without one (``pinn``, ``spinn``) get the
Dirichlet data u = u* on x = 0 and x = 2 pi from the exact solution instead (group "bc").
"""

from __future__ import annotations

import math

from .base import PDE


class Advection(PDE):
    name = "advection"
    description = "advection u_t + c u_x = 0, x in [0, 2pi) periodic, u* = sin(x - c t) (causal-PINN C6)"
    citation = "Wang, Sankaran, Perdikaris, arXiv 2203.07404; jaxpi examples/adv"
    dims = (1,)
    time_dependent = True
    defaults = {"c": 5.0, "t_end": 1.0}
    #: input axes that are periodic, with their bounds as the period (see module docstring)
    periodic_axes = (1,)

    def setup(self):
        for k, v in self.params.items():
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                raise ValueError(f"advection parameter {k} = {v!r} must be a number")
        self.c = float(self.params["c"])
        self.t_end = float(self.params["t_end"])
        if not self.t_end > 0:
            raise ValueError(f"advection parameter t_end = {self.t_end!r} must be positive")

    def bounds(self):
        return [(0.0, self.t_end), (0.0, 2.0 * math.pi)]

    def residual(self, f):
        return f.dt() + self.c * f.d(0)

    def exact(self, coords, xp):
        t, x = coords
        return xp.sin(x - self.c * t)

    def describe(self):
        return {**super().describe(), "periodic_axes": list(self.periodic_axes),
                "bc_without_embedding": "Dirichlet u = u* on x = 0, 2pi"}
