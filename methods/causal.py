"""Causal training for PINNs: temporal weights that let later times train only after earlier ones.

Wang, Sankaran, Perdikaris, "Respecting causality is all you need for training
physics-informed neural networks", arXiv 2203.07404 (CMAME 421, 2024), sec. 3-4, re-implemented
from the paper and REFERENCES.md 2.3 (no code of the authors' repositories is used).

The interior points are laid out on N_t time slices t_1 < ... < t_Nt. With the slice losses
L_i = mean over slice i of r^2 (summed over residual components) the weights are

    w_i = exp(-eps * (c + sum_{k<i} L_k)),      eq. (3.6) of the paper,

held constant under differentiation (``stop_gradient``), and the loss is

    L = w_res * mean_i(w_i L_i) + lambda_ic * L_ic + sum_other_groups w_g L_g.

Variant "a" (Allen-Cahn notebook, jaxpi) has c = 0, so w_1 = 1 and the IC loss stays outside
the exponent; variant "b" (KS and NS scripts) puts c = lambda_ic * L_ic inside it. At eps = 0
every weight is 1 and L is the plain PINN loss of ``methods.base.pde_loss`` (equal slice sizes).

eps schedule: the list ``eps`` (paper: [1e-2, 1e-1, 1, 10, 100]); every ``check_every`` steps
(paper: 1000) the step moves to the next eps once min_i w_i > ``tol`` (0.99), the paper's
convergence indicator; ``max_steps_per_eps`` optionally forces the move (paper: 200k steps).
With ``stop = "schedule_end"`` training stops once the last eps passes the test: the step then
leaves parameters and optimizer state unchanged and reports ``stop = 1`` (the worker ends the
run there). The schedule lives in the training state (``state["causal"]``), so the step stays
a pure jitted function of (state, batch). Every step reports ``min_w`` and ``eps``.

Periodic inputs: with ``fourier_modes = M > 0`` every periodic input axis of the PDE
(``pde.periodic_axes``, period = its bounds) enters the network as
[1, cos(k w x), sin(k w x)]_{k=1..M}, w = 2 pi / period (paper sec. 4, "exact periodicity"),
and that axis' boundary conditions are dropped because the embedding satisfies them exactly.
Without the embedding a periodic PDE keeps its Dirichlet data like the plain PINN.

Two methods share this: ``causal`` (plain PINN MLP, random points on N_t sorted time slices)
and ``spinn-causal`` (SPINN: the grid's time axis is sorted and is the slice axis, so L_i is the
mean of r^2 over the other axes of the residual grid).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import optax

from pdes import as_tuple

from .jaxutil import face_value
from .optim import optax_step
from .pinn import Pinn, PinnFields
from .spinn import Spinn

DEFAULT_EPS = [1e-2, 1e-1, 1.0, 10.0, 100.0]

CAUSAL_DEFAULTS = {
    "eps": list(DEFAULT_EPS),      # the schedule; one value = fixed eps
    "tol": 0.99,                   # advance when min_i w_i > tol
    "check_every": 100,            # steps between schedule checks (paper: 1000)
    "max_steps_per_eps": 0,        # 0 = no limit (paper: up to 200k per eps)
    "stop": "none",                # "schedule_end": stop when the last eps passes the test
    "variant": "a",                # "a": IC outside the exponent; "b": lambda_ic*L_ic inside
    "ic_weight": 0.0,              # lambda_ic; 0 = the PDE's default IC weight
    "fourier_modes": 0,            # M of the periodic embedding; 0 = off
    "lr_decay": 1.0,               # Adam lr x lr_decay every decay_steps (paper: 0.9 / 5000)
    "decay_steps": 5000,
}
CAUSAL_CHOICES = {"stop": ("none", "schedule_end"), "variant": ("a", "b")}


def exclusive_cumsum(v):
    """(0, v_1, v_1 + v_2, ...): the (M L)_i of the paper with M strictly lower-triangular."""
    return jnp.concatenate([jnp.zeros_like(v[:1]), jnp.cumsum(v[:-1])])


def causal_weights(slice_losses, eps, offset=0.0):
    """w_i = exp(-eps * (offset + sum_{k<i} L_k)), with no gradient flowing through them.

    The running sum is made monotone with ``cummax`` so that w stays non-increasing in i even
    if a parallel-prefix ``cumsum`` rounds differently between neighbours (L_k >= 0, so
    this changes nothing in exact arithmetic). w is floored at the dtype's smallest normal
    number, so it stays in (0, 1].
    """
    L = jax.lax.stop_gradient(slice_losses)
    s = jax.lax.cummax(exclusive_cumsum(L) + jax.lax.stop_gradient(offset), axis=0)
    # floor at the smallest normal number: exp(-eps * s) underflows to 0 in float32 for
    # eps * s > ~87; the floor keeps w in (0, 1] (and log(min w) finite on the curves) while
    # such a slice still contributes nothing measurable
    return jnp.maximum(jnp.exp(-eps * s), jnp.finfo(s.dtype).tiny)


def condition_terms(pde, cond_fields) -> dict:
    """Condition losses per group: mean over the group's faces of the face MSE (as pde_loss)."""
    groups: dict[str, list] = {}
    for cond, f in cond_fields:
        groups.setdefault(cond.group, []).append(
            sum((r * r).mean() for r in as_tuple(pde.condition_residual(cond, f))))
    return {g: sum(v) / len(v) for g, v in groups.items()}


