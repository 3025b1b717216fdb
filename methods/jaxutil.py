"""Pieces shared by the JAX methods: the MLP, the optimizer hooks and point sampling."""

from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

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
    """A JAX method trained by the case's optimizer (``methods.optim``) on
    ``self.objective(params, batch)`` (= ``self.loss`` in a forward problem).

    Subclasses implement ``init_params(key)``, ``loss(params, batch) -> (loss, terms)``,
    ``sample`` and ``predict_params(params, points)``.
    """

    framework = "jax"
    #: inverse-mode setting (`set_inverse`), None for a forward problem
    inverse: dict | None = None

    def __init__(self, pde, n_per_axis, params=None, dtype="float32"):
        super().__init__(pde, n_per_axis, params, dtype)
        reason = self.optimizer().supports(type(self), pde, self.params)
        if reason:
            raise ValueError(f"method {self.name}: {reason}")

    def optimizer(self) -> optim.Optimizer:
        """The case's optimizer (``methods.optim`` registry)."""
        return optim.get(self.params["optimizer"])

    def transform(self):
        """The optax transformation of a first-order optimizer, built once per instance."""
        tx = self.__dict__.get("_tx")
        if tx is None:
            tx = self.__dict__["_tx"] = self.optimizer().transform(self)
        return tx

    def learning_rate(self):
        """A float or an optax schedule (methods with a decay override this)."""
        return self.params["lr"]

    def clip_norm(self) -> float:
        """Global-norm gradient clipping of a first-order optimizer (0: none)."""
        return 0.0

    def optimizer_describe(self) -> dict:
        return self.optimizer().describe(self)

    def init(self, key):
        params = self.trainable_init(key)
        return {"params": params, "opt": self.optimizer().init(self, params)}

    # -- inverse mode (methods.inverse): hooks with forward-problem defaults --------------------
    def set_inverse(self, spec: dict, seed: int) -> None:
        """Turn this trainer into an inverse one: ``spec`` = {learn, init, n_data, noise,
        data_weight} (validated by the suite); observations are drawn from ``seed``."""
        from . import inverse

        X, u = inverse.draw_observations(self.pde, spec["n_data"], spec["noise"], seed)
        self.inverse = dict(spec)
        self.obs = (jnp.asarray(X, self.jdtype), jnp.asarray(u, self.jdtype))
        self.true_coefs = {k: self.pde.coefficient_values()[k] for k in spec["learn"]}
        self.curve_keys = tuple(getattr(self, "curve_keys", ())) + inverse.curve_keys(spec["learn"])

    def trainable_init(self, key):
        """The network's parameters, plus the coefficients' initial values in inverse mode."""
        net = self.init_params(key)
        if self.inverse is None:
            return net
        init = self.inverse.get("init", {})
        return {"net": net, "coef": {k: jnp.asarray(float(init.get(k, 0.0)), self.jdtype)
                                     for k in self.inverse["learn"]}}

    def net_params(self, params):
        return params if self.inverse is None else params["net"]

    def objective(self, params, batch, *args):
        """``self.loss`` in a forward problem. In inverse mode: the loss with a PDE whose
        residual reads the trainable coefficients (`PDE.bind`; IC/BC data stay exact), plus
        ``data_weight`` * the mean squared misfit at the observations; the coefficient values
        and errors join the loss terms (so they are on the training curve)."""
        if self.inverse is None:
            return self.loss(params, batch, *args)
        from . import inverse

        net, coef = params["net"], params["coef"]
        pde = self.pde
        self.pde = pde.bind(coef)  # trace-time swap: the method's loss code is unchanged
        try:
            total, aux = self.loss(net, batch, *args)
        finally:
            self.pde = pde
        X, u = self.obs
        miss = self.predict_params(net, X) - u
        data = (miss * miss).mean()
        total = total + self.inverse.get("data_weight", 1.0) * data
        extra = {"data": data, **inverse.coefficient_metrics(coef, self.true_coefs, jnp)}
        aux = ({**aux[0], **extra},) + tuple(aux[1:]) if isinstance(aux, tuple) else {**aux, **extra}
        return total, aux

    def step(self, state, batch):
        return self.optimizer().step(self, state, batch)

    def predict(self, state, points):
        return self.predict_params(self.net_params(state["params"]), points)

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
