"""Pieces shared by the JAX methods: the MLP, optimizers and point sampling."""

from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from . import optim
from .base import Method

ACTIVATIONS = {"tanh": jnp.tanh, "sin": jnp.sin, "gelu": nn.gelu, "relu": nn.relu}


class MLP(nn.Module):
    """tanh MLP with Glorot-normal weights and zero biases (the SPINN/PINN baselines)."""

    features: Sequence[int]  # hidden widths followed by the output width
    activation: str = "tanh"
    param_dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, x):
        act = ACTIVATIONS[self.activation]
        init = nn.initializers.glorot_normal()
        for w in self.features[:-1]:
            x = act(nn.Dense(w, kernel_init=init, param_dtype=self.param_dtype,
                             dtype=self.param_dtype)(x))
        return nn.Dense(self.features[-1], kernel_init=init, param_dtype=self.param_dtype,
                        dtype=self.param_dtype)(x)


def jdtype(name: str):
    return {"float32": jnp.float32, "float64": jnp.float64}[name]


def count_params(tree) -> int:
    return int(sum(x.size for x in jax.tree_util.tree_leaves(tree)))


class JaxMethod(Method):
    """A JAX method trained by a first-order optax optimizer on ``self.loss(params, batch)``.

    Subclasses implement ``init_params(key)``, ``loss(params, batch) -> (loss, terms)``,
    ``sample`` and ``predict_params(params, points)``.
    """

    framework = "jax"

    def optimizer(self):
        """The case's optimizer (``methods.optim``), built once per method instance."""
        tx = self.__dict__.get("_tx")
        if tx is None:
            tx = self.__dict__["_tx"] = optim.build(self.params)
        return tx

    def init(self, key):
        params = self.init_params(key)
        return {"params": params, "opt": self.optimizer().init(params)}

    def step(self, state, batch):
        (loss, terms), grads = jax.value_and_grad(self.loss, has_aux=True)(state["params"], batch)
        updates, opt = self.optimizer().update(grads, state["opt"], state["params"])
        params = optax.apply_updates(state["params"], updates)
        return {"params": params, "opt": opt}, {"loss": loss, **terms}

    def predict(self, state, points):
        return self.predict_params(state["params"], points)

    def n_params(self, state) -> int:
        return count_params(state["params"])

    @property
    def jdtype(self):
        return jdtype(self.dtype)


def uniform(key, n: int, bounds: list[tuple[float, float]], dtype):
    """n i.i.d. uniform points in the box ``bounds`` -> (n, len(bounds))."""
    lo = jnp.array([b[0] for b in bounds], dtype)
    hi = jnp.array([b[1] for b in bounds], dtype)
    return lo + (hi - lo) * jax.random.uniform(key, (n, len(bounds)), dtype)


def face_value(bounds, axis: int, side: str) -> float:
    return bounds[axis][0] if side == "lo" else bounds[axis][1]
