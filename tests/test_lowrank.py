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


# ---------------------------------------------------------------- float32: the cancellation
# The float32 Gram loss is computed in double-float arithmetic (methods.dfloat); its error
# against float64 arithmetic must be at most 10x the dense float32 loss's (residual formed point
# by point in float32, then squared), and the loss never negative, down to relative residual 1e-5.

def _rel_err(a, ref):
    return abs(float(a) - float(ref)) / float(ref)


def _synthetic(rho, weights, seed=0, sizes=(16, 24, 32), r=8, c=30.0):
    """res = c (A - A') with A' = A but axis 0's factor moved by rho * noise: the two rank-r
    terms cancel to a relative residual ~rho. The same float32 numbers in float64 and float32."""
    rng = np.random.default_rng(seed)
    F = [rng.standard_normal((n, r)).astype(np.float32) for n in sizes]
    F2 = [(F[0] + np.float32(rho) * rng.standard_normal((sizes[0], r))).astype(np.float32)] + F[1:]
    if weights == "uniform":
        w = [None] * len(sizes)
    else:
        w = [rng.uniform(0.5, 1.5, n).astype(np.float32) for n in sizes]
        w = [(x / x.sum()).astype(np.float32) for x in w]
    out = {}
    for dt in (jnp.float32, jnp.float64):
        g = Grid(list(sizes), [None if x is None else jnp.asarray(x, dt) for x in w], dt)
        A = g.factor_term([jnp.asarray(f, dt) for f in F])
        B = g.factor_term([jnp.asarray(f, dt) for f in F2])
        out[dt] = (g, c * A - c * B, c * A)
    return out, w


def _dense_mean(T, w):
    D = T.full()
    if w[0] is None:
        return jnp.mean(D * D)
    W = merge([jnp.asarray(x, D.dtype)[:, None] for x in w])
    return jnp.sum(W * D * D)


@pytest.mark.parametrize("weights", ["uniform", "quadrature"])
@pytest.mark.parametrize("rho", [1e-3, 1e-4, 1e-5])
def test_float32_gram_loss_as_accurate_as_dense_synthetic(rho, weights):
    from methods.cp import _plain_inner

    fields, w = _synthetic(rho, weights)
    g64, T64, A64 = fields[jnp.float64]
    ref = float((T64 * T64).mean())
    rel = math.sqrt(ref / float((A64 * A64).mean()))
    assert 0.3 * rho < rel < 3 * rho  # the relative residual the case is about
    g32, T32, _ = fields[jnp.float32]
    assert T32.full().dtype == jnp.float32
    lowrank = jax.jit(lambda: (T32 * T32).mean())()
    assert lowrank.dtype == jnp.float32
    dense = _dense_mean(T32, w)
    assert float(lowrank) > 0
    assert _rel_err(lowrank, ref) <= 10 * _rel_err(dense, ref)
    if rho <= 1e-4:  # the plain float32 Gram sum fails here (what the double-float path fixes)
        terms = T32.terms
        Us = [jnp.concatenate([t.factors[a] for t in terms], axis=1) for a in range(3)]
        idx = [np.arange(Us[0].shape[1])] * 3
        cx = jnp.concatenate([t.coef for t in terms])
        plain = _plain_inner(Us, list(g32.weights), cx, cx, idx, idx)
        assert _rel_err(plain, ref) > 10 * _rel_err(dense, ref)


