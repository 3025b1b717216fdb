"""Vanilla PINN in PyTorch: the same network, initialisation, sampling scheme and PDE code as
``pinn`` (methods/pinn.py), derivatives by nested ``torch.autograd.grad(create_graph=True)``.

PyTorch is what most PINN users run (DeepXDE, PINNacle, the KFAC-PINN reference code); this
method makes the JAX-vs-PyTorch question answerable on the same cases. The PDE residuals are
the same code: ``TorchFields`` hands out derivatives with ``xp = torch``, and ``pde_loss``
(methods/base.py) only uses ``*`` and ``.mean()``. Initialisation matches flax's
``glorot_normal`` exactly (a normal truncated at ±2σ, rescaled to variance 2/(fan_in + fan_out)),
zero biases; Adam (β = 0.9, 0.999, ε = 1e-8, the optax defaults).

The torch protocol differs from the JAX one in three ways (bench/backends/torch.py drives it):
``init(seed)`` and ``sample(seed)`` take integer seeds, ``step`` updates the model in place
(eager, not jitted) and returns loss tensors without synchronising, and ``self.device`` is set
by the worker before ``init``. torch is an optional dependency: it is imported lazily.
"""

from __future__ import annotations

import math

from pdes import Fields

from .base import TorchMethod, pde_loss


def _torch():
    try:
        import torch
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ValueError(PinnTorch.missing_requirement() or f"method pinn-torch: {e}") from e
    return torch


class TorchFields(Fields):
    """Pointwise derivatives of ``model`` at points ``X`` by nested reverse-mode autograd.

    The input gradient of every intermediate partial is cached, so ``d(i, 2)`` for all i costs
    one gradient of u plus one gradient per axis (the fwdrev pattern of ``pinn``).
    """

    def __init__(self, model, X, time_dependent: bool):
        torch = _torch()
        X = X if X.requires_grad else X.detach().requires_grad_(True)
        super().__init__(torch, [X[:, i] for i in range(X.shape[1])], time_dependent)
        self.torch, self.X = torch, X
        self.out = model(X)
        self._full: dict = {}

    def _input_grad(self, prefix, c):
        key = (prefix, c)
        if key not in self._full:
            y = self.partial(prefix, c)
            self._full[key] = self.torch.autograd.grad(y.sum(), self.X, create_graph=True)[0]
        return self._full[key]

    def _partial(self, idx, c):
        if not idx:
            return self.out[:, c]
        return self._input_grad(tuple(idx[:-1]), c)[:, idx[-1]]


def _activation(torch, name):
    if name == "tanh":
        return torch.nn.Tanh()
    if name == "gelu":  # flax nn.gelu defaults to the tanh approximation
        return torch.nn.GELU(approximate="tanh")

    class Sin(torch.nn.Module):
        def forward(self, x):
            return torch.sin(x)

    return Sin()


def build_mlp(n_in: int, widths: list[int], activation: str, dtype, seed: int):
    """tanh MLP with flax-identical Glorot-normal (truncated) weights and zero biases."""
    torch = _torch()
    gen = torch.Generator().manual_seed(int(seed))
    layers, k = [], n_in
    for i, w in enumerate(widths):
        lin = torch.nn.Linear(k, w, dtype=dtype)
        std = math.sqrt(2.0 / (k + w)) / 0.87962566103423978
        with torch.no_grad():
            lin.weight.copy_(torch.nn.init.trunc_normal_(
                torch.empty(w, k, dtype=dtype), 0.0, std, -2 * std, 2 * std, generator=gen))
            lin.bias.zero_()
        layers.append(lin)
        if i < len(widths) - 1:
            layers.append(_activation(torch, activation))
        k = w
    return torch.nn.Sequential(*layers)


