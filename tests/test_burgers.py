"""Burgers' equation: the Cole-Hopf/Gauss-Hermite reference converges in the number of nodes,
solves the PDE (finite differences, away from the shock at x = 0), and meets its IC and BC."""

from __future__ import annotations

import math

import numpy as np
import pytest

import pdes
from pdes.burgers import NU, cole_hopf

T = np.linspace(0.0, 1.0, 41)[:, None]
X = np.linspace(-1.0, 1.0, 129)[None, :]


def test_reference_converges_in_the_number_of_hermite_nodes():
    ref = cole_hopf(T, X, n_nodes=300)
    err = {n: np.linalg.norm(cole_hopf(T, X, n_nodes=n) - ref) / np.linalg.norm(ref) for n in (25, 50, 100, 200)}
    assert err[25] > err[50] > err[100], err  # decreasing while the quadrature error dominates
    assert err[25] > 1e-3  # too few nodes is visibly wrong: the test can fail
    assert err[100] < 1e-12 and err[200] < 1e-12, err


def test_reference_solves_burgers_away_from_the_shock():
    h = 1e-4
    t = np.linspace(0.05, 0.95, 19)[:, None]
    x = np.linspace(-0.95, 0.95, 39)
    x = x[np.abs(x) > 0.2][None, :]  # the shock sits at x = 0 from t ~ 0.3

    def u(t, x):
        return cole_hopf(t, x)

    ut = (u(t + h, x) - u(t - h, x)) / (2 * h)
    ux = (u(t, x + h) - u(t, x - h)) / (2 * h)
    uxx = (u(t, x + h) - 2 * u(t, x) + u(t, x - h)) / h**2
    r = ut + u(t, x) * ux - NU * uxx
    scale = np.abs(ut).max()
    assert scale > 0.5
    assert np.abs(r).max() < 1e-5 * scale
    # the wrong viscosity leaves a residual far above that: the check bites
    assert np.abs(ut + u(t, x) * ux - 2 * NU * uxx).max() > 1e-3


def test_reference_meets_initial_and_boundary_conditions_and_forms_the_shock():
    x = np.linspace(-1, 1, 101)
    np.testing.assert_allclose(cole_hopf(0.0, x), -np.sin(math.pi * x), atol=1e-12)
    for t in (0.1, 0.5, 1.0):
        assert np.abs(cole_hopf(np.full(2, t), np.array([-1.0, 1.0]))).max() < 1e-10
    # antisymmetric in x, and a steep front at x = 0 once the shock has formed
    np.testing.assert_allclose(cole_hopf(0.7, x), -cole_hopf(0.7, -x), atol=1e-12)
    assert cole_hopf(0.75, -0.01) > 0.7 > -0.7 > cole_hopf(0.75, 0.01)


def test_burgers_pde_exact_is_the_reference_and_conditions_use_closed_forms():
    import jax.numpy as jnp

    pde = pdes.build("burgers", 1)
    assert pde.solution == "reference" and pde.coefficient_values() == {"lambda_1": 1.0, "lambda_2": NU}
    t, x = np.array([0.3, 0.9]), np.array([0.4, -0.2])
    np.testing.assert_allclose(np.asarray(pde.exact([jnp.asarray(t), jnp.asarray(x)], jnp)),
                               cole_hopf(t, x), rtol=1e-6)
    assert [c.name for c in pde.conditions()] == ["ic", "bc_x0_lo", "bc_x0_hi"]
    with pytest.raises(ValueError, match="n_nodes"):
        pdes.build("burgers", 1, n_nodes=1000)
    with pytest.raises(ValueError, match="dim 2"):
        pdes.build("burgers", 2)


def test_bind_changes_only_the_residual_coefficients():
    pde = pdes.build("heat", 1)
    b = pde.bind({"kappa": 0.5})
    assert b.coef("kappa") == 0.5 and pde.coef("kappa") == 0.25 and b.kappa == 0.25
    with pytest.raises(ValueError, match="valid: kappa"):
        pde.bind({"nu": 1.0})
