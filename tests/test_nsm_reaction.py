"""Reaction-diffusion family (pdes/reaction_diffusion.py): reference solver and NSM pieces.

The Strang-splitting reference is checked against the exact heat solution (rho = 0), the exact
logistic flow (nu = 0) and for its second-order convergence in dt on a GP initial condition;
the NSM output transform against the initial condition it must reproduce exactly.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import methods
import pdes
from pdes.nsm_poisson import periodic_sinc_matrix
from pdes.reaction_diffusion import logistic_flow, strang_solve


def test_solver_is_exact_heat_flow_without_reaction():
    x = np.arange(32) / 32
    u0 = 0.5 + 0.3 * np.sin(2 * np.pi * x) + 0.1 * np.cos(6 * np.pi * x)
    t = np.array([0.0, 0.25, 1.0])
    u = strang_solve(u0, 0.05, 0.0, t, 8)
    k2 = lambda k: np.exp(-0.05 * (2 * np.pi * k) ** 2 * t[:, None])  # noqa: E731
    want = 0.5 + 0.3 * k2(1) * np.sin(2 * np.pi * x) + 0.1 * k2(3) * np.cos(6 * np.pi * x)
    np.testing.assert_allclose(u, want, atol=1e-12)


def test_solver_is_exact_logistic_flow_without_diffusion():
    u0 = np.linspace(0.05, 0.95, 16)
    u = strang_solve(u0, 0.0, 5.0, [1.0], 4)[0]
    e = np.exp(5.0)
    np.testing.assert_allclose(u, u0 * e / (1 - u0 + u0 * e), rtol=1e-12)
    # the flow map composes: two half steps equal one full step
    np.testing.assert_allclose(logistic_flow(logistic_flow(u0, 5.0, 0.1), 5.0, 0.1),
                               logistic_flow(u0, 5.0, 0.2), rtol=1e-13)


def test_solver_converges_at_second_order():
    pde = pdes.build("nsm-reaction", 1, nu=0.01, res=32)
    phi = np.asarray(pde.sample_inputs(jax.random.PRNGKey(0), 2, jnp.float32), np.float64)
    u0 = phi[:, 0, :] @ periodic_sinc_matrix(32, np.arange(128) / 128).T
    fine = strang_solve(u0, 0.01, 5.0, [1.0], 2048)
    errs = [np.max(np.abs(strang_solve(u0, 0.01, 5.0, [1.0], n) - fine)) for n in (16, 32, 64)]
    rates = np.log2(np.array(errs[:-1]) / np.array(errs[1:]))
    assert np.all((rates > 1.8) & (rates < 2.2)), (errs, rates)
    assert errs[-1] < 1e-3


def test_reference_matches_solver_on_eval_grid_and_starts_at_phi():
    pde = pdes.build("nsm-reaction", 1, res=16, eval_nt=5, eval_nx=16, solver_nx=64,
                     solver_steps=64)
    phi = np.asarray(pde.sample_inputs(jax.random.PRNGKey(2), 3, jnp.float32), np.float64)
    ref = pde.reference(phi, pde.eval_axes())
    assert ref.shape == (3, 5, 16)
    np.testing.assert_allclose(ref[:, 0], phi[:, 0], atol=1e-12)  # same points at t = 0
    assert phi.min() >= 0 and phi.max() <= 1 + 1e-6  # min-max scaled GP


@pytest.fixture(scope="module")
def reaction_small():
    pde = pdes.build("nsm-reaction", 1, res=8, n_test=2, eval_nt=5, eval_nx=16,
                     solver_nx=64, solver_steps=64)
    M = methods.get("nsm")(pde, 8, {"width": 8, "depth": 1, "batch": 2, "time_modes": 6})
    state = jax.jit(M.init)(jax.random.PRNGKey(0))
    state["params"]["out"]["w"] = state["params"]["out"]["w"] * 1e3
    return pde, M, state


def test_initial_value_transform_reproduces_phi_exactly(reaction_small):
    pde, M, state = reaction_small
    phi_grid = pde.sample_inputs(jax.random.PRNGKey(7), 2, jnp.float32)
    u = jax.jit(lambda p, g: M.apply(p, M.input_coef(g)))(state["params"], phi_grid)
    x = np.array([0.0, 0.071, 0.33, 0.5, 0.949])
    at0 = np.asarray(M.basis.evaluate(u, [np.array([0.0, 0.5]), x]))[..., 0]
    want = np.asarray(phi_grid)[:, 0, :] @ periodic_sinc_matrix(8, x).T  # phi's interpolant
    np.testing.assert_allclose(at0[:, 0], want, atol=1e-5)
    assert np.max(np.abs(at0[:, 1] - want)) > 1e-3  # later times do move: not a trivial check


def test_dirichlet_transform_vanishes_on_the_boundary(reaction_small, monkeypatch):
    pde, M, state = reaction_small
    monkeypatch.setattr(pde, "output_transform", "dirichlet")
    u = jax.jit(lambda p, k: M.apply(p, M.draw(k)))(state["params"], jax.random.PRNGKey(8))
    vals = np.asarray(M.basis.evaluate(u, [np.array([0.0, 0.4, 1.0]), np.array([0.0, 0.3])]))
    scale = np.max(np.abs(vals))
    assert scale > 1e-4
    assert np.max(np.abs(vals[:, [0, 2], :])) < 1e-6 * scale + 1e-9  # t = 0 and t = 1
    assert np.max(np.abs(vals[:, :, 0])) < 1e-6 * scale + 1e-9       # x = 0


def test_nsm_and_fd_baseline_steps_reduce_the_loss(reaction_small):
    pde, _, _ = reaction_small
    small = {"width": 8, "depth": 1, "batch": 2, "time_modes": 6, "lr": 1e-2,
             "mollifier_scale": 1.0}  # so that 40 steps can move u noticeably
    for name, extra in (("nsm", {}), ("nsm-fdpinn", {"fd_grid": 16})):
        M = methods.get(name)(pde, 8, {**small, **extra})
        state = jax.jit(M.init)(jax.random.PRNGKey(1))
        fixed = jax.jit(M.draw)(jax.random.PRNGKey(11))  # training draws fresh inputs: judge on a fixed one
        loss = jax.jit(lambda p: M.loss(p, fixed)[0])
        before = float(loss(state["params"]))
        step = jax.jit(M.step)
        for _ in range(25):
            state, _ = step(state, {})
        assert float(loss(state["params"])) < 0.8 * before, name
        if name == "nsm":
            ev = M.evaluate(state)
            assert np.isfinite(ev["rel_l2_per_instance_mean"]) and ev["rel_l2"] < 1.0