def fourier_embed(x, lo: float, hi: float, modes: int):
    """[1, cos(k w (x - lo)), sin(k w (x - lo))]_{k=1..modes}, w = 2 pi / (hi - lo): (n, 2M+1)."""
    k = jnp.arange(1, modes + 1, dtype=x.dtype)
    ang = (2.0 * math.pi / (hi - lo)) * (x[:, None] - lo) * k[None, :]
    return jnp.concatenate([jnp.ones_like(x[:, None]), jnp.cos(ang), jnp.sin(ang)], axis=1)


class CausalTraining:
    """Mixin: causal weights, eps schedule and stop rule over a JaxMethod's loss.

    The host class implements ``slice_losses(params, batch) -> (L (n_t,), cond_terms)``.
    """

    optimizer_steps = False  # its step carries the causal schedule: first-order optimizers only

    curve_keys = ("min_w", "eps")

    @classmethod
    def supports(cls, pde):
        if not pde.time_dependent:
            return "causal weighting needs a time-dependent PDE"
        return None

    @classmethod
    def resolve_params(cls, params):
        p = super().resolve_params(params)
        eps = p["eps"]
        if not eps or not all(isinstance(e, (int, float)) and not isinstance(e, bool)
                              and math.isfinite(e) and e >= 0 for e in eps):
            raise ValueError(f"method.{cls.name}.eps = {eps!r} must be a non-empty list of "
                             "non-negative numbers")
        p["eps"] = [float(e) for e in eps]
        if not 0 < p["tol"] <= 1:
            raise ValueError(f"method.{cls.name}.tol = {p['tol']!r} must be in (0, 1]")
        for k in ("check_every", "decay_steps"):
            if p[k] < 1:
                raise ValueError(f"method.{cls.name}.{k} = {p[k]!r} must be >= 1")
        for k in ("max_steps_per_eps", "fourier_modes"):
            if p[k] < 0:
                raise ValueError(f"method.{cls.name}.{k} = {p[k]!r} must be >= 0")
        if p["ic_weight"] < 0 or not 0 < p["lr_decay"] <= 1:
            raise ValueError(f"method.{cls.name}: ic_weight must be >= 0 and lr_decay in (0, 1] "
                             f"(got {p['ic_weight']!r}, {p['lr_decay']!r})")
        return p

    def _setup_causal(self):
        p, pde = self.params, self.pde
        self.periodic = tuple(pde.periodic_axes) if p["fourier_modes"] else ()
        if p["fourier_modes"] and not self.periodic:
            raise ValueError(f"method.{self.name}.fourier_modes = {p['fourier_modes']} needs a PDE "
                             f"with periodic axes; {pde.name!r} has none (valid: 0)")
        # the embedding makes u periodic, so the faces of those axes carry no information
        self.conds = [c for c in pde.conditions()
                      if not (c.group == "bc" and c.axis in self.periodic)]
        self.ic_weight = p["ic_weight"] or pde.weights.get("ic", 1.0)
        self.eps_values = jnp.asarray(p["eps"], self.jdtype)

    def learning_rate(self):
        p = self.params
        if p["lr_decay"] != 1.0:
            return optax.exponential_decay(p["lr"], p["decay_steps"], p["lr_decay"], staircase=True)
        return p["lr"]

    def init(self, key):
        params = self.trainable_init(key)
        zero = jnp.zeros((), jnp.int32)
        return {"params": params, "opt": self.optimizer().init(self, params),
                "causal": {"idx": zero, "at_eps": zero, "step": zero,
                           "done": jnp.zeros((), bool)}}

    def weighting(self, slice_losses, cond, eps):
        offset = self.ic_weight * cond["ic"] if (self.params["variant"] == "b"
                                                 and "ic" in cond) else 0.0
        return causal_weights(slice_losses, eps, offset)

    def loss(self, params, batch, eps=None):
        """(total, (terms, w)); ``eps`` defaults to the first value of the schedule."""
        eps = self.eps_values[0] if eps is None else eps
        sl, cond = self.slice_losses(params, batch)
        w = self.weighting(sl, cond, eps)
        res_w = (w * sl).mean()
        weights = {**self.pde.weights, "ic": self.ic_weight}
        total = weights.get("res", 1.0) * res_w
        for g, v in cond.items():
            total = total + weights.get(g, 1.0) * v
        return total, ({"res": sl.mean(), "res_causal": res_w, **cond}, w)

    def step(self, state, batch):
        p, c = self.params, state["causal"]
        eps = self.eps_values[c["idx"]]
        params, opt, loss, (terms, w) = optax_step(self.transform(), self.objective,
                                                    state["params"], state["opt"], batch, eps)
        done = c["done"]
        keep = lambda new, old: jnp.where(done, old, new)  # noqa: E731
        params = jax.tree_util.tree_map(keep, params, state["params"])
        opt = jax.tree_util.tree_map(keep, opt, state["opt"])
        min_w = w.min()
        count = c["step"] + jnp.where(done, 0, 1)
        at_eps = c["at_eps"] + jnp.where(done, 0, 1)
        passed = (min_w > p["tol"]) & (count % p["check_every"] == 0)
        last = c["idx"] == len(p["eps"]) - 1
        forced = (at_eps >= p["max_steps_per_eps"]) if p["max_steps_per_eps"] else False
        advance = (passed | forced) & ~last & ~done
        finish = passed & last & (p["stop"] == "schedule_end") & ~done
        causal = {"idx": c["idx"] + advance.astype(jnp.int32),
                  "at_eps": jnp.where(advance, 0, at_eps), "step": count,
                  "done": done | finish}
        metrics = {"loss": loss, **terms, "min_w": min_w, "eps": eps,
                   "stop": causal["done"].astype(self.jdtype)}
        return {"params": params, "opt": opt, "causal": causal}, metrics

    def _causal_describe(self) -> dict:
        p = self.params
        return {"causal": {"variant": p["variant"], "eps_schedule": p["eps"], "tol": p["tol"],
                           "check_every": p["check_every"], "stop": p["stop"],
                           "ic_weight": self.ic_weight,
                           "max_steps_per_eps": p["max_steps_per_eps"]},
                "periodic": ({"axes": list(self.periodic), "how": "Fourier input embedding",
                              "modes": p["fourier_modes"]} if self.periodic
                             else "none (conditions as the PDE gives them)"),
                "boundary_loss": "mean over faces of per-face MSE"}