def _helmholtz2d_trained(iters):
    """A Helmholtz-2d SPINN trained by L-BFGS on the (float64) grid-free loss; returns the
    float64 pair, the float32 pair, the parameters after each of ``iters`` and the batch."""
    import optax

    pde = pdes.build("helmholtz", 2)
    P = {"width": 16, "depth": 2, "rank": 8}
    S64, L64 = _pair(pde, 16, P)
    S32 = methods.get("spinn")(pde, 16, P, "float32")
    L32 = methods.get("spinn-lowrank")(pde, 16, P, "float32")
    params = L64.init_params(jax.random.PRNGKey(0))
    batch = L64.sample(jax.random.PRNGKey(1))
    f = lambda p: L64.loss(p, batch)[0]  # noqa: E731
    opt = optax.lbfgs()
    vg = optax.value_and_grad_from_state(f)

    @jax.jit
    def step(p, s):
        v, g = vg(p, state=s)
        u, s = opt.update(g, s, p, value=v, grad=g, value_fn=f)
        return optax.apply_updates(p, u), s

    st, out, done = opt.init(params), [], 0
    for k in iters:
        for _ in range(k - done):
            params, st = step(params, st)
        done = k
        out.append(params)
    return (S64, L64), (S32, L32), out, batch


@pytest.mark.slow
def test_float32_gram_loss_as_accurate_as_dense_trained():
    """Trained fields (residual MSE falling from ~14,000 to ~0.1, relative residual to ~3e-3):
    the float32 grid-free loss and gradient against float64, beside spinn's dense float32 ones."""
    (S64, L64), (S32, L32), snaps, batch = _helmholtz2d_trained([0, 300, 1000, 2000])
    b32 = jax.tree_util.tree_map(lambda x: x.astype(jnp.float32), batch)
    g_lr = jax.jit(jax.value_and_grad(lambda p: L32.loss(p, b32)[0]))
    g_dn = jax.jit(jax.value_and_grad(lambda p: S32.loss(p, b32)[0]))
    g_64 = jax.jit(jax.value_and_grad(lambda p: L64.loss(p, batch)[0]))
    mses = []
    for p in snaps:
        p32 = jax.tree_util.tree_map(lambda x: x.astype(jnp.float32), p)
        p64 = jax.tree_util.tree_map(lambda x: x.astype(jnp.float64), p32)  # the same numbers
        (ref, gref), (lr, glr), (dn, gdn) = g_64(p64), g_lr(p32), g_dn(p32)
        mses.append(float(L64.loss(p64, batch)[1]["res"]))
        assert float(lr) > 0
        assert _rel_err(lr, ref) <= 10 * _rel_err(dn, ref) + 1e-6
        assert _tree_rel(gref, glr) <= 10 * _tree_rel(gref, gdn) + 1e-5
    assert mses[0] > 1e4 and mses[-1] < 0.3  # the fields did train


def test_float64_path_is_the_plain_formula():
    """float64 grids keep the plain Gram formula (the numbers of earlier records)."""
    from methods.cp import _plain_inner

    fields, w = _synthetic(1e-2, "quadrature")
    g, T, _ = fields[jnp.float64]
    terms = T.terms
    Us = [jnp.concatenate([t.factors[a] for t in terms], axis=1) for a in range(3)]
    idx = [np.arange(Us[0].shape[1])] * 3
    cx = jnp.concatenate([t.coef for t in terms])
    assert float((T * T).mean()) == float(_plain_inner(Us, list(g.weights), cx, cx, idx, idx))


def test_float32_loss_derivatives_are_the_plain_formulas():
    """custom_jvp: grad and forward-over-reverse products equal the plain float32 formula's
    (``gram = "plain"``), while the values differ (the plain sum's rounding)."""
    pde = pdes.build("heat", 2)
    L = methods.get("spinn-lowrank")(pde, 6, SMALL, "float32")
    P = methods.get("spinn-lowrank")(pde, 6, {**SMALL, "gram": "plain"}, "float32")
    assert "double-float" in L.describe()["gram_arithmetic"]
    assert P.describe()["gram_arithmetic"] == "plain float32"
    params = L.init_params(jax.random.PRNGKey(0))
    batch = L.sample(jax.random.PRNGKey(1))
    out = []
    for M in (L, P):
        def loss(p, M=M):
            return M.loss(p, batch)[0]
        g = jax.grad(loss)(params)
        out.append((g, jax.jvp(jax.grad(loss), (params,), (g,))[1]))
    (g, hv), (g0, hv0) = out
    assert _tree_rel(g0, g) <= 1e-6 and _tree_rel(hv0, hv) <= 1e-5


