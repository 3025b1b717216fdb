"""ENGD, layer-wise ENGD, Hessian-free (methods/gauss_newton.py) and L-BFGS (methods/optim.py):
dense linear algebra, convergence where Gauss-Newton must converge, refusals."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree

jax.config.update("jax_enable_x64", True)

import methods  # noqa: E402
import pdes  # noqa: E402
from bench import suite  # noqa: E402
from methods.forward_laplacian import dense_layers  # noqa: E402
from methods.kfac import model, tilde, untilde  # noqa: E402

CURVATURE = ("engd", "engd-layerwise", "hessian-free")


def _linear(opt, **extra):
    """pinn-fl with no hidden layer on (2+1)-d heat: u = w·x + b is linear in θ, so L(θ) is a
    convex quadratic ½|Aθ - c|² and Gauss-Newton is Newton's method: one step reaches the
    minimum (α = 2^0 is on the line-search grid)."""
    M = methods.get("pinn-fl")(pdes.build("heat", 2), 4, {"depth": 0, "optimizer": opt, **extra},
                               "float64")
    return M, M.init(jax.random.PRNGKey(0)), M.sample(jax.random.PRNGKey(1))


def _least_squares_min(M, state, batch):
    K = model(M)
    tl = tilde(dense_layers(state["params"]))
    flat, unravel = ravel_pytree(tl)
    R_of = lambda v: K.stacked_residual(untilde(unravel(v)), batch)  # noqa: E731
    A = np.asarray(jax.jacfwd(R_of)(flat))
    c = -np.asarray(R_of(jnp.zeros_like(flat)))
    x = np.linalg.lstsq(A, c, rcond=None)[0]
    r = A @ x - c
    return float(r @ r)  # = pde_loss at the minimum (loss = 2 · ½|R|²)


@pytest.mark.parametrize("opt", CURVATURE)
def test_gauss_newton_methods_solve_a_quadratic_pinn_loss(opt):
    M, state, batch = _linear(opt, damping=1e-12) if opt != "hessian-free" else _linear(
        opt, damping=1e-10, cg_iters=20, cg_tol=1e-12)
    best = _least_squares_min(M, state, batch)
    step = jax.jit(M.step)
    first = None
    for _ in range(3):
        state, m = step(state, batch)
        first = float(m["loss"]) if first is None else first
    _, m = step(state, batch)  # the loss reported is the one before the step
    assert float(m["loss"]) < first
    np.testing.assert_allclose(float(m["loss"]), best, rtol=1e-6, atol=1e-12)


@pytest.mark.parametrize("opt", ["lbfgs", "sgd"])
def test_first_order_and_lbfgs_lower_a_small_pinn_loss(opt):
    M = methods.get("pinn-fl")(pdes.build("poisson", 2), 4, {"widths": [8], "optimizer": opt,
                                                             "lr": 1e-2}, "float64")
    state, batch = M.init(jax.random.PRNGKey(0)), M.sample(jax.random.PRNGKey(1))
    step = jax.jit(M.step)
    losses = []
    for _ in range(20):
        state, m = step(state, batch)
        losses.append(float(m["loss"]))
    assert np.isfinite(losses).all() and losses[-1] < 0.5 * losses[0], losses


@pytest.mark.parametrize("opt", ["engd", "engd-layerwise"])
def test_engd_update_equals_a_dense_solve(opt):
    """One step's direction is -(G + λI)⁻¹∇L with G the dense (or block-diagonal) Gramian
    from the autodiff Jacobian of the stacked residual."""
    M = methods.get("pinn-fl")(pdes.build("poisson", 2), 3,
                               {"widths": [5, 4], "optimizer": opt, "damping": 1e-3}, "float64")
    state, batch = M.init(jax.random.PRNGKey(0)), M.sample(jax.random.PRNGKey(1))
    K = model(M)
    tl = tilde(dense_layers(state["params"]))
    flat, unravel = ravel_pytree(tl)
    J = np.asarray(jax.jacrev(lambda v: K.stacked_residual(untilde(unravel(v)), batch))(flat))
    R = np.asarray(K.stacked_residual(untilde(tl), batch))
    G = J.T @ J
    if opt == "engd-layerwise":
        mask = np.zeros_like(G)
        i = 0
        for t in tl:
            mask[i:i + t.size, i:i + t.size] = 1
            i += t.size
        G = G * mask
    want = -np.linalg.solve(G + 1e-3 * np.eye(len(flat)), J.T @ R)
    new, m = jax.jit(M.step)(state, batch)
    moved = ravel_pytree(tilde(dense_layers(new["params"])))[0] - flat
    alpha = float(m["alpha"])
    assert alpha > 0
    np.testing.assert_allclose(np.asarray(moved), alpha * want, rtol=1e-7, atol=1e-12)


def test_hessian_free_cg_solves_the_gramian_system_to_its_tolerance():
    M = methods.get("pinn-fl")(pdes.build("poisson", 2), 3,
                               {"widths": [5, 4], "optimizer": "hessian-free", "damping": 1e-2,
                                "cg_iters": 200, "cg_tol": 1e-8}, "float64")
    state, batch = M.init(jax.random.PRNGKey(0)), M.sample(jax.random.PRNGKey(1))
    K = model(M)
    layers = dense_layers(state["params"])
    flat, unravel = ravel_pytree(tilde(layers))
    J = np.asarray(jax.jacrev(lambda v: K.stacked_residual(untilde(unravel(v)), batch))(flat))
    g = J.T @ np.asarray(K.stacked_residual(layers, batch))
    A = J.T @ J + 1e-2 * np.eye(len(flat))
    new, m = jax.jit(M.step)(state, batch)
    x = np.asarray(ravel_pytree(tilde(new["opt"]["x"]))[0])
    assert float(m["cg_rel_residual"]) <= 1e-8
    assert np.linalg.norm(A @ x + g) <= 1e-8 * np.linalg.norm(g) * 1.0001
    np.testing.assert_allclose(x, np.linalg.solve(A, -g), rtol=1e-5, atol=1e-10)


def test_engd_on_a_network_too_large_is_a_one_line_error():
    raw = {"pde": "heat", "dim": 4, "methods": ["pinn-fl"],
           "method": {"pinn-fl": {"optimizer": "engd", "widths": [256, 256, 256]}}}
    with pytest.raises(suite.SuiteError) as e:
        suite.parse(raw, "t")
    msg = str(e.value)
    assert "\n" not in msg and "engd" in msg and "Gramian" in msg and "GiB" in msg
    assert "engd_max_params = 20,000" in msg
    # the same network fits the layer-wise variant
    raw["method"]["pinn-fl"]["optimizer"] = "engd-layerwise"
    assert suite.parse(raw, "t").cases[0].method == "pinn-fl"


def test_curvature_optimizers_refuse_methods_without_their_model():
    for opt in CURVATURE:
        for name in ("pinn", "spinn", "causal", "nsm"):
            assert opt not in methods.get(name).optimizers(), (opt, name)
        assert opt in methods.get("pinn-fl").optimizers()
    assert "lbfgs" in methods.get("pinn").optimizers()
    assert "lbfgs" not in methods.get("causal").optimizers()  # its step is its own


def test_loop_corrections_are_declared():
    """The line search (lax.map) and the CG loop (fori_loop) are counted once by XLA: the
    optimizer declares the missing FLOPs, and L-BFGS's while_loop makes its count a bound."""
    from bench.measure.xla import step_flops

    for opt, extra in (("engd", {}), ("hessian-free", {"cg_iters": 7})):
        M = methods.get("pinn-fl")(pdes.build("poisson", 2), 3, {"widths": [5], "optimizer": opt,
                                                                 **extra}, "float64")
        d = M.optimizer_describe()
        assert d["flops_correction"] > 0 and d["line_search_loss_flops"] > 0
        if opt == "hessian-free":
            assert d["flops_correction"] > 30 * d["line_search_loss_flops"]  # + 6 GVPs
    M = methods.get("pinn")(pdes.build("heat", 1), 3, {"width": 4, "depth": 1, "optimizer": "lbfgs"})
    flops, calls = step_flops({"flops_per_step": 10.0}, M.optimizer_describe())
    assert flops == 10.0 and any("not counted" in c for c in calls)