class CausalPinn(CausalTraining, Pinn):
    name = "causal"
    description = "causal PINN: plain PINN with time-slice weights w_i = exp(-eps sum_{k<i} L_k)"
    citation = "Wang, Sankaran, Perdikaris, arXiv 2203.07404 (CMAME 2024)"
    points_kind = "time-slices"
    defaults = {**Pinn.defaults, **CAUSAL_DEFAULTS, "n_t": 0, "layout": "slices"}
    choices = {**Pinn.choices, **CAUSAL_CHOICES, "layout": ("slices", "chunks")}

    def __init__(self, pde, n_per_axis, params=None, dtype="float32"):
        super().__init__(pde, n_per_axis, params, dtype)
        self._setup_causal()
        self.n_t = self.params["n_t"] or self.n_per_axis
        if self.n_t < 1 or self.n_interior % self.n_t:
            raise ValueError(f"method.causal.n_t = {self.n_t} must divide the {self.n_interior} "
                             f"interior points (n_per_axis ** {pde.n_in}); valid: a divisor, "
                             "or 0 for n_per_axis")
        self.n_x = self.n_interior // self.n_t

    def embed(self, X):
        if not self.periodic:
            return X
        cols = []
        for a, (lo, hi) in enumerate(self.bounds):
            if a in self.periodic:
                cols.append(fourier_embed(X[:, a], lo, hi, self.params["fourier_modes"]))
            else:
                cols.append(X[:, a:a + 1])
        return jnp.concatenate(cols, axis=1)

    def apply(self, params, X):
        return self.net.apply(params, self.embed(X))

    def init_params(self, key):
        return self.net.init(key, self.embed(jnp.zeros((1, self.pde.n_in), self.jdtype)))

    def sample(self, key):
        """Faces as the PINN; interior: n_t sorted times x n_x points ("slices": one time per
        slice, as the KS/NS scripts; "chunks": i.i.d. points sorted by t, as jaxpi)."""
        batch = super().sample(key)
        k_t, k_x = jax.random.split(jax.random.fold_in(key, 0x5EED))
        (t0, t1), space = self.bounds[0], self.bounds[1:]
        if self.params["layout"] == "slices":
            t = jnp.sort(t0 + (t1 - t0) * jax.random.uniform(k_t, (self.n_t,), self.jdtype))
            lo = jnp.array([b[0] for b in space], self.jdtype)
            hi = jnp.array([b[1] for b in space], self.jdtype)
            x = lo + (hi - lo) * jax.random.uniform(k_x, (self.n_interior, len(space)), self.jdtype)
            X = jnp.concatenate([jnp.repeat(t, self.n_x)[:, None], x], axis=1)
        else:
            X = batch["interior"]
            X = X[jnp.argsort(X[:, 0])]
        batch["interior"] = X
        return batch

    def slice_losses(self, params, batch):
        apply = lambda X: self.apply(params, X)  # noqa: E731
        td = self.pde.time_dependent
        f = PinnFields(apply, batch["interior"], td)
        sl = sum((r.reshape(self.n_t, self.n_x) ** 2).mean(axis=1)
                 for r in as_tuple(self.pde.residual(f)))
        cf = [(c, PinnFields(apply, X, td)) for c, X in zip(self.conds, batch["faces"])]
        return sl, condition_terms(self.pde, cf)

    def predict_params(self, params, points):
        out = self.apply(params, points)
        return out[:, 0] if self.pde.n_out == 1 else out

    def size_info(self):
        return {**super().size_info(), "n_points_kind": "time-slices", "n_t": self.n_t,
                "n_x": self.n_x}

    def describe(self):
        return {**super().describe(), **self._causal_describe(),
                "layout": f"{self.params['layout']}: {self.n_t} sorted times x {self.n_x} points"}


