"""Forward-Laplacian PINN: the vanilla PINN whose derivatives come from one forward pass.

Same network, initialisation, sampling and loss as ``pinn`` (methods/pinn.py); only the
derivative engine differs. The value, the d_in first derivatives and the spatial Laplacian are
pushed through the MLP together (Li et al., arXiv 2307.08214; the derivative engine of Dangel,
Müller, Zeinhofer, NeurIPS 2024, arXiv 2405.15603; REFERENCES.md 2.2), so no Hessian tape is
built. ``u``, first derivatives (``d(i, 1)``, ``dt()``) and ``lap()`` come from that pass;
``d(i, 2)`` from a second forward pass carrying the Hessian diagonal; mixed and higher
derivatives fall back to reverse-mode AD (``PinnFields``).

Its role in pinnbench: it separates how much of SPINN's advantage comes from forward-mode AD
and how much from separability.

Size knobs beyond ``pinn``: ``n_interior`` / ``n_boundary`` (0 = the ``pinn`` defaults
N^{d_in} and N^{d_in-1} per face) set the point counts directly, as the KFAC paper does (e.g.
3000 / 500 on the (4+1)-d heat problem); ``n_boundary`` is split evenly over the condition
groups (IC, BC) and then over the faces of each group. ``widths`` (a list, empty = ``width`` ×
``depth``) sets uneven hidden widths such as the paper's 5-64-64-48-48-1.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from .base import pde_loss
from .forward_laplacian import dense_layers, forward, laplacian_weights
from .jaxutil import MLP, face_value, uniform
from .pinn import Pinn, PinnFields


class FLFields(PinnFields):
    """Fields served from forward-Laplacian streams (fallback: reverse-mode AD)."""

    def __init__(self, apply, X, time_dependent: bool, layers, activation: str):
        super().__init__(apply, X, time_dependent)
        self.layers, self.activation = layers, activation
        self._streams: dict = {}

    def streams(self, kind: str):
        """(n, S, n_out) streams: kind "lap" (spatial Laplacian) or "diag" (Hessian diagonal)."""
        if kind not in self._streams:
            n_in = self.X.shape[1]
            C = (laplacian_weights(n_in, self.time_dependent, self.X.dtype) if kind == "lap"
                 else jnp.eye(n_in, dtype=self.X.dtype))
            self._streams[kind] = forward(self.layers, self.X, C, self.activation)[0]
        return self._streams[kind]

    def _partial(self, idx, c):
        n_in = self.X.shape[1]
        if len(idx) == 0:  # plain forward pass unless the streams are already there
            if "lap" in self._streams:
                return self._streams["lap"][:, 0, c]
            return self.apply(self.X)[:, c]
        if len(idx) == 1:
            return self.streams("lap")[:, 1 + idx[0], c]
        if len(idx) == 2 and idx[0] == idx[1]:
            return self.streams("diag")[:, 1 + n_in + idx[0], c]
        return super()._partial(idx, c)

    def lap(self, c: int = 0):
        key = ("lap", int(c))
        if key not in self._cache:
            self._cache[key] = self.streams("lap")[:, -1, c]
        return self._cache[key]


class PinnFL(Pinn):
    name = "pinn-fl"
    description = "PINN with forward-Laplacian derivatives (value, gradient, Laplacian in one pass)"
    citation = ("Li et al., arXiv 2307.08214; Dangel, Müller, Zeinhofer, NeurIPS 2024, "
                "arXiv 2405.15603 (derivative engine)")
    defaults = {**Pinn.defaults, "engine": "forward-laplacian", "n_interior": 0, "n_boundary": 0,
                "widths": []}
    #: the forward Laplacian (and KFAC's factors) propagate through dense tanh layers only:
    #: ``mlp = "modified"`` (the gated ModifiedMLP) is refused at suite validation
    choices = {**Pinn.choices, "engine": ("forward-laplacian",), "mlp": ("plain",)}

    def __init__(self, pde, n_per_axis, params=None, dtype="float32"):
        super().__init__(pde, n_per_axis, params, dtype)
        p = self.params
        if p["n_interior"] < 0 or p["n_boundary"] < 0:
            raise ValueError(f"method.{self.name}: n_interior / n_boundary must be >= 0 "
                             f"(got {p['n_interior']}, {p['n_boundary']})")
        if p["widths"]:  # uneven hidden widths, e.g. the KFAC paper's 5-64-64-48-48-1
            w = p["widths"]
            if not all(isinstance(k, int) and not isinstance(k, bool) and k > 0 for k in w):
                raise ValueError(f"method.{self.name}.widths = {w!r} must be positive integers")
            self.net = MLP(list(w) + [pde.n_out], p["activation"], self.jdtype)
        if p["n_interior"]:
            self.n_interior = p["n_interior"]
        self.face_counts = [self.n_face] * len(self.conds)
        if p["n_boundary"]:
            groups: dict[str, list[int]] = {}
            for i, c in enumerate(self.conds):
                groups.setdefault(c.group, []).append(i)
            per_group = p["n_boundary"] // max(len(groups), 1)
            for idx in groups.values():
                for i in idx:
                    self.face_counts[i] = max(per_group // len(idx), 1)

    def sample(self, key):
        keys = jax.random.split(key, len(self.conds) + 1)
        faces = []
        for cond, k, n in zip(self.conds, keys[1:], self.face_counts):
            X = uniform(k, n, self.bounds, self.jdtype)
            faces.append(X.at[:, cond.axis].set(face_value(self.bounds, cond.axis, cond.side)))
        return {"interior": uniform(keys[0], self.n_interior, self.bounds, self.jdtype),
                "faces": faces}

    def fields(self, params, X):
        apply = lambda Y: self.net.apply(params, Y)  # noqa: E731
        return FLFields(apply, X, self.pde.time_dependent, dense_layers(params),
                        self.params["activation"])

    def loss(self, params, batch):
        cf = [(c, self.fields(params, X)) for c, X in zip(self.conds, batch["faces"])]
        return pde_loss(self.pde, self.fields(params, batch["interior"]), cf)

    def size_info(self):
        return {"n_points": self.n_interior, "n_points_kind": "random",
                "n_condition_points": int(sum(self.face_counts))}

    def describe(self):
        return {"derivatives": "forward Laplacian (own implementation: value, d_in gradient "
                               "columns, spatial Laplacian in one pass; d_ii via a Hessian-diagonal "
                               "pass; mixed derivatives by reverse-mode AD)",
                "boundary_loss": "mean over faces of per-face MSE"}
