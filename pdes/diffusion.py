"""Nonlinear diffusion in (d+1) dimensions (SPINN paper S1 for d = 2).

u_t = α (|∇u|² + u Δu) = α ∇·(u ∇u), α = 0.05, on t in [0, 1], x in [-1, 1]^d, u = 0 on the
boundary, with the paper's initial condition, a sum of three Gaussians,

    u0 = 0.25 exp(-|x - c1|²/0.1) + 0.4 exp(-15 |x - c2|²) + 0.3 exp(-20 |x - c3|²),
    c1 = (0.3, 0.2), c2 = (-0.5, -0.1), c3 = (0, -0.5).

Cho et al., "Separable Physics-Informed Neural Networks", NeurIPS 2023 (arXiv 2306.15969),
(2+1)-d diffusion; REFERENCES.md 1.1 S1 and 1.6 "diffusion(d+1)". For d != 2 (pinnbench's
extension, dims 1 and 3) the centres keep their first d coordinates, padded with 0.

**No closed form.** ``exact`` evaluates a *reference solution* computed by pinnbench's own
finite-difference solver (`pdes.reference.porous`: second order in space, RK4 in time, cubic
spline interpolation between nodes and snapshots), cached per process and on disk
(``$PINNBENCH_CACHE`` or ``~/.cache/pinnbench``). Its accuracy, measured by grid refinement
(``tests/test_pdes.py``): the error at t = 1 behaves as C h² with C ≈ 1.2 (rel. L2), so the
default d = 2 resolution (201² nodes, h = 0.01) is accurate to about 1.2e-4 relative, and
rel. L2 errors of a trained model below about 1e-3 are not meaningful. d = 1 uses 1001
nodes; d = 3 uses 61³ nodes (h = 1/30; by the same constant about 1.3e-3, not measured).
The reference is a numpy computation: ``exact`` needs concrete arrays (it cannot be traced
under ``jax.jit``); the IC and BC residuals use the closed-form u0 and 0.
As the paper notes, u0 is about 9.4e-3 on the boundary where the BC says 0: the reference
sets the boundary nodes to 0 from t = 0 on.
"""

from __future__ import annotations

from .base import PDE, Condition
from .reference import porous

GAUSSIANS = ((0.25, 10.0, (0.3, 0.2)), (0.4, 15.0, (-0.5, -0.1)), (0.3, 20.0, (0.0, -0.5)))
#: default reference resolution (nodes per axis) and snapshot count per spatial dim
REF_N = {1: 1001, 2: 201, 3: 61}
REF_SNAPS = {1: 101, 2: 101, 3: 51}


def initial(xs: list, xp):
    """The paper's u0 at coordinates ``xs`` (one array per spatial axis)."""
    out = 0.0
    for amp, rate, centre in GAUSSIANS:
        c = list(centre[: len(xs)]) + [0.0] * max(0, len(xs) - len(centre))
        r2 = (xs[0] - c[0]) ** 2
        for x, ci in zip(xs[1:], c[1:]):
            r2 = r2 + (x - ci) ** 2
        out = out + amp * xp.exp(-rate * r2)
    return out


def _initial_np(grids):
    import numpy as np

    return initial(list(grids), np)


class Diffusion(PDE):
    name = "diffusion"
    description = ("nonlinear diffusion u_t = alpha div(u grad u) on [0,1]x[-1,1]^d, 3 Gaussians, "
                   "FD reference (SPINN S1)")
    citation = "Cho et al., SPINN, NeurIPS 2023, (2+1)-d nonlinear diffusion"
    dims = (1, 2, 3)
    time_dependent = True
    solution = "reference"
    defaults = {"alpha": 0.05, "ref_n": 0}

    def setup(self):
        self.alpha = float(self.params["alpha"])
        self.ref_n = int(self.params["ref_n"]) or REF_N[self.dim]
        if self.ref_n < 5:
            raise ValueError(f"diffusion: ref_n must be at least 5, got {self.ref_n}")
        self.params["ref_n"] = self.ref_n

    def bounds(self):
        return [(0.0, 1.0)] + [(-1.0, 1.0)] * self.dim

    def residual(self, f):
        u = f.u()
        out = f.dt()
        for i in range(self.dim):
            ui = f.d(i)
            out = out - self.alpha * (ui * ui + u * f.d(i, 2))
        return out

    def conditions(self):
        out = [Condition("ic", "ic", 0, "lo", residual=lambda f: f.u() - initial(f.xs(), f.xp))]
        for i in range(self.dim):
            for side in ("lo", "hi"):
                out.append(Condition(f"bc_x{i}_{side}", "bc", i + 1, side, residual=lambda f: f.u()))
        return out

    def reference(self) -> porous.Interpolant:
        return porous.cached_solution(_initial_np, self.dim, self.ref_n, self.alpha, 1.0,
                                      REF_SNAPS[self.dim], tag="spinn-s1")

    def exact(self, coords, xp):
        """The reference solution (numpy), returned in the array type of ``xp``."""
        import numpy as np

        try:
            arrs = [np.asarray(c) for c in coords]
        except Exception as e:  # a jax tracer or similar abstract value
            raise ValueError("diffusion: the reference solution needs concrete arrays "
                             "(it is a numpy computation and cannot be traced)") from e
        vals = self.reference()(arrs)
        dtype = getattr(coords[0], "dtype", None)
        if xp is np:
            return vals.astype(dtype) if dtype is not None else vals
        if xp.__name__ == "torch":
            return xp.as_tensor(vals, dtype=dtype)
        return xp.asarray(vals, dtype=dtype)