def test_bad_gram_option():
    with pytest.raises(ValueError, match="double-float"):
        methods.get("spinn-lowrank")(pdes.build("heat", 1), 4, {"gram": "float64"})


@pytest.mark.parametrize("n", [1, 3, 64, 1000])
@pytest.mark.parametrize("sym", [True, False])
def test_dfloat_gram_is_error_free_to_double_precision(n, sym):
    from methods import dfloat as D

    rng = np.random.default_rng(n)
    x = (rng.standard_normal((n, 6)) * 10.0 ** rng.integers(-6, 6, 6)).astype(np.float32)
    y = x if sym else rng.standard_normal((n, 4)).astype(np.float32)
    hi, lo = D.gram(x) if sym else D.gram(x, y)
    ref = x.astype(np.float64).T @ y.astype(np.float64)
    got = np.asarray(hi, np.float64) + np.asarray(lo, np.float64)
    scale = n * np.abs(x).max(0)[:, None] * np.abs(y).max(0)[None, :]
    assert np.max(np.abs(got - ref) / scale) < 2.0 ** -45
    plain = (x.T @ y).astype(np.float64)
    assert n == 1 or np.max(np.abs(plain - ref) / scale) > 2.0 ** -40  # float32 is not


def test_dfloat_products_and_sums_are_exact():
    from methods import dfloat as D

    rng = np.random.default_rng(0)
    a = (rng.standard_normal(999) * 10.0 ** rng.integers(-15, 15, 999)).astype(np.float32)
    b = rng.standard_normal(999).astype(np.float32)
    p, e = D.two_prod(jnp.asarray(a), jnp.asarray(b))
    np.testing.assert_array_equal(np.asarray(p, np.float64) + np.asarray(e, np.float64),
                                  a.astype(np.float64) * b)
    x = np.concatenate([a, -a[:-1], b]).astype(np.float32)  # a sum that cancels
    hi, lo = D.exact_sum(jnp.asarray(x))
    ref = x.astype(np.float64).sum()
    assert abs(float(hi) + float(lo) - ref) <= 1e-12 * np.abs(x).sum()


# ---------------------------------------------------------------- degree-2 terms: r(r+1)/2

def test_square_of_a_field_has_rank_r_r_plus_1_over_2():
    key = jax.random.split(jax.random.PRNGKey(0), 4)
    sizes = [3, 4, 5]
    g = Grid(sizes, [None] * 3, jnp.float64)
    A = g.factor_term([jax.random.normal(k, (n, 4)) for k, n in zip(key[:3], sizes)])
    B = g.factor_term([jax.random.normal(key[3], (3, 4))] + A.terms[0].factors[1:])
    for sq in (A * A, A**2, (2.5 * A) * A):
        assert sq.rank == 4 * 5 // 2
    assert (A * B).rank == 16  # axis 0 differs: the full Khatri-Rao product
    np.testing.assert_allclose(((2.5 * A) * A).full(), 2.5 * A.full() ** 2, rtol=1e-12)
    np.testing.assert_allclose((A * B).full(), A.full() * B.full(), rtol=1e-12)


def test_klein_gordon_gram_width_is_the_symmetric_square():
    """u^2 in the residual: per-axis Gram width r(r+1)/2 + O(r), not r^2 (describe() says so)."""
    r = 32
    L = methods.get("spinn-lowrank")(pdes.build("klein-gordon", 2), 64, {"rank": r}, "float32")
    d = L.describe()
    assert r * (r + 1) // 2 < d["gram_width"] <= r * (r + 1) // 2 + 3 * r
    assert f"W = {d['gram_width']}" in d["loss_cost"] and "double-float" in d["gram_arithmetic"]