class PinnTorch(TorchMethod):
    name = "pinn-torch"
    description = "vanilla PINN in PyTorch: MLP on (t, x), nested torch.autograd.grad"
    citation = "Raissi et al. 2019; same configuration as pinn (SPINN paper baseline)"
    requires = (("torch", "pip install torch==2.13.0 (the CPU wheel; or pip install -e '.[torch]')"),)
    points_kind = "random"
    defaults = {"width": 128, "depth": 4, "activation": "tanh", "engine": "autograd"}
    native_optimizers = ("adam",)  # torch.optim.Adam (β = 0.9, 0.999, ε = 1e-8: the optax defaults)
    choices = {"activation": ("tanh", "sin", "gelu"),
               "engine": ("autograd",)}

    def __init__(self, pde, n_per_axis, params=None, dtype="float32"):
        super().__init__(pde, n_per_axis, params, dtype)
        self.conds = pde.conditions()
        self.bounds = pde.bounds()
        self.n_interior = self.n_per_axis ** pde.n_in
        self.n_face = self.n_per_axis ** (pde.n_in - 1)

    @property
    def tdtype(self):
        torch = _torch()
        return {"float32": torch.float32, "float64": torch.float64}[self.dtype]

    def widths(self):
        p = self.params
        return [p["width"]] * p["depth"] + [self.pde.n_out]

    def init(self, seed):
        torch = _torch()
        model = build_mlp(self.pde.n_in, self.widths(), self.params["activation"], self.tdtype,
                          seed).to(self.device)
        return {"model": model, "opt": torch.optim.Adam(model.parameters(), lr=self.params["lr"])}

    def load_flax(self, state, flax_params):
        """Copy a flax ``MLP``'s params (kernel (in, out)) into the torch model, in place."""
        torch = _torch()
        import numpy as np

        p = flax_params["params"]
        names = sorted(p, key=lambda s: int(s.split("_")[-1]))
        lins = [m for m in state["model"] if isinstance(m, torch.nn.Linear)]
        with torch.no_grad():
            for lin, n in zip(lins, names):
                lin.weight.copy_(torch.as_tensor(np.array(p[n]["kernel"]).T))
                lin.bias.copy_(torch.as_tensor(np.array(p[n]["bias"])))
        return state

    def _uniform(self, gen, n):
        torch = _torch()
        lo = torch.tensor([b[0] for b in self.bounds], dtype=self.tdtype)
        hi = torch.tensor([b[1] for b in self.bounds], dtype=self.tdtype)
        return (lo + (hi - lo) * torch.rand(n, len(self.bounds), generator=gen,
                                            dtype=self.tdtype)).to(self.device)

    def sample(self, seed):
        torch = _torch()
        gen = torch.Generator().manual_seed(int(seed))
        interior = self._uniform(gen, self.n_interior)
        faces = []
        for cond in self.conds:
            X = self._uniform(gen, self.n_face)
            b = self.bounds[cond.axis]
            X[:, cond.axis] = b[0] if cond.side == "lo" else b[1]
            faces.append(X)
        return {"interior": interior, "faces": faces}

    def loss(self, model, batch):
        td = self.pde.time_dependent
        cf = [(c, TorchFields(model, X, td)) for c, X in zip(self.conds, batch["faces"])]
        return pde_loss(self.pde, TorchFields(model, batch["interior"], td), cf)

    def step(self, state, batch):
        opt = state["opt"]
        opt.zero_grad(set_to_none=True)
        loss, terms = self.loss(state["model"], batch)
        loss.backward()
        opt.step()
        return state, {"loss": loss.detach(), **{k: v.detach() for k, v in terms.items()}}

    def predict(self, state, points):
        torch = _torch()
        with torch.no_grad():
            out = state["model"](points)
        return out[:, 0] if self.pde.n_out == 1 else out

    def n_params(self, state) -> int:
        return int(sum(p.numel() for p in state["model"].parameters()))

    def size_info(self):
        return {"n_points": self.n_interior, "n_points_kind": "random",
                "n_condition_points": self.n_face * len(self.conds)}

    def describe(self):
        return {"derivatives": "nested torch.autograd.grad(create_graph=True), input gradient "
                               "cached per partial (fwdrev-like: one grad per axis)",
                "boundary_loss": "mean over faces of per-face MSE",
                "execution": "eager PyTorch (no torch.compile)"}
