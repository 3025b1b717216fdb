"""Helmholtz equation in d dimensions.

Δu + λu = q on [-1, 1]^d, u = 0 on the boundary, with u* = prod_i sin(a_i π x_i) and
q = (λ - π² sum_i a_i²) u*. For d = 3, (a_1, a_2, a_3) = (4, 4, 3) and λ = 1 as in the SPINN
paper's 3-d Helmholtz experiment (Cho et al., NeurIPS 2023, arXiv 2306.15969, sec. 5.1;
REFERENCES.md S2). For other d the a_i default to (4, ..., 4, 3) (pinnbench's choice, recorded
in the record's PDE params); set ``a`` to override.
"""

from __future__ import annotations

import math

from .base import PDE, SeparableTerm


class Helmholtz(PDE):
    name = "helmholtz"
    description = "Helmholtz Lap(u) + lam*u = q on [-1,1]^d, u* = prod sin(a_i pi x_i) (SPINN S2)"
    citation = "Cho et al., SPINN, NeurIPS 2023, 3-d Helmholtz"
    dims = None
    time_dependent = False
    defaults = {"lam": 1.0, "a": []}
    coefficients = {"lam": "Helmholtz coefficient k^2 (lambda)"}

    def setup(self):
        a = list(self.params["a"]) or ([4.0] * (self.dim - 1) + [3.0])
        if len(a) != self.dim:
            raise ValueError(f"helmholtz: 'a' needs {self.dim} entries, got {len(a)}")
        self.a = [float(v) for v in a]
        self.params["a"] = self.a
        self.lam = float(self.params["lam"])
        self.q_coef = self.lam - math.pi**2 * sum(v * v for v in self.a)

    def bounds(self):
        return [(-1.0, 1.0)] * self.dim

    def exact(self, coords, xp):
        out = xp.sin(self.a[0] * math.pi * coords[0])
        for ai, x in zip(self.a[1:], coords[1:]):
            out = out * xp.sin(ai * math.pi * x)
        return out

    def source(self, coords, xp):
        return self.q_coef * self.exact(coords, xp)

    def residual(self, f):
        return f.lap() + self.coef("lam") * f.u() - self.source(f.coords, f.xp)

    def separable_source(self):
        return [SeparableTerm(self.q_coef, tuple(
            (lambda ai: lambda x, xp: xp.sin(ai * math.pi * x))(ai) for ai in self.a))]