class SpinnCausal(CausalTraining, Spinn):
    name = "spinn-causal"
    description = "SPINN with causal weights over the grid's (sorted) time axis"
    citation = "Cho et al., NeurIPS 2023 + Wang, Sankaran, Perdikaris, arXiv 2203.07404"
    points_kind = "grid"
    defaults = {**Spinn.defaults, **CAUSAL_DEFAULTS}
    choices = {**Spinn.choices, **CAUSAL_CHOICES}

    def __init__(self, pde, n_per_axis, params=None, dtype="float32"):
        super().__init__(pde, n_per_axis, params, dtype)
        self._setup_causal()
        self.n_t = self.n_per_axis

    def embed_axis(self, a: int, x):
        if a in self.periodic:
            lo, hi = self.bounds[a]
            return fourier_embed(x, lo, hi, self.params["fourier_modes"])
        return x[:, None]

    def init_params(self, key):
        keys = jax.random.split(key, self.pde.n_in)
        x = jnp.zeros((1,), self.jdtype)
        return [self.net.init(k, self.embed_axis(a, x)) for a, k in enumerate(keys)]

    def axis_features(self, params, a: int, x, k: int = 0):
        fn = lambda x: self.net.apply(params[a], self.embed_axis(a, x))  # noqa: E731
        for _ in range(k):
            fn = (lambda f: lambda x: jax.jvp(f, (x,), (jnp.ones_like(x),))[1])(fn)
        return fn(x)

    def sample(self, key):
        batch = super().sample(key)
        batch["axes"][0] = jnp.sort(batch["axes"][0])
        return batch

    def slice_losses(self, params, batch):
        axes = batch["axes"]
        feats: dict = {}
        interior = self.fields(params, axes, feats)
        sl = sum(jnp.broadcast_to(r * r, (self.n_per_axis,) * len(axes)).reshape(
            self.n_per_axis, -1).mean(axis=1) for r in as_tuple(self.pde.residual(interior)))
        cf = []
        for cond in self.conds:
            face_axes = list(axes)
            face_axes[cond.axis] = jnp.full((1,), face_value(self.bounds, cond.axis, cond.side),
                                            self.jdtype)
            tags = ["int"] * len(axes)
            tags[cond.axis] = cond.side
            cf.append((cond, self.fields(params, face_axes, feats, tags)))
        return sl, condition_terms(self.pde, cf)

    def describe(self):
        return {**super().describe(), **self._causal_describe(),
                "layout": f"grid: {self.n_t} sorted times x {self.n_per_axis}^{self.pde.dim} points"}


__all__ = ["CausalPinn", "SpinnCausal", "causal_weights", "condition_terms", "fourier_embed",
           "exclusive_cumsum"]
