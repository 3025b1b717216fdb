"""spinn-lowrank: the grid-free CP loss against the materialised grid loss of spinn (float64)."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import methods
import pdes
from bench.suite import SuiteError, parse
from methods.cp import Grid, Unsupported
from methods.spinn import merge
from pdes.heat import Heat
from pdes.helmholtz import Helmholtz

jax.config.update("jax_enable_x64", True)

SMALL = {"width": 8, "depth": 2, "rank": 3}


class HeatReaction(Heat):
    """u_t = kappa Lap(u) - u^2 + s with s = u*^2, so u* (the heat solution) still solves it."""

    name = "heat-reaction"

    def residual(self, f):
        return f.dt() - self.kappa * f.lap() + f.u() ** 2 - self.exact(f.coords, f.xp) ** 2


class SinU(Heat):
    name = "heat-sin"

    def residual(self, f):
        return f.dt() - self.kappa * f.lap() + f.xp.sin(f.u())


class Cubic(Heat):
    name = "heat-cubic"

    def residual(self, f):
        return f.dt() - f.u() * f.u() * f.u()


class NonSeparableSource(Helmholtz):
    name = "helmholtz-nonsep"

    def source(self, coords, xp):
        return xp.sin(coords[0] + coords[1])


def _pair(pde, n, params=SMALL):
    S = methods.get("spinn")(pde, n, params, "float64")
    L = methods.get("spinn-lowrank")(pde, n, params, "float64")
    return S, L


def _tree_rel(a, b):
    la, lb = jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)
    num = math.sqrt(sum(float(jnp.sum((x - y) ** 2)) for x, y in zip(la, lb)))
    den = math.sqrt(sum(float(jnp.sum(x ** 2)) for x in la))
    return num / den


def _check_equal(pde, n, seed=0):
    S, L = _pair(pde, n)
    params = S.init_params(jax.random.PRNGKey(seed))
    batch = S.sample(jax.random.PRNGKey(seed + 1))
    (a, ta), ga = jax.value_and_grad(S.loss, has_aux=True)(params, batch)
    (b, tb), gb = jax.value_and_grad(L.loss, has_aux=True)(params, batch)
    assert float(a) > 1e-3  # a non-trivial loss
    assert abs(float(a - b)) <= 1e-10 * abs(float(a))
    assert set(ta) == set(tb)
    for k in ta:
        assert abs(float(ta[k] - tb[k])) <= 1e-10 * abs(float(a)), k
    assert _tree_rel(ga, gb) <= 1e-10


@pytest.mark.parametrize("d", [1, 2, 3, 4])
def test_heat_loss_and_grad_equal_grid_loss(d):
    _check_equal(pdes.build("heat", d), n=4)


def test_helmholtz3d_loss_and_grad_equal_grid_loss():
    _check_equal(pdes.build("helmholtz", 3), n=5)


def test_nonlinear_u_squared_loss_and_grad_equal_grid_loss():
    _check_equal(HeatReaction(2), n=4)


def test_poisson_coordinate_products_equal_grid_loss():
    _check_equal(pdes.build("poisson", 4, family="pairs"), n=4)  # u* = x0 x1 + x2 x3


def test_gauss_legendre_loss_is_the_integral_mean():
    """Zero network: u = 0, so the terms are means of the data, known in closed form."""
    d, c, n = 2, 2.0, 24
    pde = pdes.build("heat", d)
    L = methods.get("spinn-lowrank")(pde, n, {**SMALL, "points": "gauss-legendre"}, "float64")
    params = jax.tree_util.tree_map(jnp.zeros_like, L.init_params(jax.random.PRNGKey(0)))
    _, terms = L.loss(params, L.sample(jax.random.PRNGKey(1)))
    s1 = (1 - math.cos(c)) / c                        # mean of sin(c x) on [0, 1]
    s2 = 0.5 - math.sin(2 * c) / (4 * c)              # mean of sin(c x)^2 on [0, 1]
    ic = d * s2 + d * (d - 1) * s1**2                 # mean of (sum_i sin(c x_i))^2
    rate = pde.kappa * c**2
    e2 = (1 - math.exp(-2 * rate)) / (2 * rate)       # mean of exp(-2 rate t) on [0, 1]
    # face x_i = 0: sum_{j != i} sin(c x_j); face x_i = 1: sin(c) + the same
    face0 = (d - 1) * s2 + (d - 1) * (d - 2) * s1**2
    face1 = face0 + math.sin(c) ** 2 + 2 * math.sin(c) * (d - 1) * s1
    np.testing.assert_allclose(float(terms["res"]), 0.0, atol=1e-14)
    np.testing.assert_allclose(float(terms["ic"]), ic, rtol=1e-10)
    np.testing.assert_allclose(float(terms["bc"]), e2 * (face0 + face1) / 2, rtol=1e-10)


def test_gauss_legendre_helmholtz_source_integral():
    """u = 0 on [-1, 1]^3: res = mean(q^2) = q_coef^2 prod_i mean(sin^2(a_i pi x)) = q_coef^2 / 8."""
    pde = pdes.build("helmholtz", 3)
    L = methods.get("spinn-lowrank")(pde, 40, {**SMALL, "points": "gauss-legendre"}, "float64")
    params = jax.tree_util.tree_map(jnp.zeros_like, L.init_params(jax.random.PRNGKey(0)))
    _, terms = L.loss(params, L.sample(jax.random.PRNGKey(1)))
    np.testing.assert_allclose(float(terms["res"]), pde.q_coef**2 / 8, rtol=1e-10)
    np.testing.assert_allclose(float(terms["bc"]), 0.0, atol=1e-20)


def test_gauss_legendre_matches_weighted_dense_sum():
    """A trained-looking network: GL loss = dense sum of res^2 times the tensor of GL weights."""
    pde = pdes.build("heat", 2)
    L = methods.get("spinn-lowrank")(pde, 6, {**SMALL, "points": "gauss-legendre"}, "float64")
    params = L.init_params(jax.random.PRNGKey(3))
    batch = L.sample(jax.random.PRNGKey(0))
    f = L.fields(params, batch["axes"])  # the spinn (dense) fields on the GL nodes
    res = pde.residual(f)
    W = merge([w[:, None] for w in batch["weights"]])
    _, terms = L.loss(params, batch)
    np.testing.assert_allclose(float(terms["res"]), float(jnp.sum(W * res**2)), rtol=1e-10)


def test_cp_algebra_matches_dense_tensors():
    key = jax.random.split(jax.random.PRNGKey(0), 8)
    sizes = [3, 4, 5]
    q = [jax.random.uniform(k, (n,)) for k, n in zip(key[:3], sizes)]
    q = [w / w.sum() for w in q]
    g = Grid(sizes, q, jnp.float64)
    A = g.factor_term([jax.random.normal(k, (n, 2)) for k, n in zip(key[3:6], sizes)])
    B = g.factor_term([jax.random.normal(k, (n, 3)) for k, n in zip(key[5:8], sizes)])
    x = g.univariate(1, jnp.linspace(0.0, 1.0, 4))
    from methods.cp import CPNamespace
    xp = CPNamespace(g)
    T = 2.0 * A - B * A + xp.exp(x) / 3.0 + 1.5 - A**2
    Ad, Bd, xd = A.full(), B.full(), x.full()
    Td = 2.0 * Ad - Bd * Ad + jnp.exp(xd) / 3.0 + 1.5 - Ad**2
    np.testing.assert_allclose(T.full(), Td, rtol=1e-12, atol=1e-12)
    W = merge([w[:, None] for w in q])
    np.testing.assert_allclose(float((T * T).mean()), float(jnp.sum(W * Td**2)), rtol=1e-12)
    np.testing.assert_allclose(float(T.mean()), float(jnp.sum(W * Td)), rtol=1e-12)


def test_separable_source_agrees_with_symbolic_residual():
    """Zero network: the symbolic Helmholtz residual is -q; compare with separable_source()."""
    pde = pdes.build("helmholtz", 3)
    L = methods.get("spinn-lowrank")(pde, 5, SMALL, "float64")
    params = jax.tree_util.tree_map(jnp.zeros_like, L.init_params(jax.random.PRNGKey(0)))
    axes = L.sample(jax.random.PRNGKey(1))["axes"]
    from methods.spinn_lowrank import CPFields
    f = CPFields(L, params, axes, {}, ["int"] * 3, L.grid(axes, [None] * 3))
    q = sum(t.coef * merge([fa(x, jnp)[:, None] for fa, x in zip(t.factors, axes)])
            for t in pde.separable_source())
    np.testing.assert_allclose(pde.residual(f).full(), -q, rtol=1e-12, atol=1e-9)


def test_supported_pdes():
    M = methods.get("spinn-lowrank")
    for name, dim, kw in [("heat", 4, {}), ("helmholtz", 3, {}), ("poisson", 10, {}),
                          ("poisson", 3, {"family": "norm"})]:
        assert M.supports(pdes.build(name, dim, **kw)) is None
    assert M.supports(HeatReaction(2)) is None


@pytest.mark.parametrize("pde,words", [
    (SinU(2), "sin() of a tensor that depends on several axes"),
    (NonSeparableSource(2), "sin() of a tensor that depends on several axes (x0, x1)"),
    (Cubic(1), "product of 3 model fields"),
])
def test_unsupported_pdes_say_why(pde, words):
    reason = methods.get("spinn-lowrank").supports(pde)
    assert reason is not None and words in reason
    with pytest.raises(ValueError, match="not supported by spinn-lowrank"):
        methods.get("spinn-lowrank")(pde, 4, SMALL, "float64")


def test_cubic_allowed_with_higher_max_degree():
    assert methods.get("spinn-lowrank").supports(Cubic(1), max_degree=3) is None


def test_unsupported_dense_array_in_expression():
    g = Grid([2, 2], [None, None], jnp.float64)
    with pytest.raises(Unsupported, match="cannot enter a CP expression"):
        g.const(1.0) + jnp.ones((2, 2))


def test_suite_validation_names_the_reason(monkeypatch):
    monkeypatch.setitem(pdes.REGISTRY.items, "heat-sin", SinU)
    with pytest.raises(SuiteError, match="spinn-lowrank.*sin\\(\\) of a tensor"):
        parse({"pde": "heat-sin", "dim": 2, "methods": ["spinn-lowrank"]}, "t")


def test_bad_points_option():
    with pytest.raises(ValueError, match="gauss-legendre"):
        methods.get("spinn-lowrank")(pdes.build("heat", 1), 4, {"points": "sobol"})


def test_size_info_reports_the_virtual_grid():
    L = methods.get("spinn-lowrank")(pdes.build("heat", 4), 10_000, SMALL)
    info = L.size_info()
    assert info["n_points"] == 10**20 and isinstance(info["n_points"], int)
    assert info["n_points_kind"] == "grid-free"


def test_no_intermediate_grows_with_the_grid():
    """Trace the loss at 10^4 points per axis (10^20 grid points): every array is O(N R)."""
    pde = pdes.build("heat", 4)
    n = 10_000
    L = methods.get("spinn-lowrank")(pde, n, SMALL, "float32")
    params = jax.eval_shape(L.init_params, jax.random.PRNGKey(0))
    batch = jax.eval_shape(L.sample, jax.random.PRNGKey(1))
    jaxpr = jax.make_jaxpr(jax.grad(lambda p, b: L.loss(p, b)[0]))(params, batch)
    biggest = 0
    for eqn in jaxpr.jaxpr.eqns:
        for v in eqn.outvars:
            biggest = max(biggest, int(np.prod(v.aval.shape)) if v.aval.shape else 1)
    width = SMALL["width"]
    assert biggest <= n * max(width, 5 * SMALL["rank"])  # (N, width) activations or (N, R) factors


def test_predict_matches_spinn():
    pde = pdes.build("heat", 2)
    S, L = _pair(pde, 4)
    state = L.init(jax.random.PRNGKey(0))
    pts = jax.random.uniform(jax.random.PRNGKey(2), (9, 3), jnp.float64)
    np.testing.assert_allclose(L.predict(state, pts), S.predict(state, pts), rtol=1e-14)


def test_klein_gordon_equal_grid_loss():
    """The registry's Klein-Gordon (u_tt - Lap(u) + u^2 = f, SPINN S3), once it is on main."""
    if "klein-gordon" not in pdes.REGISTRY:
        pytest.skip("klein-gordon is not registered in this checkout")
    _check_equal(pdes.build("klein-gordon", 2), n=4)
