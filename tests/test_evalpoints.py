"""Held-out evaluation points: the same for every method of a case configuration, whatever the
framework (``pinn`` in JAX and ``pinn-torch`` in PyTorch are scored on identical points)."""

from __future__ import annotations

import importlib

import numpy as np
import pytest

import pdes
from bench.evalpoints import eval_points


def _worker_fn(modules):
    """The eval-point function of a worker (found where the harness keeps it)."""
    for name in modules:
        try:
            mod = importlib.import_module(name)
        except ImportError:
            continue
        if hasattr(mod, "_eval_points"):
            return mod._eval_points
    pytest.fail(f"no _eval_points in any of {modules}")


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
    pde = pdes.build(pde_name, dim)
    jax_fn = _worker_fn(["bench.worker", "bench.backends.jax", "bench.backends.jax_worker"])
    torch_fn = _worker_fn(["bench.torch_worker", "bench.backends.torch", "bench.backends.torch_worker"])
    jpts, jex = jax_fn(jax, jnp, pde, seed, 256, jnp.dtype(dtype))
    tpts, tex = torch_fn(torch, pde, seed, 256, getattr(torch, dtype), "cpu")
    jpts, tpts = np.asarray(jpts), tpts.numpy()
    assert jpts.dtype == tpts.dtype == np.dtype(dtype) and jpts.shape == (256, pde.n_in)
    np.testing.assert_array_equal(jpts, tpts)
    np.testing.assert_allclose(np.asarray(jex), tex.numpy(), rtol=1e-5 if dtype == "float32" else 1e-12,
                               atol=1e-6 if dtype == "float32" else 1e-12)


def test_points_depend_on_seed_and_stay_in_the_box():
    box = [(0.0, 1.0), (-2.0, 3.0)]
    a, b = eval_points(box, 500, 0), eval_points(box, 500, 1)
    assert not np.array_equal(a, b) and np.array_equal(a, eval_points(box, 500, 0))
    assert (a[:, 0] >= 0).all() and (a[:, 0] <= 1).all() and (a[:, 1] >= -2).all() and (a[:, 1] <= 3).all()
