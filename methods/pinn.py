"""Vanilla PINN: one MLP on the concatenated inputs, derivatives by reverse-mode AD.

Raissi, Perdikaris, Karniadakis, "Physics-informed neural networks", J. Comput. Phys. 378
(2019); here in the configuration of the SPINN paper's baseline (Cho et al., NeurIPS 2023,
arXiv 2306.15969, sec. 5): 4 hidden layers of 128 tanh units, Glorot-normal weights, Adam at
lr 1e-3. Derivatives use the "fwdrev" engine of the SPINN authors' baseline (REFERENCES.md
2.1): one vjp of the batched network with an all-ones cotangent gives every point's input
gradient (rows are independent); a jvp of that along one input column gives the second
derivative along that axis, once per axis.
"""

from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from pdes import Fields

from .base import pde_loss
from .jaxutil import ACTIVATIONS, MLP, JaxMethod, face_value, uniform

MLP_KINDS = ("plain", "modified")


class ModifiedMLP(nn.Module):
    """The "modified MLP" of Wang, Teng, Perdikaris (SIAM J. Sci. Comput. 2021, arXiv 2001.04536,
    eq. 2.35-2.39; REFERENCES.md 2.1 "PINN-mod"): two encoders U = σ(W_u x + b_u),
    V = σ(W_v x + b_v) gate every hidden layer after the first,

        H = σ(W_1 x + b_1);  per further layer: Z = σ(W_k H + b_k), H = (1 - Z)⊙U + Z⊙V;
        out = W_out H + b_out.

    ``features`` = hidden widths (all equal: U and V must match them) then the output width, so
    ``depth`` hidden layers cost the plain MLP's parameters plus the two encoders. With
    depth 4, width 64, 32 outputs on one input this is the SPINN paper's "modified_mlp" axis
    network (14,944 parameters; 44,832 for three axes). Glorot-normal weights, zero biases.
    """

    features: Sequence[int]
    activation: str = "tanh"
    param_dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, x):
        act = ACTIVATIONS[self.activation]
        hidden = list(self.features[:-1])
        if len(set(hidden)) != 1:
            raise ValueError(f"modified MLP needs equal hidden widths, got {hidden}")
        dense = lambda w, name: nn.Dense(  # noqa: E731
            w, kernel_init=nn.initializers.glorot_normal(), param_dtype=self.param_dtype,
            dtype=self.param_dtype, name=name)
        U = act(dense(hidden[0], "encoder_u")(x))
        V = act(dense(hidden[0], "encoder_v")(x))
        h = act(dense(hidden[0], "hidden_0")(x))
        for k, w in enumerate(hidden[1:], start=1):
            z = act(dense(w, f"hidden_{k}")(h))
            h = (1.0 - z) * U + z * V
        return dense(self.features[-1], "out")(h)


def make_mlp(kind: str, features, activation: str, dtype):
    """``mlp = "plain"`` (the default MLP) or ``"modified"`` (`ModifiedMLP`)."""
    if kind == "modified":
        return ModifiedMLP(features, activation, dtype)
    return MLP(features, activation, dtype)


class PinnFields(Fields):
    """Pointwise derivatives of ``apply: (n, n_in) -> (n, n_out)`` at points ``X``."""

    def __init__(self, apply, X, time_dependent: bool):
        super().__init__(jnp, [X[:, i] for i in range(X.shape[1])], time_dependent)
        self.apply = apply
        self.X = X
        self._grads: dict = {}

    def _unit(self, a):
        return jnp.zeros_like(self.X).at[:, a].set(1.0)

    def _grad(self, c):
        """(n, n_in) input gradient of component c: one vjp with an all-ones cotangent."""
        if c not in self._grads:
            h = lambda X: self.apply(X)[:, c]  # noqa: E731
            u, vjp = jax.vjp(h, self.X)
            self._grads[c] = (vjp(jnp.ones_like(u))[0], h)
        return self._grads[c]

    def _partial(self, idx, c):
        if not idx:
            return self.apply(self.X)[:, c]
        g, h = self._grad(c)
        if len(idx) == 1:
            return g[:, idx[0]]
        first = idx[0]

        def fn(X):
            u, vjp = jax.vjp(h, X)
            return vjp(jnp.ones_like(u))[0][:, first]

        for b in idx[1:]:
            fn = (lambda f, b: lambda X: jax.jvp(f, (X,), (self._unit(b),))[1])(fn, b)
        return fn(self.X)


class Pinn(JaxMethod):
    name = "pinn"
    description = "vanilla PINN: MLP on (t, x), derivatives by reverse-mode AD (fwdrev)"
    citation = "Raissi et al. 2019; SPINN paper baseline (Cho et al., NeurIPS 2023)"
    points_kind = "random"
    defaults = {"width": 128, "depth": 4, "activation": "tanh", "engine": "fwdrev", "mlp": "plain"}
    choices = {"activation": ("tanh", "sin", "gelu"),
               "engine": ("fwdrev",), "mlp": MLP_KINDS}

    @classmethod
    def supports_inverse(cls, pde):
        return None  # inverse mode: JaxMethod.objective (coefficients trained with the network)

    def __init__(self, pde, n_per_axis, params=None, dtype="float32"):
        super().__init__(pde, n_per_axis, params, dtype)
        p = self.params
        self.net = make_mlp(p["mlp"], [p["width"]] * p["depth"] + [pde.n_out], p["activation"],
                            self.jdtype)
        self.conds = pde.conditions()
        self.bounds = pde.bounds()
        self.n_interior = self.n_per_axis ** pde.n_in
        self.n_face = self.n_per_axis ** (pde.n_in - 1)

    def init_params(self, key):
        return self.net.init(key, jnp.zeros((1, self.pde.n_in), self.jdtype))

    def sample(self, key):
        keys = jax.random.split(key, len(self.conds) + 1)
        faces = []
        for cond, k in zip(self.conds, keys[1:]):
            X = uniform(k, self.n_face, self.bounds, self.jdtype)
            faces.append(X.at[:, cond.axis].set(face_value(self.bounds, cond.axis, cond.side)))
        return {"interior": uniform(keys[0], self.n_interior, self.bounds, self.jdtype),
                "faces": faces}

    def loss(self, params, batch):
        apply = lambda X: self.net.apply(params, X)  # noqa: E731
        td = self.pde.time_dependent
        cf = [(c, PinnFields(apply, X, td)) for c, X in zip(self.conds, batch["faces"])]
        return pde_loss(self.pde, PinnFields(apply, batch["interior"], td), cf)

    def predict_params(self, params, points):
        out = self.net.apply(params, points)
        return out[:, 0] if self.pde.n_out == 1 else out

    def size_info(self):
        return {"n_points": self.n_interior, "n_points_kind": "random",
                "n_condition_points": self.n_face * len(self.conds)}

    def describe(self):
        return {"derivatives": "reverse-mode (fwdrev: vjp for gradients, jvp per axis for 2nd)",
                "boundary_loss": "mean over faces of per-face MSE"}
