"""Forward Laplacian through a flax MLP, with the per-layer streams KFAC needs.

Li et al., "Forward Laplacian: A New Computational Framework for Neural Network-based
Variational Monte Carlo", arXiv 2307.08214; used as the derivative engine of Dangel, Müller,
Zeinhofer, NeurIPS 2024 (arXiv 2405.15603, sec. 3) and REFERENCES.md 2.2.

Per point, S = d_in + 1 + k streams are pushed through the network in one pass: the value z,
the d_in first-derivative columns ∂_i z and k second-order streams Σ_i C_ki ∂_ii z (a weighted
Laplacian per row of ``C``: ``C = [[1, .., 1]]`` is the Laplacian, ``[[0, 1, .., 1]]`` the
spatial Laplacian of a (t, x) problem, ``C = I`` the Hessian diagonal). Start: z = x,
∂_i z = e_i, second-order streams 0. A linear layer multiplies every stream by W and adds the
bias to z only; an elementwise σ maps

    z' = σ(z),   ∂_i z' = σ'(z) ∂_i z,   L_k' = σ'(z) L_k + σ''(z) Σ_i C_ki (∂_i z)².

This module owns its implementation (folx takes no weights and hides the per-layer streams).
Streams are stored as arrays of shape (n, S, width), stream 0 the value.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from .jaxutil import ACTIVATIONS


def dense_layers(params) -> list[tuple]:
    """[(kernel (in, out), bias (out,)), ...] of a flax ``MLP`` in layer order."""
    p = params["params"]
    names = sorted(p, key=lambda s: int(s.split("_")[-1]))
    return [(p[k]["kernel"], p[k]["bias"]) for k in names]


def with_layers(params, layers) -> dict:
    """A flax params tree with the kernels/biases replaced by ``layers``."""
    p = params["params"]
    names = sorted(p, key=lambda s: int(s.split("_")[-1]))
    return {"params": {k: {"kernel": W, "bias": b} for k, (W, b) in zip(names, layers)}}


def act_derivs(name: str, y):
    """σ(y), σ'(y), σ''(y) elementwise (nested jvps with a ones tangent)."""
    if name == "tanh":  # closed forms: one transcendental per element
        s = jnp.tanh(y)
        s1 = 1.0 - s * s
        return s, s1, -2.0 * s * s1
    if name == "sin":
        s, c = jnp.sin(y), jnp.cos(y)
        return s, c, -s
    act = ACTIVATIONS[name]
    ones = jnp.ones_like(y)
    d1 = lambda v: jax.jvp(act, (v,), (jnp.ones_like(v),))  # noqa: E731
    (s, s1), (_, s2) = jax.jvp(d1, (y,), (ones,))
    return s, s1, s2


def input_streams(X, C):
    """Initial streams (n, 1 + d_in + k, d_in): x, the unit vectors, zeros."""
    n, d = X.shape
    eye = jnp.broadcast_to(jnp.eye(d, dtype=X.dtype), (n, d, d))
    zero = jnp.zeros((n, C.shape[0], d), X.dtype)
    return jnp.concatenate([X[:, None, :], eye, zero], axis=1)


def forward(layers, X, C, activation: str = "tanh", perturb=None):
    """Push value/gradient/second-order streams through the MLP.

    Returns (out, inputs): ``out`` the final streams (n, S, n_out) and ``inputs`` the list of
    every layer's input streams (n, S, h_in). ``perturb`` (optional, one array per layer, shaped
    like that layer's output streams) is added to each layer's output: differentiating with
    respect to it gives the backpropagated stream gradients g_{n,s} of KFAC (REFERENCES 2.5).
    """
    C = jnp.asarray(C, X.dtype)
    d = X.shape[1]
    Z = input_streams(X, C)
    inputs = []
    # the bias acts on the value stream only: a one-hot row mask instead of a scatter (scatters
    # are slow on CPU, and the KFAC line search vmaps this function over 31 step sizes)
    value_row = (jnp.arange(Z.shape[1]) == 0).astype(X.dtype)[:, None]
    for li, (W, b) in enumerate(layers):
        inputs.append(Z)
        Y = Z @ W + value_row * b
        if perturb is not None:
            Y = Y + perturb[li]
        if li == len(layers) - 1:
            return Y, inputs
        s, s1, s2 = act_derivs(activation, Y[:, 0, :])
        grads = Y[:, 1:1 + d, :]
        sq = jnp.einsum("ki,nih->nkh", C, grads * grads)
        Z = jnp.concatenate([s[:, None, :], s1[:, None, :] * grads,
                             s1[:, None, :] * Y[:, 1 + d:, :] + s2[:, None, :] * sq], axis=1)
    raise ValueError("an MLP needs at least one layer")


def value_forward(layers, X, activation: str = "tanh", perturb=None):
    """Plain forward pass; returns (out (n, n_out), inputs per layer (n, h_in))."""
    act = ACTIVATIONS[activation]
    z, inputs = X, []
    for li, (W, b) in enumerate(layers):
        inputs.append(z)
        y = z @ W + b
        if perturb is not None:
            y = y + perturb[li]
        if li == len(layers) - 1:
            return y, inputs
        z = act(y)
    raise ValueError("an MLP needs at least one layer")


def laplacian_weights(n_in: int, time_dependent: bool, dtype=jnp.float32):
    """The (1, n_in) weight row of the spatial Laplacian (time is input 0 when present)."""
    w = [0.0] + [1.0] * (n_in - 1) if time_dependent else [1.0] * n_in
    return jnp.asarray([w], dtype)
