"""Causal PINN (methods/causal.py) and the advection PDE: weights, loss, gradient, schedule."""

from __future__ import annotations

import math
import time

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import methods
import pdes
from methods.causal import CausalPinn, SpinnCausal, causal_weights
from methods.pinn import Pinn, PinnFields
from methods.spinn import Spinn

SMALL = {"width": 16, "depth": 2}


@pytest.fixture
def x64():
    """Float64 for exact comparisons; restored afterwards so other tests see the default."""
    old = jax.config.jax_enable_x64
    jax.config.update("jax_enable_x64", True)
    yield
    jax.config.update("jax_enable_x64", old)


def _tree_close(a, b, rtol, atol=0.0):
    la, lb = jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)
    assert len(la) == len(lb)
    for x, y in zip(la, lb):
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=rtol, atol=atol)


def _tree_maxdiff(a, b):
    return max(float(jnp.max(jnp.abs(x - y)))
               for x, y in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)))


# -- the weights ---------------------------------------------------------------------------------

@pytest.mark.parametrize("eps", [1e-2, 1.0, 100.0])
def test_weights_match_lower_triangular_formula(eps):
    L = np.random.default_rng(0).exponential(0.05, 32)
    w = np.asarray(causal_weights(jnp.asarray(L), eps))
    M = np.tril(np.ones((32, 32)), -1)  # strictly lower triangular (paper, REFERENCES 2.3)
    np.testing.assert_allclose(w, np.exp(-eps * (M @ L)), rtol=1e-5, atol=1e-37)
    assert w[0] == 1.0
    assert np.all(np.diff(w) <= 0) and np.all(w > 0) and np.all(w <= 1)


def test_weights_on_a_real_network_both_variants():
    pde = pdes.build("advection", 1, c=5.0)
    ma = CausalPinn(pde, 8, {**SMALL, "eps": [1.0]})
    mb = CausalPinn(pde, 8, {**SMALL, "eps": [1.0], "variant": "b", "ic_weight": 10.0})
    params = ma.init(jax.random.PRNGKey(0))["params"]
    batch = ma.sample(jax.random.PRNGKey(1))

    @jax.jit  # one compiled call instead of hundreds of eagerly dispatched ops
    def both(params, batch):
        return ma.slice_losses(params, batch), ma.loss(params, batch, 1.0)[1][1], \
            mb.loss(params, batch, 1.0)[1][1]

    (sl, cond), wa, wb = both(params, batch)
    wa, wb, sl = np.asarray(wa), np.asarray(wb), np.asarray(sl)
    assert wa.shape == (8,) and wa[0] == 1.0
    for w in (wa, wb):
        assert np.all(np.diff(w) <= 0) and np.all((w > 0) & (w <= 1))
    # variant b: the weighted IC loss sits inside the exponent, so w_1 = exp(-eps lambda L_ic)
    ic = float(cond["ic"])
    assert ic > 1e-3
    np.testing.assert_allclose(wb, wa * math.exp(-10.0 * ic), rtol=1e-5)
    # and sum_{k<i} L_k comes from the slices in time order
    np.testing.assert_allclose(-np.log(wa[1:]), np.cumsum(sl)[:-1], rtol=1e-5)


def test_slices_are_sorted_in_time():
    pde = pdes.build("advection", 1)
    for layout in ("slices", "chunks"):
        m = CausalPinn(pde, 8, {**SMALL, "layout": layout, "n_t": 4})
        X = np.asarray(m.sample(jax.random.PRNGKey(3))["interior"])
        t = X[:, 0].reshape(4, 16)
        assert np.all(np.diff(t.reshape(-1)) >= 0), layout
        if layout == "slices":
            assert np.all(t == t[:, :1])  # one time per slice
    ms = SpinnCausal(pde, 8, {**SMALL, "rank": 4})
    t = np.asarray(ms.sample(jax.random.PRNGKey(3))["axes"][0])
    assert np.all(np.diff(t) >= 0)


