"""KFAC for PINNs (optimizer `kfac`) and its adaptive variant (`kfac-star`), hand-rolled in JAX.

Dangel, Müller, Zeinhofer, "Kronecker-Factored Approximate Curvature for Physics-Informed
Neural Networks", NeurIPS 2024, arXiv 2405.15603 (sec. 3-4; REFERENCES.md 2.5). The network is
the PINN's (tanh MLP, linear last layer; same flax params as ``pinn``/``pinn-fl``); the
objective is ``pinn``'s loss, L = ½·pde_loss = ½[w_res·mean(r²) + Σ_b ω_b·rb_b²], whose
Gauss-Newton matrix is the Gramian G = Jᵀ J of the stacked residual
R = (sqrt(w_res/N)·r, sqrt(ω)·rb) (the ENGD Gramian).

Both are optimizers of the registry (``methods/optim.py``) that train any forward-Laplacian
PINN (``pinn-fl``); the method names ``kfac`` and ``kfac-star`` are presets of ``pinn-fl`` with
that optimizer (:class:`KfacPinn`), so old suite files and records keep working. One step
(pure and jittable, timed as one step by the worker):

1. **Interior factors (KFAC-expand).** The forward Laplacian (methods/forward_laplacian.py)
   gives every layer's S = d_in + 2 input streams Z_{n,s} (value with a trailing 1; the d_in
   derivative columns and the Laplacian with a trailing 0: the bias acts on the value only).
   One backward pass of the residual through additive zero perturbations of every layer's
   output streams gives g_{n,s} = ∂r_n/∂(output stream s). Then A_Ω = 1/(N·S) Σ Z Zᵀ and
   B_Ω = w_res/N Σ g gᵀ (cross terms s ≠ s' dropped).
2. **Boundary factors** (textbook KFAC on u): A_∂ = Σ ω z̃z̃ᵀ / Σ ω, B_∂ = Σ ω g gᵀ with
   z̃ the layer input plus a trailing 1 and g = ∂u/∂(layer output). All condition groups (for
   heat: IC and BC) form this one term, each point weighted by its share ω_b of ``pde_loss``
   (w_g / (faces in group × points on face)); the paper likewise merges IC and BC into one
   term because the method assumes exactly two.
3. The loss gradient per layer is assembled from the same streams (∂L/∂W̃ = Σ r·Z gᵀ ...).
4. **EMA** Â ← βÂ + (1−β)A (factors start at the identity, or zero), **damping** λ added to
   all four factors; pinnbench raises λ per factor to the rounding floor k·eps·max|diag|
   (``damping_floor``), which only binds in float32 (the paper's λ = 1.5e-12 is for float64:
   in float32 rank-deficient factors round to negative eigenvalues and the Cholesky fails).
5. **Exact solve** of (Ã_Ω⊗B̃_Ω + Ã_∂⊗B̃_∂) vec(X) = vec(∇) per layer. W̃ is stored as
   (h_in+1, h_out) (flax ``x @ W``), vec is row-major, so (A⊗B) vec(X) = vec(A X B) with A on
   the input side. With A_1 = L Lᵀ (Cholesky) and (E, s) the eigensystem of
   L⁻¹ A_2 L⁻ᵀ, K = L⁻ᵀ E satisfies Kᵀ A_1 K = I and Kᵀ A_2 K = diag(s), so
   X = K_A [(K_Aᵀ ∇ K_B) ⊘ (1 + s_A s_Bᵀ)] K_Bᵀ. Direction Δ = −X.
6. ``kfac``: momentum buffer ← μ·buffer + Δ, then the paper's grid line search: the loss on the
   current batch at α ∈ {2⁻³⁰, …, 2⁰} (31 values), α* the argmin, or 0 if none beats the
   current loss. ``line_search = "map"`` (default) evaluates them in ``lax.map``: on a 2-core
   CPU the vmapped or unrolled forms were 15-20x slower (an XLA CPU pathology, measured);
   XLA's cost analysis counts the map body once, so ``describe()`` reports the missing FLOPs
   (``flops_correction``). ``"vmap"`` is the natural choice on a GPU (untested here).
   ``kfac-star`` (Martens & Grosse 2015, sec. 7): δ = αΔ + μδ_prev with (α, μ) minimising
   L + δᵀ∇L + ½δᵀ(G + λI)δ under the exact Gramian, from two JVPs of R and a 2×2 solve;
   first step α = 1e-6, μ = 0. pinnbench adds a safeguard (``reject_increase``, default on):
   a step that does not lower the batch loss is rejected, the momentum restarted and the
   quadratic model's damping multiplied by 10 (divided by 1.5 after each accepted step, down to
   ``damping``), a Levenberg-Marquardt rule in the spirit of Martens & Grosse sec. 6.5.

Float64 is the paper's setting (damping down to 1e-14); suites set ``dtype = "float64"``; a
float32 case runs (with the damping floor above) and records its dtype. A step whose update is
not finite is never applied (θ kept, momentum restarted; step metric ``nonfinite_step``).
``optimizer = "adam"`` on a preset is ``pinn-fl`` itself: a suite asking for it gets the case
name ``pinn-fl`` (``methods.canonical``).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from pdes import Fields, as_tuple

from . import xla_cost
from .forward_laplacian import dense_layers, forward, laplacian_weights, value_forward, with_layers
from .optim import Optimizer, register
from .pinn_fl import PinnFL

LS_EXPONENTS = tuple(range(-30, 1))  # the paper's logarithmic grid 2^-30 .. 2^0


class StreamFields(Fields):
    """Fields from final forward-Laplacian streams (n, S, 1): u, first derivatives, Laplacian."""

    def __init__(self, Y, X, time_dependent: bool):
        super().__init__(jnp, [X[:, i] for i in range(X.shape[1])], time_dependent)
        self.Y = Y

    def _partial(self, idx, c):
        if c != 0:
            raise ValueError("kfac supports scalar PDEs only (n_out = 1)")
        if len(idx) == 0:
            return self.Y[:, 0, 0]
        if len(idx) == 1:
            return self.Y[:, 1 + idx[0], 0]
        raise ValueError(f"kfac: the residual asks for the derivative {idx}; only u, first "
                         "derivatives and the (spatial) Laplacian come from the KFAC streams")

    def lap(self, c: int = 0):
        return self.Y[:, -1, 0]


class ValueFields(Fields):
    """Fields that serve only u (boundary/initial terms)."""

    def __init__(self, u, X, time_dependent: bool):
        super().__init__(jnp, [X[:, i] for i in range(X.shape[1])], time_dependent)
        self._u = u

    def _partial(self, idx, c):
        if idx or c:
            raise ValueError("kfac: condition residuals may use u only (Dirichlet/initial data)")
        return self._u


# -- linear algebra ------------------------------------------------------------------------------
def _congruence(A1, A2):
    """K, s with Kᵀ A1 K = I and Kᵀ A2 K = diag(s) (A1 SPD, A2 symmetric)."""
    L = jnp.linalg.cholesky(A1)
    Li = jax.scipy.linalg.solve_triangular(L, jnp.eye(A1.shape[0], dtype=A1.dtype), lower=True)
    M = Li @ A2 @ Li.T
    s, E = jnp.linalg.eigh(0.5 * (M + M.T))
    return Li.T @ E, s


def kron_sum_solve(A1, B1, A2, B2, G):
    """X with A1 X B1 + A2 X B2 = G, i.e. (A1⊗B1 + A2⊗B2) vec(X) = vec(G) (row-major vec).

    A1, B1 SPD; A2, B2 symmetric positive semi-definite (REFERENCES.md 2.5).
    """
    KA, sA = _congruence(A1, A2)
    KB, sB = _congruence(B1, B2)
    return KA @ ((KA.T @ G @ KB) / (1.0 + sA[:, None] * sB[None, :])) @ KB.T


def damping_floor(M):
    """The smallest damping that keeps the Cholesky of a rounded Gram matrix ``M`` defined:
    k·eps·max|diag M| (k = size, eps of M's dtype), the textbook bound on rounding in a k×k
    Gram matrix. The factors of a network wider than the batch is deep are rank-deficient, and
    in float32 rounding pushes their smallest eigenvalues below zero (-1e-7, measured on
    (2+1)-d heat, 64 points, width 128): the paper's damping (1.5e-12, set for float64)
    cannot lift them, the Cholesky returns NaN, and the training dies. In float64 the floor is
    ~3e-14·max|diag|, below the paper's damping for the factor scales seen here."""
    k = M.shape[0]
    return k * jnp.finfo(M.dtype).eps * jnp.max(jnp.abs(jnp.diagonal(M)))


def damped(M, lam):
    """M + max(λ, damping_floor(M))·I."""
    return M + jnp.maximum(lam, damping_floor(M)) * jnp.eye(M.shape[0], dtype=M.dtype)


# -- the model KFAC needs from a method --------------------------------------------------------
class KfacModel:
    """The residuals, Gramian products and Kronecker factors of a forward-Laplacian PINN
    (``pinn-fl``: a dense MLP whose streams KFAC-expand reads). Built once per method
    instance (:func:`model`); pure functions of the network's layers and the batch."""

    def __init__(self, method):
        self.method = method
        self.pde, self.conds = method.pde, method.conds
        self.activation = method.params["activation"]
        with jax.ensure_compile_time_eval():  # built lazily, maybe inside a trace: keep it concrete
            self.lap_w = laplacian_weights(method.pde.n_in, method.pde.time_dependent)
        self.group_w: dict = {}
        for c in self.conds:
            self.group_w.setdefault(c.group, []).append(c)

    def _omega(self, batch):
        """Per-point weight of every boundary point in pde_loss (concatenated face order)."""
        out = []
        for cond, X in zip(self.conds, batch["faces"]):
            w = self.pde.weights.get(cond.group, 1.0) / (len(self.group_w[cond.group]) * X.shape[0])
            out.append(jnp.full((X.shape[0],), w, X.dtype))
        return jnp.concatenate(out)

    def interior_residual(self, layers, X, perturb=None):
        """(r (n,), layer input streams) from the forward Laplacian."""
        C = self.lap_w.astype(X.dtype)
        Y, inputs = forward(layers, X, C, self.activation, perturb)
        r = as_tuple(self.pde.residual(StreamFields(Y, X, self.pde.time_dependent)))
        if len(r) != 1:
            raise ValueError("kfac supports a single residual")
        return r[0], inputs

    def boundary_residual(self, layers, faces, perturb=None):
        """(rb (n_b,) over the concatenated faces, layer inputs)."""
        Xb = jnp.concatenate(faces)
        u, inputs = value_forward(layers, Xb, self.activation, perturb)
        out, i0 = [], 0
        for cond, X in zip(self.conds, faces):
            f = ValueFields(u[i0:i0 + X.shape[0], 0], X, self.pde.time_dependent)
            out.append(self.pde.condition_residual(cond, f))
            i0 += X.shape[0]
        return jnp.concatenate(out), inputs

    def half_loss(self, layers, batch):
        """L = ½·pde_loss from the KFAC residuals (the line-search objective)."""
        r, _ = self.interior_residual(layers, batch["interior"])
        rb, _ = self.boundary_residual(layers, batch["faces"])
        w = self.pde.weights.get("res", 1.0)
        return 0.5 * (w * jnp.mean(r * r) + jnp.sum(self._omega(batch) * rb * rb))

    def stacked_residual(self, layers, batch):
        """R with ½|R|² = L: (sqrt(w_res/N)·r, sqrt(ω)·rb); its Jacobian gives G = JᵀJ."""
        r, _ = self.interior_residual(layers, batch["interior"])
        rb, _ = self.boundary_residual(layers, batch["faces"])
        w = self.pde.weights.get("res", 1.0)
        return jnp.concatenate([jnp.sqrt(w / r.shape[0]) * r, jnp.sqrt(self._omega(batch)) * rb])

    def gramian_vp(self, layers, batch, v):
        """G v = Jᵀ(J v) for the exact Gramian (v: list of W̃-shaped pairs like ``layers``)."""
        R = lambda ls: self.stacked_residual(ls, batch)  # noqa: E731
        _, Jv = jax.jvp(R, (layers,), (v,))
        return jax.vjp(R, layers)[1](Jv)[0]

    def curvature(self, layers, batch):
        """Per layer (A_Ω, B_Ω, A_∂, B_∂, ∇L as W̃ (h_in+1, h_out)), plus L and loss terms."""
        Xi, faces = batch["interior"], batch["faces"]
        n, S = Xi.shape[0], Xi.shape[1] + 2
        w_res = self.pde.weights.get("res", 1.0)
        pert = [jnp.zeros((n, S, W.shape[1]), Xi.dtype) for W, _ in layers]
        r, vjp_i, ins = jax.vjp(lambda p: self.interior_residual(layers, Xi, p), pert, has_aux=True)
        g_int = vjp_i(jnp.ones_like(r))[0]
        om = self._omega(batch)
        rb, bnd = self.boundary_curvature(layers, faces, om)
        e0 = jnp.broadcast_to((jnp.arange(S) == 0).astype(Xi.dtype)[None, :, None], (n, S, 1))
        out = []
        for Z, g, (A_b, B_b, grad_b) in zip(ins, g_int, bnd):
            Za = jnp.concatenate([Z, e0], axis=2)
            A_i = jnp.einsum("nsi,nsj->ij", Za, Za) / (n * S)
            B_i = (w_res / n) * jnp.einsum("nso,nsp->op", g, g)
            grad = (w_res / n) * jnp.einsum("nsi,nso->io", Za * r[:, None, None], g) + grad_b
            out.append((A_i, B_i, A_b, B_b, grad))
        half = 0.5 * (w_res * jnp.mean(r * r) + jnp.sum(om * rb * rb))
        terms = {"res": jnp.mean(r * r)}
        i0 = 0
        for cond, X in zip(self.conds, faces):
            mse = jnp.mean(rb[i0:i0 + X.shape[0]] ** 2) / len(self.group_w[cond.group])
            terms[cond.group] = terms.get(cond.group, 0.0) + mse
            i0 += X.shape[0]
        return out, half, terms

    def boundary_curvature(self, layers, faces, om):
        """rb and per layer (A_∂, B_∂, boundary part of ∇L) for points ``faces`` (one array per
        condition, in order) with per-point loss weights ``om``."""
        nb = sum(X.shape[0] for X in faces)
        dt = faces[0].dtype
        pert = [jnp.zeros((nb, W.shape[1]), dt) for W, _ in layers]
        rb, vjp_b, ins = jax.vjp(lambda p: self.boundary_residual(layers, faces, p), pert,
                                 has_aux=True)
        g_b = vjp_b(jnp.ones_like(rb))[0]
        out = []
        for z, gb in zip(ins, g_b):
            za = jnp.concatenate([z, jnp.ones((nb, 1), dt)], axis=1)
            A_b = jnp.einsum("n,ni,nj->ij", om, za, za) / jnp.sum(om)
            B_b = jnp.einsum("n,no,np->op", om, gb, gb)
            grad_b = jnp.einsum("ni,no->io", za * (om * rb)[:, None], gb)
            out.append((A_b, B_b, grad_b))
        return rb, out


def model(method) -> KfacModel:
    """The :class:`KfacModel` of ``method`` (built once per method instance)."""
    m = method.__dict__.get("_kfac_model")
    if m is None:
        m = method.__dict__["_kfac_model"] = KfacModel(method)
    return m


def tilde(layers):
    """[(W, b)] -> [W̃ = [W; b]] (h_in+1, h_out) per layer."""
    return [jnp.concatenate([W, b[None, :]], axis=0) for W, b in layers]


def untilde(mats):
    return [(M[:-1], M[-1]) for M in mats]


def pde_reason(pde) -> str | None:
    """Why KFAC's factors cannot be built for ``pde`` (None: they can)."""
    if pde.n_out != 1:
        return f"needs a scalar PDE (n_out = 1), {pde.name} has {pde.n_out}"
    if any(c.residual is not None for c in pde.conditions()):
        return "needs Dirichlet/initial conditions u = g (no custom condition residuals)"
    return residual_reason(pde)


def residual_reason(pde) -> str | None:
    """Why the residual cannot be formed from the KFAC streams (u, first derivatives and the
    Laplacian; e.g. Klein-Gordon's u_tt), found by tracing it on abstract streams (no compute)."""
    n = pde.n_in

    def probe():
        Y, X = jnp.zeros((2, n + 2, 1)), jnp.zeros((2, n))
        return as_tuple(pde.residual(StreamFields(Y, X, pde.time_dependent)))

    try:
        jax.eval_shape(probe)
    except ValueError as e:
        msg = str(e)
        return msg[len("kfac: "):] if msg.startswith("kfac: ") else msg
    return None


#: activations the forward-Laplacian streams (and so the Gramian's factors) propagate through
ACTIVATIONS = ("tanh", "sin")


def model_reason(opt_name: str, method_cls, pde=None, params=None) -> str | None:
    """Why optimizer ``opt_name``, which needs :class:`KfacModel` (the forward-Laplacian streams
    of a dense tanh/sin MLP: ``pinn-fl`` and its presets), cannot train ``method_cls`` on
    ``pde`` with ``params`` (None: it can)."""
    if not issubclass(method_cls, PinnFL):
        return (f"{opt_name} needs the forward-Laplacian streams of a dense MLP "
                f"(method pinn-fl or its presets kfac, kfac-star), not {method_cls.name!r}")
    if params is not None and params.get("activation") not in ACTIVATIONS:
        return (f"{opt_name} needs activation {' or '.join(ACTIVATIONS)} (the forward-Laplacian "
                f"streams), not {params.get('activation')!r}")
    return pde_reason(pde) if pde is not None else None


def grid_line_search(K, tl, direction, batch, half, mode: str = "map"):
    """The KFAC paper's line search: the batch loss L = ``K.half_loss`` at α ∈ {2⁻³⁰, …, 2⁰}
    along ``direction`` (W̃ matrices from ``tl``); α* the argmin, 0 if none beats ``half``.
    ``mode``: "map" (sequential; XLA's cost analysis counts the body once, see the optimizers'
    ``flops_correction``), "vmap", or "unrolled" (31 copies in the graph, all counted)."""
    alphas = 2.0 ** jnp.asarray(LS_EXPONENTS, half.dtype)

    def trial(a):
        return K.half_loss(untilde([t + a * d for t, d in zip(tl, direction)]), batch)

    if mode == "map":
        losses = jax.lax.map(trial, alphas)
    elif mode == "vmap":
        losses = jax.vmap(trial)(alphas)
    else:
        losses = jnp.stack([trial(alphas[i]) for i in range(len(LS_EXPONENTS))])
    best = jnp.argmin(jnp.where(jnp.isfinite(losses), losses, jnp.inf))
    return jnp.where(losses[best] < half, alphas[best], 0.0)


def loop_flops(method, trips: dict[str, int], note: str) -> dict:
    """The FLOPs a step's loops hide from XLA's cost analysis, which counts a ``lax.map`` /
    ``fori_loop`` body once (REFERENCES.md 4.3): ``trips`` = {"loss": extra loss evaluations,
    "gvp": extra Gramian-vector products}; each is costed once (compiled on abstract shapes)
    and ``flops_correction`` = sum of cost x trips. ``note`` says what is hidden. Best effort:
    without a cost analysis only the note is returned."""
    key = jax.random.PRNGKey(0)
    K = model(method)
    programs = {"loss": lambda q, b: K.half_loss(dense_layers(q), b),
                "gvp": lambda q, b: K.gramian_vp(dense_layers(q), b, dense_layers(q))}
    try:
        params = jax.eval_shape(method.init_params, key)
        batch = jax.eval_shape(method.sample, key)
        costs = {k: xla_cost.flops(jax.jit(programs[k]).lower(params, batch).compile()) for k in trips}
    except Exception as e:  # cost analysis is best effort
        return {"flops_note": f"{note}; loop FLOPs unavailable ({type(e).__name__})"}
    out = {"flops_note": note, "line_search_loss_flops": costs.get("loss")}
    known = all(costs[k] is not None for k in trips)
    out["flops_correction"] = float(sum(costs[k] * n for k, n in trips.items())) if known else None
    return out


# -- the optimizers ----------------------------------------------------------------------------
class KfacOptimizer(Optimizer):
    """``kfac``: KFAC-expand direction, momentum and the paper's grid line search (module
    docstring, step 6). Defaults: the paper's best K1 (2-64-1) KFAC run (REFERENCES.md 2.5 /
    4.6)."""

    name = "kfac"
    citation = "Dangel, Müller, Zeinhofer, NeurIPS 2024, arXiv 2405.15603 (sec. 3-4)"
    defaults = {"damping": 1.544e-12, "ema": 0.4496, "momentum": 0.5118,
                "init_factors": "identity", "line_search": "map", "reject_increase": True}
    choices = {"init_factors": ("identity", "zero"), "line_search": ("map", "vmap", "unrolled")}

    def supports(self, method_cls, pde=None, params=None):
        return model_reason(self.name, method_cls, pde, params)

    def check(self, p, where):
        if not 0.0 <= p["ema"] < 1.0:
            raise ValueError(f"{where}.ema = {p['ema']} must be in [0, 1)")
        if p["damping"] < 0 or p["momentum"] < 0:
            raise ValueError(f"{where}: damping and momentum must be >= 0")
        if p["init_factors"] == "zero" and p["damping"] == 0:
            raise ValueError(f"{where}: init_factors = 'zero' needs damping > 0")

    def init(self, method, params):
        layers = dense_layers(params)
        fill = jnp.eye if method.params["init_factors"] == "identity" else (
            lambda k, dtype: jnp.zeros((k, k), dtype))
        dt = layers[0][0].dtype
        factors = [tuple(fill(k, dtype=dt) for k in (W.shape[0] + 1, W.shape[1]) * 2)
                   for W, _ in layers]
        zeros = [jnp.zeros((W.shape[0] + 1, W.shape[1]), dt) for W, _ in layers]
        return {"factors": factors, "mom": zeros, "step": jnp.zeros((), jnp.int32)}

    @staticmethod
    def directions(p, opt, curv):
        """EMA the factors and solve the damped Kronecker sums: (new factors, Δ per layer)."""
        beta, lam = p["ema"], p["damping"]
        new_f, deltas = [], []
        for old, (A_i, B_i, A_b, B_b, grad) in zip(opt["factors"], curv):
            f = tuple(beta * o + (1.0 - beta) * x for o, x in zip(old, (A_i, B_i, A_b, B_b)))
            new_f.append(f)
            deltas.append(-kron_sum_solve(*(damped(M, lam) for M in f), grad))
        return new_f, deltas

    def step(self, method, state, batch):
        K, p, opt = model(method), method.params, state["opt"]
        params = state["params"]
        layers = dense_layers(params)
        curv, half, terms = K.curvature(layers, batch)
        factors, deltas = self.directions(p, opt, curv)
        tl = tilde(layers)
        update, mom, extra, new_opt = self.update(method, K, batch, tl, curv, half, deltas, opt)
        # never apply a non-finite step (a failed solve): keep θ, restart the momentum
        finite = jnp.all(jnp.stack([jnp.all(jnp.isfinite(u)) for u in update]))
        update = [jnp.where(finite, u, 0.0) for u in update]
        mom = [jnp.where(finite, m, 0.0) for m in mom]
        extra["nonfinite_step"] = (~finite).astype(half.dtype)
        new_layers = untilde([t + u for t, u in zip(tl, update)])
        new_opt = {**new_opt, "factors": factors, "mom": mom, "step": opt["step"] + 1}
        return ({**state, "params": with_layers(params, new_layers), "opt": new_opt},
                {"loss": 2.0 * half, **terms, **extra})

    def update(self, method, K, batch, tl, curv, half, deltas, opt):
        """Momentum and the grid line search: (update, momentum, metrics, other opt state)."""
        p = method.params
        mom = [p["momentum"] * m + d for m, d in zip(opt["mom"], deltas)]
        alpha = grid_line_search(K, tl, mom, batch, half, p["line_search"])
        return [alpha * m for m in mom], mom, {"alpha": alpha}, {}

    def describe(self, method):
        p = method.params
        d = {"optimizer": self.name,
             "objective": "L = 0.5 * pde_loss (mean residual^2 + per-group mean of face MSEs); "
                          "reported loss = pde_loss",
             "curvature": "KFAC-expand interior factors from forward-Laplacian streams; one "
                          "boundary Kronecker term (all condition groups, weighted as in "
                          "pde_loss); EMA, damping, exact Kronecker-sum solve (Cholesky + eigh)",
             "damping_floor": "per factor max(damping, size*eps*max|diag|): in practice binds in float32 "
                              "only (pinnbench addition); non-finite updates are not applied"}
        d.update(self.step_facts(method, p))
        return d

    def step_facts(self, method, p) -> dict:
        d = {"step_size": (f"momentum + grid line search over 2^-30..2^0 (31 losses, "
                           f"{p['line_search']})")}
        if p["line_search"] == "map":
            d.update(loop_flops(method, {"loss": 30}, (
                "flops_per_step counts the lax.map line-search body once; the true count is "
                "flops_per_step + flops_correction (30 more loss evaluations)")))
        return d


class KfacStarOptimizer(KfacOptimizer):
    """``kfac-star``: the KFAC direction with Martens & Grosse's adaptive (α, μ) from the exact
    Gramian (module docstring, step 6). Defaults: the paper's best K1 KFAC* run
    (REFERENCES.md 2.5); ``momentum`` is unused."""

    name = "kfac-star"
    citation = ("Dangel, Müller, Zeinhofer, NeurIPS 2024, arXiv 2405.15603; Martens & Grosse, "
                "ICML 2015, sec. 7")
    defaults = {**KfacOptimizer.defaults, "damping": 1.2e-10, "ema": 0.926}

    def init(self, method, params):
        opt = super().init(method, params)
        opt["lm"] = jnp.asarray(method.params["damping"], opt["mom"][0].dtype)
        return opt

    def update(self, method, K, batch, tl, curv, half, deltas, opt):
        p = method.params
        grads = [c[4] for c in curv]
        prev, lm = opt["mom"], opt["lm"]
        alpha, mu = self._adaptive(K, untilde(tl), batch, deltas, prev, grads, opt["step"], lm)
        update = [alpha * d + mu * q for d, q in zip(deltas, prev)]
        extra = {"alpha": alpha, "mu": mu}
        if p["reject_increase"]:
            # safeguard (pinnbench, not in the paper): the exact-Gramian quadratic model with
            # tiny damping can propose a step that blows up (seen on K1 near step 480); keep θ
            # and restart the momentum when the loss does not decrease
            trial = K.half_loss(untilde([t + u for t, u in zip(tl, update)]), batch)
            ok = jnp.isfinite(trial) & (trial <= half)
            update = [jnp.where(ok, u, 0.0) for u in update]
            extra["rejected"] = (~ok).astype(half.dtype)
            # Levenberg-Marquardt-style: raise the model damping on a rejection, relax it back
            # towards ``damping`` after accepted steps
            lm = jnp.where(ok, jnp.maximum(lm / 1.5, p["damping"]), jnp.maximum(10.0 * lm, 1e-12))
        extra["model_damping"] = lm
        return update, update, extra, {"lm": lm}

    @staticmethod
    def _adaptive(K, layers, batch, deltas, prev, grads, step, lam):
        """Martens & Grosse (2015) sec. 7: (α, μ) from the exact quadratic model, 2×2 solve."""
        R = lambda ls: K.stacked_residual(ls, batch)  # noqa: E731
        _, jvp = jax.linearize(R, layers)
        Jd, Jp = jvp(untilde(deltas)), jvp(untilde(prev))
        dot = lambda a, b: sum(jnp.vdot(x, y) for x, y in zip(a, b))  # noqa: E731
        m11 = jnp.vdot(Jd, Jd) + lam * dot(deltas, deltas)
        m12 = jnp.vdot(Jd, Jp) + lam * dot(deltas, prev)
        m22 = jnp.vdot(Jp, Jp) + lam * dot(prev, prev)
        b1, b2 = dot(deltas, grads), dot(prev, grads)
        first = step == 0
        det = m11 * m22 - m12 * m12
        safe = jnp.where(first | (det <= 0), 1.0, det)
        alpha = jnp.where(first, 1e-6, (-m22 * b1 + m12 * b2) / safe)
        mu = jnp.where(first, 0.0, (m12 * b1 - m11 * b2) / safe)
        # a degenerate 2×2 system (e.g. δ_prev ∥ Δ): fall back to the 1-d model along Δ
        alpha = jnp.where(~first & (det <= 0), -b1 / jnp.where(m11 > 0, m11, 1.0), alpha)
        mu = jnp.where(~first & (det <= 0), 0.0, mu)
        return alpha, mu

    def step_facts(self, method, p):
        d = {"step_size": "Martens-Grosse adaptive (alpha, mu) from exact Gramian JVPs"}
        if p["reject_increase"]:
            d["safeguard"] = ("a step that does not lower the batch loss is rejected, the "
                              "momentum restarted and the model damping x10 (/1.5 after "
                              "accepted steps); pinnbench addition, one extra loss eval")
        return d


register(KfacOptimizer())
register(KfacStarOptimizer())


# -- the presets: suite names for pinn-fl trained by KFAC / KFAC* --------------------------------
class KfacPinn(PinnFL):
    """``kfac`` = ``pinn-fl`` with ``optimizer = "kfac"`` (one computation, one case id: a suite
    asking for pinn-fl with that optimizer gets this name, see ``methods.canonical``)."""

    name = "kfac"
    preset_of = "pinn-fl"
    description = "PINN trained by KFAC (forward-Laplacian KFAC-expand factors, line search)"
    citation = "Dangel, Müller, Zeinhofer, NeurIPS 2024, arXiv 2405.15603"
    defaults = {**PinnFL.defaults, "optimizer": "kfac"}
    choices = {**PinnFL.choices, "activation": ACTIVATIONS}

    @classmethod
    def supports(cls, pde):
        return super().supports(pde) or pde_reason(pde)

    @classmethod
    def supports_inverse(cls, pde):
        return "kfac's curvature blocks and line search cover the network's layers only, not PDE coefficients"


class KfacStarPinn(KfacPinn):
    """``kfac-star`` = ``pinn-fl`` with ``optimizer = "kfac-star"``."""

    name = "kfac-star"
    description = "PINN trained by KFAC* (KFAC direction, Martens-Grosse adaptive alpha and mu)"
    defaults = {**PinnFL.defaults, "optimizer": "kfac-star"}
