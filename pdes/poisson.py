"""Poisson equation on the unit cube [0, 1]^d, in the four families of the KFAC-PINN paper.

Dangel, Müller, Zeinhofer, NeurIPS 2024 (arXiv 2405.15603), sec. 4 and appendix; REFERENCES.md
1.2 (K1-K4) and 1.6. Dirichlet data u = u* on the boundary.

* ``sinprod``: -Δu = d π² prod sin(π x_i), u* = prod sin(π x_i)      (K1, d = 2)
* ``cossum``:  -Δu = π² sum cos(π x_i),    u* = sum cos(π x_i)         (K2, d = 5)
* ``pairs``:    Δu = 0,                    u* = sum_i x_{2i-1} x_{2i}  (K3, d = 10; d even)
* ``norm``:    -Δu = -2d,                  u* = ||x||²                 (K4, d = 100)

``family = "auto"`` picks the paper's family for the dimension (2: sinprod, 5: cossum,
10: pairs, 100: norm; sinprod otherwise). ``normalise = true`` divides u* and the source by
the RMS of u* on the cube, as the paper's code does for K3 (1.34) and K4 (33.47), so the stored
RMS error is roughly relative; pinnbench reports rel. L2 either way.
"""

from __future__ import annotations

import math

from .base import PDE, SeparableTerm

FAMILIES = ("auto", "sinprod", "cossum", "pairs", "norm")
PAPER_FAMILY = {2: "sinprod", 5: "cossum", 10: "pairs", 100: "norm"}


def rms_on_cube(family: str, d: int) -> float:
    """RMS of u* over [0,1]^d (closed forms)."""
    if family == "sinprod":
        return 2.0 ** (-d / 2)
    if family == "cossum":
        return math.sqrt(d / 2)
    if family == "pairs":  # E[(sum of d/2 products)^2] with E[xy]=1/4, E[x^2 y^2]=1/9
        m = d // 2
        return math.sqrt(m / 9 + m * (m - 1) / 16)
    # norm: E[(sum x_i^2)^2] = d/5 + d(d-1)/9
    return math.sqrt(d / 5 + d * (d - 1) / 9)


class Poisson(PDE):
    name = "poisson"
    description = "Poisson on [0,1]^d, KFAC-PINN families sinprod/cossum/pairs/norm (K1-K4)"
    citation = "Dangel, Müller, Zeinhofer, NeurIPS 2024, Poisson K1-K4"
    dims = None
    time_dependent = False
    defaults = {"family": "auto", "normalise": False}

    def setup(self):
        fam = self.params["family"]
        if fam not in FAMILIES:
            raise ValueError(f"poisson: family {fam!r} is not valid (valid: {', '.join(FAMILIES)})")
        if fam == "auto":
            fam = PAPER_FAMILY.get(self.dim, "sinprod")
        if fam == "pairs" and self.dim % 2:
            raise ValueError(f"poisson: family 'pairs' needs an even dim, got {self.dim}")
        self.family = fam
        self.params["family"] = fam
        self.scale = rms_on_cube(fam, self.dim) if self.params["normalise"] else 1.0

    def bounds(self):
        return [(0.0, 1.0)] * self.dim

    def exact(self, coords, xp):
        fam, pi = self.family, math.pi
        if fam == "sinprod":
            out = xp.sin(pi * coords[0])
            for x in coords[1:]:
                out = out * xp.sin(pi * x)
        elif fam == "cossum":
            out = xp.cos(pi * coords[0])
            for x in coords[1:]:
                out = out + xp.cos(pi * x)
        elif fam == "pairs":
            out = coords[0] * coords[1]
            for i in range(2, self.dim, 2):
                out = out + coords[i] * coords[i + 1]
        else:
            out = coords[0] * coords[0]
            for x in coords[1:]:
                out = out + x * x
        return out / self.scale

    def source(self, coords, xp):
        """f in -Δu = f."""
        fam, pi, d = self.family, math.pi, self.dim
        if fam == "sinprod":
            return d * pi**2 * self.exact(coords, xp)
        if fam == "cossum":
            return pi**2 * self.exact(coords, xp)
        zero = 0.0 * coords[0]
        for x in coords[1:]:
            zero = zero + 0.0 * x
        return zero + (0.0 if fam == "pairs" else -2.0 * d / self.scale)

    def residual(self, f):
        return -f.lap() - self.source(f.coords, f.xp)

    def separable_source(self):
        fam, pi, d = self.family, math.pi, self.dim
        one = lambda x, xp: xp.ones_like(x)  # noqa: E731
        if fam == "sinprod":
            return [SeparableTerm(d * pi**2 / self.scale,
                                  tuple(lambda x, xp: xp.sin(pi * x) for _ in range(d)))]
        if fam == "cossum":
            return [SeparableTerm(pi**2 / self.scale, tuple(
                (lambda x, xp: xp.cos(pi * x)) if j == i else one for j in range(d)))
                for i in range(d)]
        if fam == "pairs":
            return []
        return [SeparableTerm(-2.0 * d / self.scale, tuple(one for _ in range(d)))]