# -- eps = 0 is the vanilla loss; the gradient is the frozen-weight gradient -------------------

@pytest.mark.parametrize("layout", ["slices", "chunks"])
def test_eps_zero_is_the_vanilla_pinn_loss(x64, layout):
    pde = pdes.build("heat", 1)
    c = CausalPinn(pde, 8, {**SMALL, "eps": [0.0], "layout": layout}, dtype="float64")
    p = Pinn(pde, 8, SMALL, dtype="float64")
    params = c.init(jax.random.PRNGKey(0))["params"]
    batch = c.sample(jax.random.PRNGKey(1))
    assert batch["interior"].dtype == jnp.float64
    (lc, (tc, w)), gc = jax.jit(jax.value_and_grad(c.loss, has_aux=True))(params, batch, 0.0)
    (lp, tp), gp = jax.jit(jax.value_and_grad(p.loss, has_aux=True))(params, batch)
    assert np.all(np.asarray(w) == 1.0)
    np.testing.assert_allclose(float(lc), float(lp), rtol=1e-13)
    for k in tp:
        np.testing.assert_allclose(float(tc[k]), float(tp[k]), rtol=1e-13)
    _tree_close(gc, gp, rtol=1e-10, atol=1e-14)


def test_eps_zero_is_the_vanilla_spinn_loss(x64):
    pde = pdes.build("heat", 1)
    prm = {**SMALL, "rank": 4}
    c = SpinnCausal(pde, 8, {**prm, "eps": [0.0]}, dtype="float64")
    s = Spinn(pde, 8, prm, dtype="float64")
    params = c.init(jax.random.PRNGKey(0))["params"]
    batch = c.sample(jax.random.PRNGKey(1))
    lc = jax.jit(c.loss)(params, batch, 0.0)[0]
    lp = jax.jit(s.loss)(params, batch)[0]
    np.testing.assert_allclose(float(lc), float(lp), rtol=1e-13)


@pytest.mark.parametrize("variant", ["a", "b"])
def test_gradient_is_the_frozen_weight_gradient(x64, variant):
    pde = pdes.build("advection", 1, c=5.0)
    eps = 5.0
    m = CausalPinn(pde, 8, {**SMALL, "variant": variant, "eps": [eps], "ic_weight": 2.0},
                   dtype="float64")
    params = m.init(jax.random.PRNGKey(0))["params"]
    batch = m.sample(jax.random.PRNGKey(1))
    grad = jax.jit(jax.grad(lambda p: m.loss(p, batch, eps)[0]))(params)

    # independent: weights computed once in numpy from the slice losses, then held fixed
    sl0, cond0 = jax.jit(m.slice_losses)(params, batch)
    off = 2.0 * float(cond0["ic"]) if variant == "b" else 0.0
    w0 = np.exp(-eps * (off + np.concatenate([[0.0], np.cumsum(np.asarray(sl0))[:-1]])))

    def frozen(p):
        sl, cond = m.slice_losses(p, batch)
        return jnp.mean(jnp.asarray(w0) * sl) + 2.0 * cond["ic"] + cond.get("bc", 0.0)

    _tree_close(grad, jax.jit(jax.grad(frozen))(params), rtol=1e-9, atol=1e-13)

    # the test can fail: letting the gradient flow through the weights changes it
    def unfrozen(p):
        sl, cond = m.slice_losses(p, batch)
        o = 2.0 * cond["ic"] if variant == "b" else 0.0
        s = jnp.concatenate([jnp.zeros(1), jnp.cumsum(sl)[:-1]])
        return jnp.mean(jnp.exp(-eps * (o + s)) * sl) + 2.0 * cond["ic"] + cond.get("bc", 0.0)

    assert _tree_maxdiff(grad, jax.jit(jax.grad(unfrozen))(params)) > 1e-4


# -- the eps schedule and the stop rule ---------------------------------------------------------

