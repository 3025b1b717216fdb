"""Flow mixing in (2+1) dimensions (SPINN paper, REFERENCES.md 1.1 S7).

u_t + a u_x + b u_y = 0 on t in [0, 4], x, y in [-4, 4], a vortex advecting a front:
r = sqrt(x² + y²), v_t = sech²(r) tanh(r), ω = v_t / (v_max r), a = -ω y, b = ω x,
v_max = 0.385. Exact solution u* = -tanh((y/2) cos(ω t) - (x/2) sin(ω t)); IC and Dirichlet BC
come from u*. Loss weights as in the paper's script: 10 x residual + IC + BC.

Cho et al., "Separable Physics-Informed Neural Networks", NeurIPS 2023 (arXiv 2306.15969),
(2+1)-d flow mixing. ω is written as sech²(r) (tanh(r)/r) / v_max with tanh(r)/r := 1 at
r = 0 (its limit); the direct formula gives NaN there. The r = 0 branch uses the double-`where`
trick so that derivatives through it stay finite too. Only d = 2 is defined by the paper.
"""

from __future__ import annotations

from .base import PDE


class FlowMixing(PDE):
    name = "flow-mixing"
    description = "flow mixing u_t + a u_x + b u_y = 0 on [0,4]x[-4,4]^2, vortex, exact u* (SPINN S7)"
    citation = "Cho et al., SPINN, NeurIPS 2023, (2+1)-d flow mixing"
    dims = (2,)
    time_dependent = True
    defaults = {"v_max": 0.385, "t_max": 4.0, "half_width": 4.0}
    default_weights = {"res": 10.0, "ic": 1.0, "bc": 1.0}

    def setup(self):
        self.v_max = float(self.params["v_max"])
        self.t_max = float(self.params["t_max"])
        self.L = float(self.params["half_width"])

    def bounds(self):
        return [(0.0, self.t_max), (-self.L, self.L), (-self.L, self.L)]

    def omega(self, x, y, xp):
        """Angular velocity ω(r) = sech²(r) tanh(r) / (v_max r), finite at r = 0."""
        r2 = x * x + y * y
        small = r2 < 1e-12
        r = xp.sqrt(xp.where(small, 1.0, r2))
        tanh_over_r = xp.where(small, 1.0, xp.tanh(r) / r)
        sech2 = 1.0 / xp.cosh(xp.where(small, 0.0, r)) ** 2
        return sech2 * tanh_over_r / self.v_max

    def exact(self, coords, xp):
        t, x, y = coords
        w = self.omega(x, y, xp)
        return -xp.tanh(0.5 * y * xp.cos(w * t) - 0.5 * x * xp.sin(w * t))

    def residual(self, f):
        x, y = f.xs()
        w = self.omega(x, y, f.xp)
        return f.dt() - w * y * f.d(0) + w * x * f.d(1)
