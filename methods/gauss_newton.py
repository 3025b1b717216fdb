"""Gauss-Newton optimizers of the KFAC paper's comparison: ENGD (full and layer-wise Gramian)
and Hessian-free, for forward-Laplacian PINNs (``pinn-fl``).

All three precondition the gradient of L = ½·pde_loss = ½|R|² with the Gramian G = JᵀJ of the
stacked residual R of ``methods/kfac.py`` (interior residuals scaled by sqrt(w_res/N), condition
residuals by sqrt(ω)); the residuals come from the forward Laplacian, so G is the ENGD Gramian
of the paper (which builds the Laplacian from the autodiff Hessian trace: the same numbers).

* ``engd`` — Müller & Zeinhofer, "Achieving High Accuracy with Physics-Informed Neural Networks
  via Energy Natural Gradients", ICML 2023, arXiv 2302.13163; as the KFAC paper's baseline
  (Dangel, Müller, Zeinhofer, NeurIPS 2024, arXiv 2405.15603, sec. 4): the dense D×D Gramian
  from the residual Jacobian (per-point gradients), an EMA of it (β = ``ema``, from zero or the
  identity), damping λ, the direction Δ = −(Ĝ + λI)⁻¹∇L and the paper's 31-point grid line
  search over α ∈ {2⁻³⁰, …, 2⁰}. The paper solves by least squares (``lstsq``); pinnbench's
  default ``solve = "cholesky"`` solves the damped system (SPD for λ > 0; a failed solve is
  not applied), ``"lstsq"`` is the paper's pseudo-inverse. Memory O(D²): refused above
  ``engd_max_params`` parameters (the paper's ENGD ran out of memory at D ≈ 1.2e5 on 24 GiB).
* ``engd-layerwise`` — the same with the block-diagonal Gramian (one block per layer's
  W̃ = [W; b]).
* ``hessian-free`` — Martens, "Deep learning via Hessian-free optimization", ICML 2010:
  matrix-free truncated conjugate gradients on (G + λI)x = −∇L with Gramian-vector products
  (a JVP and a VJP of R, never forming G), ``cg_iters`` iterations (stopped early, masked, at a
  relative residual ``cg_tol``), warm start from the previous solution × 0.95, the
  Levenberg-Marquardt damping rule of Martens sec. 4.1 (λ × 3/2 if ρ < 1/4, × 2/3 if ρ > 3/4,
  ρ = actual / predicted reduction), then the same grid line search. The KFAC paper ran
  ltatzel/PyTorchHessianFree (GGN products, CG backtracking); CG backtracking is not done here.

Loops and XLA's cost analysis: the line search (``lax.map``) and the CG iterations
(``lax.fori_loop``) are counted once by XLA; ``describe()`` reports the missing FLOPs as
``flops_correction`` (30 more loss evaluations; ``cg_iters`` − 1 more CG iterations, an upper
bound when CG stops early), which ``bench.measure.xla.step_flops`` adds.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree

from .forward_laplacian import dense_layers, value_forward, with_layers
from .kfac import ValueFields, damped, grid_line_search, loop_flops, model, model_reason, tilde, untilde
from .optim import Optimizer, register


def layer_blocks(pde, params) -> list[int]:
    """Parameters per layer (W̃ = [W; b]) of the forward-Laplacian MLP (``widths`` or
    ``width`` × ``depth``) on ``pde``; their sum is D."""
    widths = list(params.get("widths") or [params["width"]] * params["depth"])
    sizes = [pde.n_in] + widths + [pde.n_out]
    return [(a + 1) * b for a, b in zip(sizes[:-1], sizes[1:])]


def residual_jacobian(K, flat, unravel, batch):
    """J = ∂R/∂θ (n_residuals, D) of the stacked residual, one row per point: every residual
    depends on its own point only, so the rows are per-point gradients (``vmap`` of ``grad``),
    O(N·D) memory; ``jax.jacrev`` of the whole R would carry every point's tape for every
    row (70 GiB compiled on (4+1)-d heat, 3,500 points, D = 449)."""
    w = K.pde.weights.get("res", 1.0)
    Xi = batch["interior"]
    td = K.pde.time_dependent

    def r_int(v, x):
        return K.interior_residual(untilde(unravel(v)), x[None])[0][0]

    rows = [jax.vmap(jax.grad(r_int), (None, 0))(flat, Xi) * jnp.sqrt(w / Xi.shape[0])]
    for cond, X in zip(K.conds, batch["faces"]):
        def r_b(v, x, cond=cond):
            u, _ = value_forward(untilde(unravel(v)), x[None], K.activation)
            return K.pde.condition_residual(cond, ValueFields(u[:, 0], x[None], td))[0]

        rows.append(jax.vmap(jax.grad(r_b), (None, 0))(flat, X))
    Jb = jnp.concatenate(rows[1:]) * jnp.sqrt(K._omega(batch))[:, None]
    return jnp.concatenate([rows[0], Jb])


class _GaussNewton(Optimizer):
    """Shared by ENGD and Hessian-free: which methods and PDEs, the finite-step guard, the
    FLOP correction of the line search."""

    def supports(self, method_cls, pde=None, params=None):
        return model_reason(self.name, method_cls, pde, params)

    def apply(self, state, tl, direction, alpha, opt, metrics, half):
        """θ + α·direction unless it is not finite (then θ is kept: ``nonfinite_step``)."""
        update = [alpha * d for d in direction]
        finite = jnp.all(jnp.stack([jnp.all(jnp.isfinite(u)) for u in update]))
        update = [jnp.where(finite, u, 0.0) for u in update]
        new_layers = untilde([t + u for t, u in zip(tl, update)])
        metrics = {**metrics, "alpha": jnp.where(finite, alpha, 0.0),
                   "nonfinite_step": (~finite).astype(half.dtype)}
        return {**state, "params": with_layers(state["params"], new_layers), "opt": opt}, metrics

    def extra_loops(self, method) -> tuple[dict, str]:
        """{cost name: extra trips} not counted by XLA, and a note saying so."""
        return {"loss": 30}, ("flops_per_step counts the lax.map line-search body once; the true "
                              "count is flops_per_step + flops_correction (30 more loss evaluations)")

    def describe(self, method):
        trips, note = self.extra_loops(method)
        return {"optimizer": self.name, "objective": "L = 0.5 * pde_loss; reported loss = pde_loss",
                "step_size": "grid line search over 2^-30..2^0 (31 losses, lax.map)",
                **loop_flops(method, trips, note)}


class Engd(_GaussNewton):
    name = "engd"
    citation = ("Müller & Zeinhofer, ICML 2023, arXiv 2302.13163; baseline of Dangel, Müller, "
                "Zeinhofer, NeurIPS 2024, arXiv 2405.15603")
    #: untuned defaults (no best-run values of the paper for this optimizer are recorded in
    #: REFERENCES.md): damping as KFAC*'s K1 run, no EMA (β = 0), zero initialisation
    defaults = {"damping": 1e-10, "ema": 0.0, "init_factors": "zero", "solve": "cholesky",
                "engd_max_params": 20_000}
    choices = {"init_factors": ("zero", "identity"), "solve": ("cholesky", "lstsq")}
    blockwise = False

    def supports(self, method_cls, pde=None, params=None):
        reason = super().supports(method_cls, pde, params)
        if reason or pde is None or params is None:
            return reason
        D = sum(layer_blocks(pde, params))
        if D > params["engd_max_params"]:
            dt = 8  # float64, the paper's setting
            need = D * D * dt * (2 if params["ema"] else 1) / 2**30
            return (f"{self.name} forms the dense {D:,} x {D:,} Gramian ({need:.1f} GiB in float64); "
                    f"the limit is engd_max_params = {params['engd_max_params']:,} parameters "
                    f"(use engd-layerwise, hessian-free or kfac for this network)")
        return None

    def check(self, p, where):
        if not 0.0 <= p["ema"] < 1.0:
            raise ValueError(f"{where}.ema = {p['ema']} must be in [0, 1)")
        if p["damping"] < 0:
            raise ValueError(f"{where}.damping = {p['damping']} must be >= 0")
        if p["engd_max_params"] < 1:
            raise ValueError(f"{where}.engd_max_params = {p['engd_max_params']} must be >= 1")

    def _blocks(self, tl):
        sizes = [t.size for t in tl]
        return [sum(sizes)] if not self.blockwise else sizes

    def init(self, method, params):
        tl = tilde(dense_layers(params))
        fill = jnp.eye if method.params["init_factors"] == "identity" else (
            lambda k, dtype: jnp.zeros((k, k), dtype))
        return {"gram": [fill(k, dtype=tl[0].dtype) for k in self._blocks(tl)]}

    def step(self, method, state, batch):
        K, p = model(method), method.params
        tl = tilde(dense_layers(state["params"]))
        flat, unravel = ravel_pytree(tl)
        R_of = lambda v: K.stacked_residual(untilde(unravel(v)), batch)  # noqa: E731
        R = R_of(flat)
        J = residual_jacobian(K, flat, unravel, batch)  # (n_residuals, D)
        half = 0.5 * jnp.vdot(R, R)
        grad = J.T @ R
        beta, lam = p["ema"], p["damping"]
        grams, dirs, i0 = [], [], 0
        for old, k in zip(state["opt"]["gram"], self._blocks(tl)):
            Jb = J[:, i0:i0 + k]
            G = beta * old + (1.0 - beta) * (Jb.T @ Jb)
            grams.append(G)
            g = grad[i0:i0 + k]
            if p["solve"] == "lstsq":  # the paper's least-squares (pseudo-inverse) solve
                x = jnp.linalg.lstsq(G + lam * jnp.eye(k, dtype=G.dtype), g)[0]
            else:
                c = jnp.linalg.cholesky(damped(G, lam))
                x = jax.scipy.linalg.cho_solve((c, True), g)
            dirs.append(-x)
            i0 += k
        direction = unravel(jnp.concatenate(dirs))
        alpha = grid_line_search(K, tl, direction, batch, half)
        return self.apply(state, tl, direction, alpha, {"gram": grams}, {"loss": 2.0 * half}, half)


class EngdLayerwise(Engd):
    name = "engd-layerwise"
    citation = Engd.citation + " (layer-wise, block-diagonal Gramian variant)"
    defaults = {**Engd.defaults, "engd_max_params": 200_000}
    blockwise = True

    def supports(self, method_cls, pde=None, params=None):
        reason = _GaussNewton.supports(self, method_cls, pde, params)
        if reason or pde is None or params is None:
            return reason
        blocks = layer_blocks(pde, params)
        D = sum(blocks)
        if D > params["engd_max_params"]:
            need = sum(b * b for b in blocks) * 8 / 2**30
            return (f"{self.name} forms {len(blocks)} dense Gramian blocks ({need:.1f} GiB in float64) "
                    f"and the {D:,}-column Jacobian; the limit is engd_max_params = "
                    f"{params['engd_max_params']:,} parameters")
        return None


class HessianFree(_GaussNewton):
    name = "hessian-free"
    citation = ("Martens, 'Deep learning via Hessian-free optimization', ICML 2010; baseline of "
                "Dangel, Müller, Zeinhofer, NeurIPS 2024, arXiv 2405.15603")
    #: untuned defaults in Martens (2010)'s spirit (λ₀ = 1, 3/2 and 2/3 rule, decay 0.95)
    defaults = {"damping": 1.0, "cg_iters": 50, "cg_tol": 5e-4, "cg_decay": 0.95}

    def check(self, p, where):
        if p["damping"] <= 0:
            raise ValueError(f"{where}.damping = {p['damping']} must be > 0 (hessian-free's initial λ)")
        if p["cg_iters"] < 1 or not 0 < p["cg_tol"] < 1 or not 0 <= p["cg_decay"] <= 1:
            raise ValueError(f"{where}: cg_iters must be >= 1, cg_tol in (0, 1), cg_decay in [0, 1]")

    def init(self, method, params):
        layers = dense_layers(params)
        zero = jax.tree_util.tree_map(jnp.zeros_like, layers)
        return {"lm": jnp.asarray(method.params["damping"], layers[0][0].dtype), "x": zero}

    def step(self, method, state, batch):
        K, p = model(method), method.params
        layers = dense_layers(state["params"])
        tm = jax.tree_util.tree_map
        dot = lambda a, b: sum(jnp.vdot(x, y) for x, y in zip(jax.tree_util.tree_leaves(a),  # noqa: E731
                                                               jax.tree_util.tree_leaves(b)))
        half, g = jax.value_and_grad(lambda ls: K.half_loss(ls, batch))(layers)
        lam = state["opt"]["lm"]
        Av = lambda v: tm(lambda a, b: a + lam * b, K.gramian_vp(layers, batch, v), v)  # noqa: E731
        # truncated CG on (G + λI) x = -g from the decayed previous solution
        x0 = tm(lambda a: p["cg_decay"] * a, state["opt"]["x"])
        r0 = tm(lambda b, a: -b - a, g, Av(x0))
        gnorm = jnp.sqrt(dot(g, g))

        def body(_, c):
            x, r, d, rr, done = c
            Ad = Av(d)
            a = rr / jnp.where(dot(d, Ad) > 0, dot(d, Ad), 1.0)
            x_n = tm(lambda xi, di: xi + a * di, x, d)
            r_n = tm(lambda ri, ai: ri - a * ai, r, Ad)
            rr_n = dot(r_n, r_n)
            d_n = tm(lambda ri, di: ri + (rr_n / jnp.where(rr > 0, rr, 1.0)) * di, r_n, d)
            keep = lambda new, old: tm(lambda n_, o_: jnp.where(done, o_, n_), new, old)  # noqa: E731
            now_done = done | (jnp.sqrt(rr_n) <= p["cg_tol"] * gnorm)
            return (keep(x_n, x), keep(r_n, r), keep(d_n, d), jnp.where(done, rr, rr_n), now_done)

        rr0 = dot(r0, r0)
        x, _, _, rr, _ = jax.lax.fori_loop(0, p["cg_iters"], body,
                                           (x0, r0, r0, rr0, jnp.sqrt(rr0) <= p["cg_tol"] * gnorm))
        # Levenberg-Marquardt: ρ = actual / predicted reduction at the full CG step
        Gx = K.gramian_vp(layers, batch, x)
        predicted = dot(g, x) + 0.5 * dot(x, Gx)
        trial = K.half_loss(tm(lambda a, b: a + b, layers, x), batch)
        rho = (trial - half) / jnp.where(predicted < 0, predicted, -1.0)
        rho = jnp.where(jnp.isfinite(rho), rho, 0.0)
        lam = jnp.where(rho < 0.25, lam * 1.5, jnp.where(rho > 0.75, lam * (2.0 / 3.0), lam))
        tl = tilde(layers)
        direction = tilde(x)
        alpha = grid_line_search(K, tl, direction, batch, half)
        finite_x = tm(lambda a: jnp.where(jnp.isfinite(a), a, 0.0), x)
        return self.apply(state, tl, direction, alpha, {"lm": lam, "x": finite_x},
                          {"loss": 2.0 * half, "lm_damping": lam, "rho": rho,
                           "cg_rel_residual": jnp.sqrt(rr) / jnp.where(gnorm > 0, gnorm, 1.0)}, half)

    def extra_loops(self, method):
        n = method.params["cg_iters"]
        return ({"loss": 30, "gvp": n - 1},
                f"flops_per_step counts the lax.map line-search body and the CG loop body once; the "
                f"true count is at most flops_per_step + flops_correction (30 more loss "
                f"evaluations, {n - 1} more Gramian-vector products; fewer when CG stops early)")


register(Engd())
register(EngdLayerwise())
register(HessianFree())