def _run(m, n, key=0):
    state = m.init(jax.random.PRNGKey(key))
    step = jax.jit(m.step)
    batch = m.sample(jax.random.PRNGKey(1))
    out = []
    for _ in range(n):
        state, met = step(state, batch)
        out.append({k: float(v) for k, v in met.items()})
    return state, out


def test_schedule_advances_when_min_w_passes_and_stops_at_the_end():
    pde = pdes.build("advection", 1)
    eps = [1e-3, 1e-2, 1e-1]
    m = CausalPinn(pde, 4, {**SMALL, "eps": eps, "tol": 1e-6, "check_every": 2,
                            "stop": "schedule_end"})
    state, mets = _run(m, 9)
    # checks pass at steps 2, 4, 6 (min_w > 1e-6): eps moves on after 2 and 4, stops after 6
    np.testing.assert_allclose([x["eps"] for x in mets], [eps[0]] * 2 + [eps[1]] * 2 + [eps[2]] * 5,
                               rtol=1e-6)
    assert [x["stop"] for x in mets] == [0.0] * 5 + [1.0] * 4
    assert all(x["min_w"] > 1e-6 for x in mets)
    # after the stop the step leaves the parameters alone
    st2, _ = jax.jit(m.step)(state, m.sample(jax.random.PRNGKey(2)))
    assert _tree_maxdiff(st2["params"], state["params"]) == 0.0
    assert int(st2["causal"]["step"]) == int(state["causal"]["step"]) == 6


def test_schedule_holds_eps_until_min_w_passes_or_the_step_limit():
    pde = pdes.build("advection", 1)
    # tol = 1 can never pass (min w < 1 while the residual is non-zero): eps is held until the
    # per-eps step limit forces the move, and the last eps is kept without a stop
    m = CausalPinn(pde, 4, {**SMALL, "eps": [10.0, 100.0], "tol": 1.0, "check_every": 1,
                            "max_steps_per_eps": 3, "stop": "schedule_end"})
    _, mets = _run(m, 6)
    assert [x["eps"] for x in mets] == [10.0] * 3 + [100.0] * 3
    assert all(x["min_w"] < 1.0 and x["stop"] == 0.0 for x in mets)


# -- periodic embedding, PDE, registry, validation ----------------------------------------------

def test_fourier_embedding_is_periodic_and_drops_periodic_faces():
    pde = pdes.build("advection", 1)
    m = CausalPinn(pde, 4, {**SMALL, "fourier_modes": 3})
    assert [c.group for c in m.conds] == ["ic"]
    params = m.init(jax.random.PRNGKey(0))["params"]
    t = jnp.linspace(0.0, 1.0, 7)
    lo = m.predict_params(params, jnp.stack([t, jnp.zeros_like(t)], 1))
    hi = m.predict_params(params, jnp.stack([t, jnp.full_like(t, 2 * math.pi)], 1))
    np.testing.assert_allclose(lo, hi, atol=1e-5)
    assert float(jnp.std(lo)) > 1e-4  # depends on t: not a constant network
    assert len(CausalPinn(pde, 4, SMALL).conds) == 3  # without the embedding: IC + 2 faces


def test_advection_exact_solution_has_zero_residual(x64):
    pde = pdes.build("advection", 1, c=7.0)
    X = jax.random.uniform(jax.random.PRNGKey(0), (50, 2), jnp.float64) * jnp.array([1.0, 6.0])

    def apply(X):
        return pde.exact([X[:, 0], X[:, 1]], jnp)[:, None]

    r = pde.residual(PinnFields(apply, X, True))
    assert float(jnp.max(jnp.abs(r))) < 1e-12
    u_t = -7.0 * jnp.cos(X[:, 1] - 7.0 * X[:, 0])
    assert float(jnp.max(jnp.abs(PinnFields(apply, X, True).dt() - u_t))) < 1e-12


