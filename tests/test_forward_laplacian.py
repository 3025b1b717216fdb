"""Forward Laplacian (methods/forward_laplacian.py) and the pinn-fl method against autodiff."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

jax.config.update("jax_enable_x64", True)

import methods  # noqa: E402
import pdes  # noqa: E402
from methods.forward_laplacian import dense_layers, forward  # noqa: E402
from methods.jaxutil import MLP  # noqa: E402


def _net(n_in, widths=(16, 12), activation="tanh", seed=0):
    net = MLP(list(widths) + [1], activation, jnp.float64)
    params = net.init(jax.random.PRNGKey(seed), jnp.zeros((1, n_in), jnp.float64))
    return net, params


@pytest.mark.parametrize("activation", ["tanh", "gelu"])
def test_forward_laplacian_equals_hessian_trace(activation):
    n_in = 3
    net, params = _net(n_in, activation=activation)
    X = jax.random.uniform(jax.random.PRNGKey(1), (7, n_in), jnp.float64)
    out, inputs = forward(dense_layers(params), X, jnp.ones((1, n_in)), activation)
    u = lambda x: net.apply(params, x[None])[0, 0]  # noqa: E731
    hess = jax.vmap(jax.hessian(u))(X)
    grad = jax.vmap(jax.grad(u))(X)
    np.testing.assert_allclose(out[:, 0, 0], net.apply(params, X)[:, 0], rtol=1e-13, atol=1e-13)
    np.testing.assert_allclose(out[:, 1:1 + n_in, 0], grad, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(out[:, -1, 0], jnp.trace(hess, axis1=1, axis2=2),
                               rtol=1e-11, atol=1e-11)
    assert len(inputs) == 3 and inputs[1].shape == (7, n_in + 2, 16)


def test_weighted_operator_and_hessian_diagonal():
    """Rows of C give Σ_i C_ki ∂_ii u: a weighted operator and the Hessian diagonal at once."""
    n_in = 4
    net, params = _net(n_in, seed=3)
    X = jax.random.uniform(jax.random.PRNGKey(2), (5, n_in), jnp.float64)
    C = jnp.concatenate([jnp.array([[2.0, -1.0, 0.5, 0.0]]), jnp.eye(n_in)])
    out, _ = forward(dense_layers(params), X, C)
    u = lambda x: net.apply(params, x[None])[0, 0]  # noqa: E731
    diag = jnp.diagonal(jax.vmap(jax.hessian(u))(X), axis1=1, axis2=2)
    np.testing.assert_allclose(out[:, 1 + n_in, 0], diag @ C[0], rtol=1e-11, atol=1e-11)
    np.testing.assert_allclose(out[:, 2 + n_in:, 0], diag, rtol=1e-11, atol=1e-11)


@pytest.mark.parametrize("pde_name,dim", [("heat", 2), ("poisson", 3)])
def test_pinn_fl_loss_equals_pinn_loss(pde_name, dim):
    pde = pdes.build(pde_name, dim)
    ref = methods.get("pinn")(pde, 4, {"width": 16, "depth": 2}, "float64")
    fl = methods.get("pinn-fl")(pde, 4, {"width": 16, "depth": 2}, "float64")
    params = ref.init_params(jax.random.PRNGKey(0))
    batch = ref.sample(jax.random.PRNGKey(1))
    (l_ref, t_ref), g_ref = jax.jit(jax.value_and_grad(ref.loss, has_aux=True))(params, batch)
    (l_fl, t_fl), g_fl = jax.jit(jax.value_and_grad(fl.loss, has_aux=True))(params, batch)
    np.testing.assert_allclose(l_fl, l_ref, rtol=1e-12)
    for k in t_ref:
        np.testing.assert_allclose(t_fl[k], t_ref[k], rtol=1e-12, atol=1e-14)
    for a, b in zip(jax.tree_util.tree_leaves(g_fl), jax.tree_util.tree_leaves(g_ref)):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)


def test_pinn_fl_fields_second_and_mixed_derivatives():
    pde = pdes.build("heat", 2)
    fl = methods.get("pinn-fl")(pde, 3, {"width": 8, "depth": 2}, "float64")
    params = fl.init_params(jax.random.PRNGKey(0))
    X = jax.random.uniform(jax.random.PRNGKey(4), (6, 3), jnp.float64)
    f = fl.fields(params, X)
    u = lambda x: fl.net.apply(params, x[None])[0, 0]  # noqa: E731
    H = jax.vmap(jax.hessian(u))(X)
    np.testing.assert_allclose(f.d(1, 2), H[:, 2, 2], rtol=1e-11, atol=1e-12)
    np.testing.assert_allclose(f.dd(0, 1), H[:, 1, 2], rtol=1e-11, atol=1e-12)
    np.testing.assert_allclose(f.dt(), jax.vmap(jax.grad(u))(X)[:, 0], rtol=1e-12)
    np.testing.assert_allclose(f.lap(), H[:, 1, 1] + H[:, 2, 2], rtol=1e-11, atol=1e-12)


def test_pinn_fl_point_counts_and_bad_values():
    pde = pdes.build("heat", 4)
    fl = methods.get("pinn-fl")(pde, 3, {"n_interior": 300, "n_boundary": 50})
    b = fl.sample(jax.random.PRNGKey(0))
    assert b["interior"].shape == (300, 5)
    assert [x.shape[0] for x in b["faces"]] == [25] + [3] * 8  # IC half, BC half over 8 faces
    assert fl.size_info()["n_condition_points"] == 49
    with pytest.raises(ValueError, match="n_interior"):
        methods.get("pinn-fl")(pde, 3, {"n_interior": -1})
    fl = methods.get("pinn-fl")(pde, 3, {"widths": [7, 5]})
    assert fl.n_params(fl.init(jax.random.PRNGKey(0))) == 6 * 7 + 8 * 5 + 6 * 1
    with pytest.raises(ValueError, match="widths"):
        methods.get("pinn-fl")(pde, 3, {"widths": [7, 0]})
    with pytest.raises(ValueError, match="engine"):
        methods.get("pinn-fl")(pde, 3, {"engine": "fwdrev"})
