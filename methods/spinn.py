"""Separable PINN (SPINN): one MLP per input axis, rank-r CP merge, forward-mode derivatives.

Cho, Nam, Yang, Yun, Hong, Park, "Separable Physics-Informed Neural Networks", NeurIPS 2023
(arXiv 2306.15969), sec. 3-4. Axis a maps its N_a coordinates to features F_a (N_a x r*m);
component c of the output on the tensor grid is u_c(x_1[i_1], ..., x_n[i_n]) =
sum_k prod_a F_a[i_a, c*r + k] (eq. 2 of the paper).

Derivatives are forward mode: the k-th derivative along axis a is the k-th nested jvp of axis
a's network with an all-ones tangent (exact per grid point because the features of axis a
depend on x_a alone), merged with the other axes' plain features. This is the jvp the paper
takes through the whole model, restricted to the only factor the tangent touches; mixed
derivatives put derivative factors on two axes of one merge. The parameter gradient is reverse
mode through all of it.
"""

from __future__ import annotations

import string

import jax
import jax.numpy as jnp

from pdes import Fields

from .base import pde_loss
from .jaxutil import JaxMethod, face_value
from .pinn import MLP_KINDS, make_mlp

_LETTERS = string.ascii_lowercase.replace("z", "")


def merge(factors: list):
    """CP merge of per-axis factors (N_a, r) -> tensor of shape (N_1, ..., N_n)."""
    letters = _LETTERS[: len(factors)]
    spec = ",".join(f"{a}z" for a in letters) + "->" + letters
    return jnp.einsum(spec, *factors)


class SpinnFields(Fields):
    """Fields on the tensor grid spanned by per-axis coordinates ``axes``."""

    def __init__(self, method: "Spinn", params, axes: list, feats: dict, tags: list):
        n = len(axes)
        coords = [x.reshape([-1 if i == a else 1 for i in range(n)]) for a, x in enumerate(axes)]
        super().__init__(jnp, coords, method.pde.time_dependent)
        self.m, self.params_, self.axes, self.feats, self.tags = method, params, axes, feats, tags

    def factor(self, a: int, k: int, c: int):
        key = (a, k, self.tags[a])
        if key not in self.feats:
            self.feats[key] = self.m.axis_features(self.params_, a, self.axes[a], k)
        r = self.m.params["rank"]
        return self.feats[key][:, c * r:(c + 1) * r]

    def _partial(self, idx, c):
        counts = [idx.count(a) for a in range(len(self.axes))]
        return merge([self.factor(a, counts[a], c) for a in range(len(self.axes))])


class Spinn(JaxMethod):
    name = "spinn"
    description = "separable PINN: per-axis MLPs, rank-r merge on a tensor grid, forward-mode AD"
    citation = "Cho et al., Separable Physics-Informed Neural Networks, NeurIPS 2023"
    points_kind = "grid"
    defaults = {"width": 64, "depth": 3, "rank": 32, "activation": "tanh", "mlp": "plain"}
    choices = {"activation": ("tanh", "sin", "gelu"), "mlp": MLP_KINDS}

    @classmethod
    def supports_inverse(cls, pde):
        return None  # inverse mode: JaxMethod.objective (coefficients trained with the network)

    def __init__(self, pde, n_per_axis, params=None, dtype="float32"):
        super().__init__(pde, n_per_axis, params, dtype)
        p = self.params
        feats = [p["width"]] * p["depth"] + [p["rank"] * pde.n_out]
        # mlp = "modified": the SPINN paper's "modified_mlp" body (REFERENCES.md 2.4)
        self.net = make_mlp(p["mlp"], feats, p["activation"], self.jdtype)
        self.conds = pde.conditions()
        self.bounds = pde.bounds()

    def init_params(self, key):
        keys = jax.random.split(key, self.pde.n_in)
        x = jnp.zeros((1, 1), self.jdtype)
        return [self.net.init(k, x) for k in keys]

    def axis_features(self, params, a: int, x, k: int = 0):
        """k-th derivative of axis a's features at coordinates x (N,) -> (N, r*m)."""
        fn = lambda x: self.net.apply(params[a], x[:, None])  # noqa: E731
        for _ in range(k):
            fn = (lambda f: lambda x: jax.jvp(f, (x,), (jnp.ones_like(x),))[1])(fn)
        return fn(x)

    def sample(self, key):
        keys = jax.random.split(key, self.pde.n_in)
        return {"axes": [
            lo + (hi - lo) * jax.random.uniform(k, (self.n_per_axis,), self.jdtype)
            for k, (lo, hi) in zip(keys, self.bounds)
        ]}

    def fields(self, params, axes, feats=None, tags=None):
        return SpinnFields(self, params, axes, {} if feats is None else feats,
                           tags or ["int"] * len(axes))

    def loss(self, params, batch):
        axes = batch["axes"]
        feats: dict = {}
        interior = self.fields(params, axes, feats)
        cf = []
        for cond in self.conds:
            face_axes = list(axes)
            v = face_value(self.bounds, cond.axis, cond.side)
            face_axes[cond.axis] = jnp.full((1,), v, self.jdtype)
            tags = ["int"] * len(axes)
            tags[cond.axis] = f"{cond.side}"
            cf.append((cond, self.fields(params, face_axes, feats, tags)))
        return pde_loss(self.pde, interior, cf)

    def predict_params(self, params, points):
        r = self.params["rank"]
        prod = None
        for a in range(self.pde.n_in):
            f = self.axis_features(params, a, points[:, a])
            prod = f if prod is None else prod * f
        outs = [prod[:, c * r:(c + 1) * r].sum(-1) for c in range(self.pde.n_out)]
        return outs[0] if self.pde.n_out == 1 else jnp.stack(outs, -1)

    def size_info(self):
        n_in = self.pde.n_in
        return {"n_points": self.n_per_axis ** n_in, "n_points_kind": "grid",
                "n_condition_points": self.n_per_axis ** (n_in - 1) * len(self.conds)}

    def describe(self):
        return {"derivatives": "forward-mode (nested jvp per axis network, CP merge per term)",
                "boundary_loss": "mean over faces of per-face MSE"}