def test_registry_and_bad_params():
    assert methods.get("causal") is CausalPinn and methods.get("spinn-causal") is SpinnCausal
    pde = pdes.build("heat", 1)
    with pytest.raises(ValueError, match=r"variant.*valid: a, b"):
        CausalPinn(pde, 4, {"variant": "c"})
    with pytest.raises(ValueError, match="non-negative"):
        CausalPinn(pde, 4, {"eps": [1.0, -1.0]})
    with pytest.raises(ValueError, match="tol"):
        CausalPinn(pde, 4, {"tol": 1.5})
    with pytest.raises(ValueError, match="n_t = 3 must divide the 16"):
        CausalPinn(pde, 4, {"n_t": 3})
    with pytest.raises(ValueError, match="fourier_modes = 2 needs a PDE with periodic axes"):
        CausalPinn(pde, 4, {"fourier_modes": 2})
    with pytest.raises(ValueError, match="unknown parameter 'epsilon'"):
        CausalPinn(pde, 4, {"epsilon": 1.0})

    class Steady(pdes.PDE):
        name = "steady"
        time_dependent = False

    assert "time-dependent" in CausalPinn.supports(Steady(1))
    with pytest.raises(ValueError, match="dim 2 not supported"):
        pdes.build("advection", 2)
    with pytest.raises(ValueError, match="c = 'x' must be a number"):
        pdes.build("advection", 1, c="x")


# -- end to end --------------------------------------------------------------------------------

def test_worker_records_min_w_on_the_curve_and_honours_the_stop_rule(tmp_path):
    from bench import worker
    from bench.suite import Case

    case = Case(suite="t", pde="advection", dim=1, method="causal", n_per_axis=4, seed=0,
                steps=40, timing_samples=8, eval_points=64,
                method_params={**SMALL, "eps": [1e-3, 1e-2], "tol": 1e-6, "check_every": 5,
                               "stop": "schedule_end"})
    prec = jax.config.jax_default_matmul_precision
    try:
        rec = worker.run(case, tmp_path / "r.json")  # in-process: no second JAX start-up
    finally:
        jax.config.update("jax_default_matmul_precision", prec)
    assert rec["status"] == "ok", rec.get("error")
    assert rec["metrics"]["stop_reason"] == "method"
    assert rec["metrics"]["steps_done"] < 40
    assert all("min_w" in p and 0 < p["min_w"] <= 1 for p in rec["curve"])
    assert rec["metrics"]["final_eps"] == pytest.approx(1e-2)
    assert rec["method"]["periodic"] == "none (conditions as the PDE gives them)"


def test_advection_c5_reaches_3e_2():
    """REFERENCES.md 4.6: advection c = 5, embedding k <= 5, 3x32 tanh, 32 t x 32 x per step.

    Asserts on a step budget (the wall clock is contended here); the elapsed time is printed.
    Measured on the 2-core dev CPU under contention: target reached after about 1500-2000
    steps, 5-10 s of training plus 5-10 s of compilation.
    """
    pde = pdes.build("advection", 1, c=5.0)
    m = CausalPinn(pde, 32, {"width": 32, "depth": 3, "fourier_modes": 5, "lr": 1e-2,
                             "lr_decay": 0.9, "decay_steps": 500})
    state = m.init(jax.random.PRNGKey(0))
    step, sample, pred = jax.jit(m.step), jax.jit(m.sample), jax.jit(m.predict)
    P = jax.random.uniform(jax.random.PRNGKey(99), (4096, 2)) * jnp.array([1.0, 2 * math.pi])
    ex = pde.exact([P[:, 0], P[:, 1]], jnp)
    t0, err, done = time.perf_counter(), math.inf, 0
    for done in range(1, 4001):
        state, met = step(state, sample(jax.random.fold_in(jax.random.PRNGKey(1), done)))
        if done % 250 == 0:
            err = float(jnp.linalg.norm(pred(state, P) - ex) / jnp.linalg.norm(ex))
            if err < 3e-2:
                break
    print(f"advection c=5: rel L2 {err:.3g} after {done} steps, {time.perf_counter() - t0:.1f} s "
          f"(incl. compile), eps {float(met['eps'])}, min_w {float(met['min_w']):.3f}")
    assert err < 3e-2
