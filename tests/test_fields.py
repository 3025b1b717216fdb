"""The fields vocabulary of each method against an independent computation (jax.hessian)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import methods
import pdes
from methods.pinn import PinnFields
from methods.spinn import Spinn

jax.config.update("jax_enable_x64", True)


def _pointwise_derivs(fn, P):
    """u, gradient and Hessian of a scalar function at each row of P, by reverse-over-reverse."""
    return jax.jit(jax.vmap(lambda p: (fn(p), jax.grad(fn)(p), jax.hessian(fn)(p))))(P)


@pytest.mark.parametrize("dim", [1, 3])
def test_pinn_fields_match_hessian(dim):
    pde = pdes.build("heat", dim)
    M = methods.get("pinn")(pde, 4, {"width": 16, "depth": 2}, "float64")
    params = M.init(jax.random.PRNGKey(0))["params"]
    X = jax.random.uniform(jax.random.PRNGKey(1), (7, pde.n_in), jnp.float64)
    f = PinnFields(lambda X: M.net.apply(params, X), X, True)
    one = lambda p: M.net.apply(params, p[None])[0, 0]  # noqa: E731
    u, g, H = _pointwise_derivs(one, X)
    tol = dict(rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(f.u(), u, rtol=1e-12)
    np.testing.assert_allclose(f.dt(), g[:, 0], **tol)
    for i in range(dim):
        np.testing.assert_allclose(f.d(i, 1), g[:, i + 1], **tol)
        np.testing.assert_allclose(f.d(i, 2), H[:, i + 1, i + 1], **tol)
    np.testing.assert_allclose(f.lap(), jnp.trace(H[:, 1:, 1:], axis1=1, axis2=2), **tol)
    np.testing.assert_allclose(f.dd("t", 0), H[:, 0, 1], **tol)


def test_pinn_third_derivative_matches_finite_difference():
    pde = pdes.build("heat", 1)
    M = methods.get("pinn")(pde, 4, {"width": 16, "depth": 2}, "float64")
    params = M.init(jax.random.PRNGKey(0))["params"]
    X = jax.random.uniform(jax.random.PRNGKey(1), (5, 2), jnp.float64)
    f = PinnFields(lambda X: M.net.apply(params, X), X, True)
    h = 1e-3
    e = jnp.array([0.0, 1.0])
    d2 = lambda X: PinnFields(lambda Y: M.net.apply(params, Y), X, True).d(0, 2)  # noqa: E731
    fd = (d2(X + h * e) - d2(X - h * e)) / (2 * h)
    np.testing.assert_allclose(f.d(0, 3), fd, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("dim", [1, 2])
def test_spinn_fields_match_hessian_of_pointwise_function(dim):
    pde = pdes.build("heat", dim)
    M = methods.get("spinn")(pde, 5, {"width": 8, "depth": 2, "rank": 4}, "float64")
    params = M.init(jax.random.PRNGKey(0))["params"]
    axes = M.sample(jax.random.PRNGKey(3))["axes"]
    f = M.fields(params, axes)
    one = lambda p: M.predict_params(params, p[None])[0]  # noqa: E731
    grid = jnp.stack(jnp.meshgrid(*axes, indexing="ij"), -1).reshape(-1, pde.n_in)
    u, g, H = _pointwise_derivs(one, grid)
    tol = dict(rtol=1e-10, atol=1e-12)
    flat = lambda a: a.reshape(-1)  # noqa: E731
    np.testing.assert_allclose(flat(f.u()), u, rtol=1e-12)
    np.testing.assert_allclose(flat(f.dt()), g[:, 0], **tol)
    for i in range(dim):
        np.testing.assert_allclose(flat(f.d(i, 1)), g[:, i + 1], **tol)
        np.testing.assert_allclose(flat(f.d(i, 2)), H[:, i + 1, i + 1], **tol)
    np.testing.assert_allclose(flat(f.lap()), jnp.trace(H[:, 1:, 1:], axis1=1, axis2=2), **tol)
    np.testing.assert_allclose(flat(f.dd("t", 0)), H[:, 0, 1], **tol)


class ExactHeatSpinn(Spinn):
    """A SPINN whose axis 'networks' are the exact CP factors of the heat solution.

    u* = sum_i exp(-k c^2 t) sin(c x_i) has CP rank d: rank slot i carries exp(-k c^2 t) on the
    time axis, sin(c x_i) on axis i and 1 elsewhere. Derivatives still go through the method's
    own forward-mode machinery (nested jvp + merge).
    """

    def axis_features(self, params, a, x, k=0):
        pde, d = self.pde, self.pde.dim

        def fn(x):
            if a == 0:
                cols = [jnp.exp(-pde.kappa * pde.c**2 * x)] * d
            else:
                cols = [jnp.sin(pde.c * x) if i == a - 1 else jnp.ones_like(x) for i in range(d)]
            return jnp.stack(cols, -1)

        for _ in range(k):
            fn = (lambda g: lambda x: jax.jvp(g, (x,), (jnp.ones_like(x),))[1])(fn)
        return fn(x)


@pytest.mark.parametrize("dim", [1, 2, 4])
def test_exact_heat_solution_has_zero_residual_through_both_methods(dim):
    pde = pdes.build("heat", dim)
    X = jax.random.uniform(jax.random.PRNGKey(0), (64, pde.n_in), jnp.float64)
    exact = lambda X: pde.exact([X[:, i] for i in range(X.shape[1])], jnp)[:, None]  # noqa: E731
    r = pde.residual(PinnFields(exact, X, True))
    assert float(jnp.max(jnp.abs(r))) < 1e-6
    M = ExactHeatSpinn(pde, 6, {"rank": dim}, "float64")
    axes = M.sample(jax.random.PRNGKey(1))["axes"]
    f = M.fields(None, axes)
    assert float(jnp.max(jnp.abs(pde.residual(f)))) < 1e-6
    # the CP merge reproduces u* on the grid, so the IC/BC terms vanish too
    np.testing.assert_allclose(f.u(), pde.exact(f.coords, jnp), rtol=1e-12, atol=1e-12)
    loss, terms = M.loss(None, {"axes": axes})
    assert float(loss) < 1e-12
    assert set(terms) == {"res", "ic", "bc"}
