"""Grid-free SPINN loss (``spinn-lowrank``): train on N^(d+1)-point grids without forming them.

pinnbench's own method (no paper has it). The networks, parameters and predictions are those of
`methods.spinn.Spinn` (Cho et al., Separable Physics-Informed Neural Networks, NeurIPS 2023,
arXiv 2306.15969). The SPINN output on the tensor grid is a CP tensor; so is each linear term of
a residual (a derivative changes one axis's factors), each separable source or datum, and each
product of two fields (Khatri-Rao, rank r^2). The PDE's own ``residual(f)`` runs unchanged on
symbolic fields (`methods.cp`) and returns a CP tensor whose mean square is the Gram/Hadamard
formula

    mean(res^2) = sum_{p,q} c_p c_q prod_a (A_a^T diag(q_a) A_a)_{pq}

with per-axis weights q_a: uniform 1/N (``points = "random"``: i.i.d. uniform per-axis points,
exactly the loss of ``spinn`` on the same points) or Gauss-Legendre weights normalised to the
axis length (``points = "gauss-legendre"``: the integral of res^2 over the domain divided by its
volume, i.e. the continuous mean). Initial/boundary faces are the same construction with the face
axis fixed to its bound (one row, weight 1), so the loss equals `methods.base.pde_loss` of ``spinn``
term by term.

Cost: O(sum_a N_a W_a^2 + (d+1) R^2) per mean square, W_a the per-axis Gram width (distinct
factor columns on axis a), R the residual's CP rank (`describe()` records both). A linear
residual has W, R = O(r): O((d+1) N r^2). A product of two fields with shared factors (u^2) adds
r(r+1)/2 symmetric Khatri-Rao columns (`methods.cp._product`), so a degree-2 residual costs
O((d+1) N r^4 / 4 + (d+1) r^4 / 4) against spinn's O(N^(d+1) r): on Klein-Gordon (2+1)-d at
r = 32 spinn-lowrank is the cheaper one from about N = 190 points per axis (XLA FLOPs, float32;
N = 85 with the plain float64 formula; suite ``lowrank-klein-gordon3d``).

Precision: in float32 the Gram sum cancels as the residual shrinks (error ~eps / rho^2 of the
loss at relative residual rho, against ~eps / rho for the dense float32 loss), so float32 grids
compute it in double-float arithmetic from float32 operations (`methods.dfloat`; ~2^-45 relative
to the terms; 1.4-1.8x the XLA FLOPs of a plain float32 step on heat4d / Helmholtz-3d, 3.6x on
Klein-Gordon where the r(r+1)/2-wide Grams dominate). Derivatives are the plain formula's.
float64 grids use the plain formula.

A PDE whose residual or condition data leave the CP algebra (an elementwise function of a field
that depends on several axes, e.g. sin(u) or a non-separable source, or a product of more than
``max_degree`` fields) is rejected up front by `SpinnLowrank.supports` with the reason; nothing is
ever materialised on the grid.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from pdes import Fields

from .base import pde_loss
from .cp import GRAMS, CPNamespace, Grid, Unsupported
from .jaxutil import face_value
from .spinn import Spinn, SpinnFields


class CPFields(SpinnFields):
    """`SpinnFields` whose derivatives, coordinates and ``xp`` are symbolic CP tensors on ``grid``."""

    def __init__(self, method, params, axes: list, feats: dict, tags: list, grid: Grid):
        coords = [grid.univariate(a, x) for a, x in enumerate(axes)]
        Fields.__init__(self, CPNamespace(grid), coords, method.pde.time_dependent)
        self.m, self.params_, self.axes, self.feats, self.tags = method, params, axes, feats, tags
        self.grid = grid
        self._slices: dict = {}

    def factor(self, a: int, k: int, c: int):
        # one array object per (axis, order, component), so the Gram cache recognises reuse
        key = (a, k, c)
        if key not in self._slices:
            self._slices[key] = super().factor(a, k, c)
        return self._slices[key]

    def _partial(self, idx, c):
        counts = [idx.count(a) for a in range(len(self.axes))]
        return self.grid.factor_term([self.factor(a, counts[a], c) for a in range(len(self.axes))])


class _ProbeFields(CPFields):
    """Abstract-shape fields for `SpinnLowrank.supports` (no network: unit factors)."""

    def __init__(self, pde, sizes, grid):
        axes = [jnp.linspace(0.0, 1.0, n) for n in sizes]
        coords = [grid.univariate(a, x) for a, x in enumerate(axes)]
        Fields.__init__(self, CPNamespace(grid), coords, pde.time_dependent)
        self.axes, self.grid, self.n_out = axes, grid, pde.n_out

    def factor(self, a, k, c):
        return jnp.ones((self.axes[a].shape[0], 1)) * (k + 1.0)


def _probe_loss(pde, max_degree: int):
    n = 2
    sizes = [n] * pde.n_in
    grid = Grid(sizes, [None] * pde.n_in, jnp.float32, pde.axis_names(), max_degree)
    cf = []
    for cond in pde.conditions():
        fs = list(sizes)
        fs[cond.axis] = 1
        fgrid = Grid(fs, [None] * pde.n_in, jnp.float32, pde.axis_names(), max_degree)
        f = _ProbeFields(pde, fs, fgrid)
        f.axes[cond.axis] = jnp.full((1,), face_value(pde.bounds(), cond.axis, cond.side))
        f.coords[cond.axis] = fgrid.univariate(cond.axis, f.axes[cond.axis])
        cf.append((cond, f))
    return pde_loss(pde, _ProbeFields(pde, sizes, grid), cf)[0]


@functools.lru_cache(maxsize=8)
def _gauss_legendre(n: int):
    """Nodes on [-1, 1] and weights (sum 2); scipy switches to an O(n) asymptotic method for big n."""
    from scipy.special import roots_legendre

    x, w = roots_legendre(n)
    return np.asarray(x), np.asarray(w)


class SpinnLowrank(Spinn):
    name = "spinn-lowrank"
    description = ("SPINN with a grid-free CP loss: mean(res^2) over N^(d+1) points from per-axis "
                   "Gram matrices, O((d+1) N W^2) (W ~ r, r^2/2 with u^2 terms); random or "
                   "Gauss-Legendre per-axis points")
    citation = ("pinnbench's own method on the SPINN of Cho et al., NeurIPS 2023; CP inner product: "
                "Kolda & Bader, SIAM Review 2009")
    points_kind = "grid-free"
    #: gram: "double-float" (float32 grids: the cancellation-free loss, `methods.dfloat`) or
    #: "plain" (the plain float32 Gram sum: cheaper, cancels as the residual shrinks)
    defaults = {**Spinn.defaults, "points": "random", "max_degree": 2, "gram": "double-float"}
    choices = {**Spinn.choices, "points": ("random", "gauss-legendre"), "gram": GRAMS}

    @classmethod
    def supports_inverse(cls, pde):
        return "spinn-lowrank's low-rank residual probes are not wired to trainable PDE coefficients"

    def __init__(self, pde, n_per_axis, params=None, dtype="float32"):
        super().__init__(pde, n_per_axis, params, dtype)
        if self.params["max_degree"] < 1:
            raise ValueError(f"method.spinn-lowrank.max_degree = {self.params['max_degree']} "
                             "must be >= 1")
        reason = self.supports(pde, self.params["max_degree"])
        if reason:
            raise ValueError(f"PDE {pde.name!r} is not supported by spinn-lowrank: {reason}")

    @classmethod
    def supports(cls, pde, max_degree: int | None = None) -> str | None:
        """Evaluate the residual and condition terms symbolically (abstract shapes) to decide."""
        deg = cls.defaults["max_degree"] if max_degree is None else max_degree
        try:
            jax.eval_shape(lambda: _probe_loss(pde, deg))
        except Unsupported as e:
            return str(e)
        except Exception as e:  # any other operation outside the CP vocabulary
            return f"the residual leaves the CP algebra ({type(e).__name__}: {e})"
        return None

    def sample(self, key):
        if self.params["points"] == "random":
            return super().sample(key)
        z, w = _gauss_legendre(self.n_per_axis)
        axes, weights = [], []
        for lo, hi in self.bounds:
            axes.append(jnp.asarray(lo + (hi - lo) * (z + 1.0) / 2.0, self.jdtype))
            weights.append(jnp.asarray(w / 2.0, self.jdtype))
        return {"axes": axes, "weights": weights}

    def grid(self, axes, weights):
        return Grid([x.shape[0] for x in axes], weights, self.jdtype, self.pde.axis_names(),
                    self.params["max_degree"], self.params["gram"])

    def loss(self, params, batch):
        axes = batch["axes"]
        weights = batch.get("weights") or [None] * len(axes)
        feats: dict = {}
        interior = CPFields(self, params, axes, feats, ["int"] * len(axes), self.grid(axes, weights))
        cf = []
        for cond in self.conds:
            face_axes, face_w = list(axes), list(weights)
            face_axes[cond.axis] = jnp.full((1,), face_value(self.bounds, cond.axis, cond.side),
                                            self.jdtype)
            face_w[cond.axis] = None
            tags = ["int"] * len(axes)
            tags[cond.axis] = cond.side
            cf.append((cond, CPFields(self, params, face_axes, feats, tags,
                                      self.grid(face_axes, face_w))))
        return pde_loss(self.pde, interior, cf)

    def size_info(self):
        n_in = self.pde.n_in
        return {"n_points": self.n_per_axis ** n_in, "n_points_kind": "grid-free",
                "n_condition_points": self.n_per_axis ** (n_in - 1) * len(self.conds)}

    def gram_sizes(self) -> dict:
        """Trace the loss on abstract shapes and read the interior residual's CP structure:
        ``rank`` R (columns of c^T H c), ``width`` the largest per-axis Gram width W."""
        grids, make = [], self.grid

        def grid(axes, weights):
            grids.append(make(axes, weights))
            return grids[-1]

        self.grid = grid  # instance attribute: shadows the method for this trace only
        try:
            params = jax.eval_shape(self.init_params, jax.random.PRNGKey(0))
            batch = jax.eval_shape(self.sample, jax.random.PRNGKey(1))
            jax.eval_shape(lambda p, b: self.loss(p, b)[0], params, batch)
        finally:
            del self.grid
        stats = grids[0].stats  # the interior grid: one inner per residual component
        return {"rank": max(rx for _, rx, _ in stats), "width": max(max(w) for w, _, _ in stats)}

    def describe(self):
        g = self.gram_sizes()
        arith = ("double-float (float32 pairs, methods/dfloat.py): error-free split Gram matmuls, "
                 "~2^-45 relative to the terms"
                 if self.jdtype == jnp.float32 and self.params["gram"] == "double-float"
                 else f"plain {self.dtype}")
        return {"derivatives": "forward-mode (nested jvp per axis network), residual as a CP tensor",
                "loss": "grid-free: mean(res^2) from per-axis Gram matrices (Hadamard product)",
                "loss_cost": (f"O(sum_a N_a W^2 + (d+1) R^2) per step, W = {g['width']} (per-axis "
                              f"Gram width), R = {g['rank']} (residual CP rank); a product of two "
                              "fields adds r(r+1)/2 to both"),
                "gram_width": g["width"], "residual_cp_rank": g["rank"],
                "gram_arithmetic": arith,
                "points": self.params["points"],
                "boundary_loss": "mean over faces of per-face mean square"}


__all__ = ["SpinnLowrank", "CPFields", "Unsupported"]
