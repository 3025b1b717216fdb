"""Held-out evaluation points: the same for every method of a case configuration, whatever the
framework (``pinn`` in JAX and ``pinn-torch`` in PyTorch are scored on identical points)."""

from __future__ import annotations

import numpy as np
import pytest

import pdes
from bench.evalpoints import eval_points


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("pde_name, dim, seed", [("heat", 2, 0), ("heat", 3, 7), ("poisson", 2, 3)])
def test_pinn_and_pinn_torch_get_identical_points(pde_name, dim, seed, dtype):
    torch = pytest.importorskip("torch")
    import jax
    import jax.numpy as jnp

    old = jax.config.jax_enable_x64
    jax.config.update("jax_enable_x64", True)  # float64 cases; restored for the other tests
    try:
        _compare(jax, jnp, torch, pde_name, dim, seed, dtype)
    finally:
        jax.config.update("jax_enable_x64", old)


def _compare(jax, jnp, torch, pde_name, dim, seed, dtype):
    """Both backends' evaluation points for one case configuration (bench.backends)."""
    from dataclasses import replace

    import methods
    from bench.backends import get
    from bench.suite import load

    pde = pdes.build(pde_name, dim)
    case = replace(load("smoke").cases[0], pde=pde_name, dim=dim, seed=seed, dtype=dtype, eval_points=256)
    jb = get("jax")(case)
    jb.configure()
    jpts, jex = jb.eval_points(pde)
    tb = get("torch")(replace(case, method="pinn-torch"))
    tb.configure()
    tb.attach(methods.get("pinn-torch")(pde, 4, {}, dtype))
    tpts, tex = tb.eval_points(pde)
    jpts, tpts = np.asarray(jpts), tpts.cpu().numpy()
    assert jpts.dtype == tpts.dtype == np.dtype(dtype) and jpts.shape == (256, pde.n_in)
    np.testing.assert_array_equal(jpts, tpts)
    np.testing.assert_allclose(np.asarray(jex), tex.cpu().numpy(), rtol=1e-5 if dtype == "float32" else 1e-12,
                               atol=1e-6 if dtype == "float32" else 1e-12)
    np.testing.assert_array_equal(jpts, eval_points(pde.bounds(), 256, seed).astype(dtype))


def test_points_depend_on_seed_and_stay_in_the_box():
    box = [(0.0, 1.0), (-2.0, 3.0)]
    a, b = eval_points(box, 500, 0), eval_points(box, 500, 1)
    assert not np.array_equal(a, b) and np.array_equal(a, eval_points(box, 500, 0))
    assert (a[:, 0] >= 0).all() and (a[:, 0] <= 1).all() and (a[:, 1] >= -2).all() and (a[:, 1] <= 3).all()
