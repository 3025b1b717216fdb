"""The PDE library: every registered PDE's exact solution solves its residual through both the
PINN fields (pointwise reverse-mode derivatives) and the SPINN fields (per-axis factors merged
on a tensor grid), its IC/BC data match the solution, and the reference solver of the PDE
without a closed form converges. The walk covers every PDE in ``pdes.REGISTRY`` (except
parametric ones), so a new PDE is tested without editing this file.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import methods
import pdes
from methods.pinn import ModifiedMLP, PinnFields
from methods.spinn import SpinnFields

TOL = 1e-6  # residual / size of its terms, float64


@pytest.fixture(autouse=True)
def x64():
    with jax.enable_x64(True):
        yield


def walk_cases():
    out = []
    for name in pdes.REGISTRY.names():
        cls = pdes.get(name)
        if getattr(cls, "parametric", False):
            continue
        dims = cls.dims if cls.dims is not None else (2, 3)
        out += [(name, d) for d in dims if d <= 3]
    return out


def suite_variants():
    """The PDE variants (parameters other than the defaults) of the leaderboard suites, dim <= 3:
    each is tested through every engine below, as the registered defaults are."""
    import tomllib
    from pathlib import Path

    out = []
    for f in sorted((Path(__file__).resolve().parents[1] / "bench" / "suites").glob("leaderboard*.toml")):
        raw = tomllib.loads(f.read_text())
        for e in raw.get("matrix", []):
            params = e.get("pde_params", raw.get("pde_params", {}))
            dims = e.get("dim", raw.get("dim", 1))
            for d in dims if isinstance(dims, list) else [dims]:
                if params and d <= 3 and (e["pde"], d, params) not in out:
                    out.append((e["pde"], d, params))
    return out


EXACT_CASES = [(n, d, {}) for n, d in walk_cases() if pdes.get(n).solution == "exact"] + [
    v for v in suite_variants() if pdes.get(v[0]).solution == "exact"]
CASE_IDS = [f"{n}{d}" + "".join(f"-{k}={v}" for k, v in sorted(p.items())) for n, d, p in EXACT_CASES]


def rand_points(pde, key, n=48):
    """n uniform points in the domain plus the box centre (hits r = 0 for flow mixing)."""
    b = np.array(pde.bounds())
    X = b[:, 0] + (b[:, 1] - b[:, 0]) * np.asarray(jax.random.uniform(key, (n, pde.n_in), jnp.float64))
    return jnp.asarray(np.vstack([X, b.mean(1)]))


def exact_apply(pde):
    """The exact solution as a batched "network" (n, n_in) -> (n, n_out)."""
    def apply(X):
        ex = pde.exact([X[:, i] for i in range(X.shape[1])], jnp)
        return jnp.stack(ex, -1) if isinstance(ex, (tuple, list)) else ex[:, None]
    return apply


def term_scale(fields):
    """Size of the terms a residual used: the largest |derivative| it asked the fields for."""
    return jnp.max(jnp.stack([jnp.max(jnp.abs(v)) for v in fields._cache.values()] + [jnp.ones(())]))


def evaluate(make_fields, compute, *arrays):
    """jit(compute(make_fields(*arrays))) -> (residual tuple, term scale): one compiled call is
    much cheaper than eager op-by-op autodiff on a contended CPU."""
    def fn(*arrays):
        f = make_fields(*arrays)
        return pdes.as_tuple(compute(f)), term_scale(f)
    return jax.jit(fn)(*arrays)


def assert_vanishes(out, what):
    res, scale = out
    scale = float(scale)
    for k, r in enumerate(res):
        err = float(jnp.max(jnp.abs(r)))
        assert math.isfinite(err), f"{what}: residual {k} is not finite"
        assert err < TOL * scale, f"{what}: residual {k} = {err:.3e} (term scale {scale:.3g})"


# -- SPINN test doubles ---------------------------------------------------------------------------
class ExactFactors:
    """Stands in for a `Spinn` inside `SpinnFields`: axis a's "network" returns the exact
    per-axis factors of ``pde.separable_exact()`` (rank r per component, zero-padded), and its
    k-th derivative is k nested jvps with an all-ones tangent, as `Spinn.axis_features` does."""

    def __init__(self, pde):
        terms = pde.separable_exact()
        self.terms = [terms] if pde.n_out == 1 else list(terms)
        self.pde = pde
        self.params = {"rank": max(1, max(len(t) for t in self.terms))}

    def axis_features(self, params, a, x, k=0):
        r = self.params["rank"]

        def feats(x):
            cols = []
            for comp in self.terms:
                for j in range(r):
                    if j < len(comp):
                        v = comp[j].factors[a](x, jnp) * (comp[j].coef if a == 0 else 1.0)
                        cols.append(v * jnp.ones_like(x))
                    else:
                        cols.append(jnp.zeros_like(x))
            return jnp.stack(cols, -1)

        fn = feats
        for _ in range(k):
            fn = (lambda f: lambda x: jax.jvp(f, (x,), (jnp.ones_like(x),))[1])(fn)
        return fn(x)


class GridFields(pdes.Fields):
    """Tensor-grid fields (the SPINN layout: coords as broadcasting slabs, values on the grid)
    for solutions with no separable form: pointwise derivatives on the flattened grid."""

    def __init__(self, apply, axes, time_dependent):
        n = len(axes)
        coords = [x.reshape([-1 if i == a else 1 for i in range(n)]) for a, x in enumerate(axes)]
        super().__init__(jnp, coords, time_dependent)
        mesh = jnp.meshgrid(*axes, indexing="ij")
        self.shape = mesh[0].shape
        self.pf = PinnFields(apply, jnp.stack([m.reshape(-1) for m in mesh], -1), time_dependent)

    def _partial(self, idx, c):
        return self.pf.partial(idx, c).reshape(self.shape)


def grid_axes(pde, key, sizes=(5, 4, 6, 3)):
    b = pde.bounds()
    keys = jax.random.split(key, pde.n_in)
    return [lo + (hi - lo) * jax.random.uniform(k, (sizes[a],), jnp.float64)
            for a, (k, (lo, hi)) in enumerate(zip(keys, b))]


def spinn_fields(pde, axes, tags=None):
    if hasattr(pde, "separable_exact"):
        dbl = ExactFactors(pde)
        return SpinnFields(dbl, None, axes, {}, tags or ["int"] * len(axes)), "separable"
    return GridFields(exact_apply(pde), axes, pde.time_dependent), "grid"


# -- the registry walk ------------------------------------------------------------------------------
def test_walk_covers_every_registered_pde():
    names = {n for n, _ in walk_cases()}
    expected = {n for n in pdes.REGISTRY.names() if not getattr(pdes.get(n), "parametric", False)}
    assert names == expected
    assert {"diffusion", "klein-gordon", "navier-stokes", "flow-mixing", "helmholtz",
            "heat", "log-fokker-planck"} <= names


@pytest.mark.parametrize("name,dim,params", EXACT_CASES, ids=CASE_IDS)
def test_exact_solution_solves_residual_pinn_fields(name, dim, params):
    pde = pdes.build(name, dim, **params)
    X = rand_points(pde, jax.random.PRNGKey(dim))
    out = evaluate(lambda X: PinnFields(exact_apply(pde), X, pde.time_dependent), pde.residual, X)
    assert_vanishes(out, f"{name}{dim} pinn fields")


@pytest.mark.parametrize("name,dim,params", EXACT_CASES, ids=CASE_IDS)
def test_exact_solution_solves_residual_spinn_fields(name, dim, params):
    pde = pdes.build(name, dim, **params)
    axes = grid_axes(pde, jax.random.PRNGKey(10 + dim))
    route = spinn_fields(pde, axes)[1]
    grid_shape = tuple(len(a) for a in axes)

    def compute(f):
        # the fields really hold the exact solution on the grid (checks separable_exact too)
        ex = pdes.as_tuple(pde.exact(f.coords, jnp))
        mism = [f.u(c) - jnp.broadcast_to(ex[c], grid_shape) for c in range(pde.n_out)]
        res = pdes.as_tuple(pde.residual(f))
        return tuple(jnp.broadcast_to(r, grid_shape) for r in res) + tuple(mism)

    out = evaluate(lambda *axes: spinn_fields(pde, list(axes))[0], compute, *axes)
    assert all(r.shape == grid_shape for r in out[0])
    assert_vanishes(out, f"{name}{dim} spinn fields ({route})")


@pytest.mark.parametrize("name,dim,params", EXACT_CASES, ids=CASE_IDS)
def test_conditions_match_exact_solution(name, dim, params):
    pde = pdes.build(name, dim, **params)
    conds = pde.conditions()
    assert conds, f"{name}: no initial/boundary data"
    if pde.time_dependent:
        assert any(c.axis == 0 and c.side == "lo" for c in conds), f"{name}: no IC"
    b = pde.bounds()
    faces, grids, tags = [], [], []
    for i, cond in enumerate(conds):
        v = b[cond.axis][0] if cond.side == "lo" else b[cond.axis][1]
        faces.append(rand_points(pde, jax.random.PRNGKey(100 + i), 32).at[:, cond.axis].set(v))
        axes = grid_axes(pde, jax.random.PRNGKey(200 + i))
        axes[cond.axis] = jnp.full((1,), v, jnp.float64)
        grids.append(axes)
        tags.append(["int" if a != cond.axis else cond.side for a in range(pde.n_in)])
    route = spinn_fields(pde, grids[0], tags[0])[1]

    def all_faces(faces, grids):
        out = []
        for cond, X, axes, tg in zip(conds, faces, grids, tags):
            for f in (PinnFields(exact_apply(pde), X, pde.time_dependent),
                      spinn_fields(pde, axes, tg)[0]):
                out.append((pdes.as_tuple(pde.condition_residual(cond, f)), term_scale(f)))
        return out

    results = jax.jit(all_faces)(faces, grids)
    for k, out in enumerate(results):
        cond = conds[k // 2]
        assert_vanishes(out, f"{name}{dim} {cond.name} ({'points' if k % 2 == 0 else route})")


@pytest.mark.parametrize("name,dim,params", [c for c in EXACT_CASES
                                             if c[1] == min(d for n, d, _ in EXACT_CASES if n == c[0])])
def test_spinn_method_fields_agree_with_pinn_fields(name, dim, params):
    """A real (random) SPINN: its grid fields equal PINN-style pointwise derivatives of the same
    function (its `predict`) at the grid points, for every term the residual uses."""
    pde = pdes.build(name, dim, **params)
    M = methods.get("spinn")(pde, 3, {"width": 8, "depth": 2, "rank": 3}, "float64")
    params = M.init_params(jax.random.PRNGKey(0))
    axes = grid_axes(pde, jax.random.PRNGKey(1), sizes=(3, 4, 2, 3))

    def both(params, *axes):
        rs = pde.residual(M.fields(params, list(axes)))
        gf = GridFields(lambda X: M.predict_params(params, X).reshape(X.shape[0], -1), list(axes),
                        pde.time_dependent)
        return pdes.as_tuple(rs), pdes.as_tuple(pde.residual(gf))

    rs, rg = jax.jit(both)(params, *axes)
    for a, b in zip(rs, rg):
        np.testing.assert_allclose(a, jnp.broadcast_to(b, a.shape), rtol=1e-8, atol=1e-8)


# -- PDE-specific behaviour -----------------------------------------------------------------------
def test_klein_gordon_ut_ic_is_optional_and_holds_for_exact():
    assert [c.name for c in pdes.build("klein-gordon", 2).conditions()].count("ic_t") == 0
    pde = pdes.build("klein-gordon", 3, ut_ic=True, k=1.5)
    cond = next(c for c in pde.conditions() if c.name == "ic_t")
    X = rand_points(pde, jax.random.PRNGKey(3)).at[:, 0].set(0.0)
    out = evaluate(lambda X: PinnFields(exact_apply(pde), X, True),
                   lambda f: pde.condition_residual(cond, f), X)
    assert_vanishes(out, "ic_t")
    # the cos-only part of u* satisfies u(0) = sum x but not u_t(0) = k prod x: the term bites
    wrong = lambda X: ((X[:, 1] + X[:, 2] + X[:, 3]) * jnp.cos(1.5 * X[:, 0]))[:, None]  # noqa: E731
    g = PinnFields(wrong, X, True)
    prod = X[:, 1] * X[:, 2] * X[:, 3]
    np.testing.assert_allclose(pde.condition_residual(cond, g), -1.5 * prod, atol=1e-12)
    with pytest.raises(ValueError, match="ut_ic"):
        pdes.build("klein-gordon", 2, ut_ic="yes")


def test_flow_mixing_omega_is_finite_with_the_limit_at_the_origin():
    pde = pdes.build("flow-mixing", 2)
    x = jnp.array([0.0, 1e-9, 0.5, 2.0])
    w = pde.omega(x, 0.0 * x, jnp)
    r = np.array([0.0, 1e-9, 0.5, 2.0])
    with np.errstate(divide="ignore", invalid="ignore"):
        direct = (1 / np.cosh(r) ** 2) * np.tanh(r) / r / 0.385
    np.testing.assert_allclose(w[1:], direct[1:], rtol=1e-9)
    assert float(w[0]) == pytest.approx(1 / 0.385)
    g = jax.grad(lambda x: pde.omega(x, 0.0, jnp))(0.0)
    assert math.isfinite(float(g))


def test_navier_stokes_3d_exact_vorticity_is_curl_and_divergence_free():
    pde = pdes.build("navier-stokes", 3)
    X = rand_points(pde, jax.random.PRNGKey(5))
    f = PinnFields(exact_apply(pde), X, True)
    wx = pde.exact_vorticity(f.coords, jnp)
    for i in range(3):
        np.testing.assert_allclose(pde._vort(f, i), wx[i], atol=1e-12)
    np.testing.assert_allclose(pde._div(f), 0.0, atol=1e-12)
    assert pde.n_out == 3 and pdes.build("navier-stokes", 2).n_out == 2


def test_navier_stokes_error_is_mean_of_component_rel_l2():
    pde = pdes.build("navier-stokes", 3)
    rng = np.random.default_rng(0)
    ex = rng.normal(size=(50, 3))
    pred = ex + rng.normal(size=(50, 3)) * np.array([0.1, 0.01, 0.001])
    e = pde.errors(jnp.asarray(pred), jnp.asarray(ex), jnp)
    per = [np.linalg.norm(pred[:, c] - ex[:, c]) / np.linalg.norm(ex[:, c]) for c in range(3)]
    assert e["rel_l2"] == pytest.approx(np.mean(per), rel=1e-12)
    assert e["rel_l2_c2"] == pytest.approx(per[2], rel=1e-12)
    assert e["rel_l2_joint"] == pytest.approx(np.linalg.norm(pred - ex) / np.linalg.norm(ex), rel=1e-12)


def test_diffusion_residual_is_the_stated_operator():
    """u = e^{-t} prod cos(pi x_i / 2): residual = u_t - alpha sum_i (u_i^2 + u u_ii), by hand."""
    pde = pdes.build("diffusion", 2, alpha=0.05)
    a = math.pi / 2

    def apply(X):
        return (jnp.exp(-X[:, 0]) * jnp.cos(a * X[:, 1]) * jnp.cos(a * X[:, 2]))[:, None]

    X = rand_points(pde, jax.random.PRNGKey(7))
    t, x, y = X[:, 0], X[:, 1], X[:, 2]
    E, cx, cy, sx, sy = jnp.exp(-t), jnp.cos(a * x), jnp.cos(a * y), jnp.sin(a * x), jnp.sin(a * y)
    u = E * cx * cy
    by_hand = -u - 0.05 * a**2 * E**2 * (cy**2 * (sx**2 - cx**2) + cx**2 * (sy**2 - cy**2))
    np.testing.assert_allclose(pde.residual(PinnFields(apply, X, True)), by_hand, atol=1e-12)
    axes = grid_axes(pde, jax.random.PRNGKey(8))
    g = GridFields(apply, axes, True)
    tg, xg, yg = g.coords
    ug = jnp.exp(-tg) * jnp.cos(a * xg) * jnp.cos(a * yg)
    hand_g = -ug - 0.05 * a**2 * jnp.exp(-2 * tg) * (
        jnp.cos(a * yg) ** 2 * (jnp.sin(a * xg) ** 2 - jnp.cos(a * xg) ** 2)
        + jnp.cos(a * xg) ** 2 * (jnp.sin(a * yg) ** 2 - jnp.cos(a * yg) ** 2))
    np.testing.assert_allclose(pde.residual(g), hand_g, atol=1e-12)


def test_diffusion_reference_solver_converges_at_second_order():
    from pdes.diffusion import _initial_np
    from pdes.reference import porous

    finals = {n: porous.solve(_initial_np, 2, n, 0.05, n_snap=3)[2][-1] for n in (26, 51, 101)}
    fine = finals[101]
    err = {n: np.linalg.norm(finals[n] - fine[::100 // (n - 1), ::100 // (n - 1)])
           / np.linalg.norm(fine[::100 // (n - 1), ::100 // (n - 1)]) for n in (26, 51)}
    # e(h) = C (h^2 - h_fine^2) for a second-order scheme: ratio (0.08^2-0.02^2)/(0.04^2-0.02^2) = 5
    assert 3.5 < err[26] / err[51] < 6.5, err
    # the error constant behind the docstring's accuracy claim (C ~ 1.2, relative)
    assert err[51] / (0.04**2 - 0.02**2) < 2.0


def test_diffusion_reference_matches_its_initial_and_boundary_data(tmp_path, monkeypatch):
    monkeypatch.setenv("PINNBENCH_CACHE", str(tmp_path))
    from pdes.diffusion import initial

    pde = pdes.build("diffusion", 2, ref_n=41)
    x = np.linspace(-1, 1, 41)[1:-1:3]
    X, Y = np.meshgrid(x, x, indexing="ij")
    u0 = pde.exact([np.zeros_like(X), X, Y], np)
    np.testing.assert_allclose(u0, initial([X, Y], np), atol=1e-12)  # IC at interior nodes
    for t in (0.0, 0.37, 1.0):
        edge = pde.exact([np.full(40, t), np.full(40, -1.0), np.linspace(-1, 1, 40)], np)
        assert np.max(np.abs(edge)) < 1e-12  # u = 0 on the boundary
    later = pde.exact([jnp.full(3, 0.5), jnp.array([0.3, -0.5, 0.0]), jnp.array([0.2, -0.1, -0.5])], jnp)
    assert isinstance(later, jax.Array) and bool(jnp.all(later > 0.05))
    assert list((tmp_path / "reference").glob("porous-*.npz")), "reference not cached on disk"
    with pytest.raises(ValueError, match="concrete"):
        jax.jit(lambda t: pde.exact([t, t, t], jnp))(jnp.zeros(2))


# -- the modified MLP ---------------------------------------------------------------------------
def test_modified_mlp_matches_its_equations():
    net = ModifiedMLP([5, 5, 5, 2], "tanh", jnp.float64)
    x = jax.random.normal(jax.random.PRNGKey(0), (7, 3), jnp.float64)
    p = jax.tree_util.tree_map(lambda a: a + 0.1, net.init(jax.random.PRNGKey(1), x))["params"]
    lin = lambda n, h: h @ np.asarray(p[n]["kernel"]) + np.asarray(p[n]["bias"])  # noqa: E731
    xn = np.asarray(x)
    U, V, H = np.tanh(lin("encoder_u", xn)), np.tanh(lin("encoder_v", xn)), np.tanh(lin("hidden_0", xn))
    for k in (1, 2):
        Z = np.tanh(lin(f"hidden_{k}", H))
        H = (1 - Z) * U + Z * V
    np.testing.assert_allclose(net.apply({"params": p}, x), lin("out", H), rtol=1e-12)


@pytest.mark.parametrize("method,params,expected", [
    # SPINN paper script configs (REFERENCES.md 2.4): PINN 4x128 tanh on 3 inputs; SPINN
    # modified_mlp L=4 width 64 r=32 on 3 axes; plain SPINN L=4 = 3 hidden layers
    ("pinn", {}, 3 * 128 + 128 + 3 * (128 * 128 + 128) + 129),
    ("pinn", {"mlp": "modified"}, 3 * 128 + 128 + 3 * (128 * 128 + 128) + 129 + 2 * (3 * 128 + 128)),
    ("spinn", {"mlp": "modified", "depth": 4, "width": 64, "rank": 32}, 44_832),
    ("spinn", {"depth": 3, "width": 64, "rank": 32}, 3 * (128 + 2 * 4160 + 2080)),
])
def test_parameter_counts_of_the_paper_configs(method, params, expected):
    M = methods.get(method)(pdes.build("klein-gordon", 2), 4, params)
    assert M.n_params(jax.eval_shape(M.init, jax.random.PRNGKey(0))) == expected


def test_mlp_option_rejects_unknown_kinds():
    with pytest.raises(ValueError, match="modified"):
        methods.get("spinn").resolve_params({"mlp": "resnet"})
    assert methods.get("pinn").all_defaults()["mlp"] == "plain"
    assert methods.get("spinn").all_defaults()["mlp"] == "plain"
