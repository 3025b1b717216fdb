"""The Allen-Cahn reference solver (pdes/allen_cahn_solver.py) and the allen_cahn PDE."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.integrate import solve_ivp

import pdes
from pdes.allen_cahn_solver import allen_cahn_u0, interpolate, reference, solve, wavenumbers


def _u0(x):
    return allen_cahn_u0(x)


def test_etdrk4_converges_at_fourth_order_in_dt():
    """Halving dt divides the error at t = 1 by ~16 (order 4), against a 16x finer run."""
    kw = dict(n=64, n_snap=2)
    fine = solve(_u0, dt=1 / 1600, **kw)[2][-1]
    errs = [np.abs(solve(_u0, dt=dt, **kw)[2][-1] - fine).max() for dt in (1 / 25, 1 / 50, 1 / 100)]
    orders = np.log2(np.array(errs[:-1]) / np.array(errs[1:]))
    assert errs[0] > 1e-8  # the coarse runs are not already at round-off
    assert np.all((orders > 3.5) & (orders < 4.6)), (errs, orders)


def test_matches_an_independent_stiff_integrator():
    """Same Fourier semi-discretisation, integrated by scipy's Radau at tight tolerance."""
    n = 64
    t, x, u = solve(_u0, n=n, dt=1e-3, n_snap=5)
    k = wavenumbers(n, 2.0)

    def rhs(_, y):
        uxx = np.fft.irfft(-(k**2) * np.fft.rfft(y), n)
        return 1e-4 * uxx + 5.0 * (y - y**3)

    sol = solve_ivp(rhs, (0.0, 1.0), _u0(x), method="Radau", t_eval=t, rtol=1e-10, atol=1e-12)
    assert sol.success
    assert np.abs(sol.y.T - u).max() < 1e-7


def test_reaction_and_diffusion_parts_against_closed_forms():
    x = -1 + 2 * np.arange(32) / 32
    # spatially constant u0 = a: the logistic-type ODE u' = r(u - u^3) in closed form
    a, r = 0.3, 5.0
    t, _, u = solve(np.full(32, a), n=32, dt=2e-3, n_snap=11, r=r)
    exact = a * np.exp(r * t) / np.sqrt(1 - a**2 + a**2 * np.exp(2 * r * t))
    np.testing.assert_allclose(u, np.broadcast_to(exact[:, None], u.shape), atol=1e-9)
    # r = 0: the heat equation, each Fourier mode decays as exp(-nu k^2 t)
    nu = 0.05
    t, _, u = solve(lambda x: np.sin(np.pi * x) + 0.5 * np.cos(3 * np.pi * x), n=32, dt=0.05,
                    n_snap=5, nu=nu, r=0.0)
    T, X = np.meshgrid(t, x, indexing="ij")
    exact = (np.exp(-nu * np.pi**2 * T) * np.sin(np.pi * X)
             + 0.5 * np.exp(-9 * nu * np.pi**2 * T) * np.cos(3 * np.pi * X))
    np.testing.assert_allclose(u, exact, atol=1e-12)


def test_solver_rejects_bad_input():
    with pytest.raises(ValueError, match="does not divide"):
        solve(_u0, n=16, dt=0.3, n_snap=3)
    with pytest.raises(ValueError, match="n must be an even integer"):
        solve(_u0, n=15)
    with pytest.raises(ValueError, match="u0 must give 16 values"):
        solve(np.zeros(8), n=16)


def test_interpolation_reproduces_nodes_and_is_periodic():
    tab = np.random.default_rng(0).normal(size=(5, 8))
    tg = np.linspace(0, 1, 5)
    T, X = np.meshgrid(tg, -1 + 2 * np.arange(8) / 8, indexing="ij")
    np.testing.assert_allclose(interpolate(tab, tg, -1.0, 2.0, T, X), tab, atol=1e-12)
    np.testing.assert_allclose(interpolate(tab, tg, -1.0, 2.0, T, X + 2.0), tab, atol=1e-12)
    # midpoint in x between the last node and the first (wrap-around)
    mid = interpolate(tab, tg, -1.0, 2.0, tg, np.full(5, 1.0 - 1 / 8))
    np.testing.assert_allclose(mid, 0.5 * (tab[:, -1] + tab[:, 0]), atol=1e-12)
    j = interpolate(tab, tg, -1.0, 2.0, jnp.asarray(T), jnp.asarray(X), jnp)
    np.testing.assert_allclose(np.asarray(j), tab, atol=1e-6)


def test_pde_reference_exact_and_conditions():
    pde = pdes.build("allen-cahn", 1)
    assert pde.weights["ic"] == 100.0 and pde.periodic_axes == (1,)
    t, x, u = reference()
    assert u.shape == (201, 1024) and reference() is reference()  # cached
    # the benchmark's known behaviour: u stays in [-1, 1] and +-1 plateaus form by t = 1
    assert np.abs(u).max() <= 1.0 + 1e-6
    assert np.mean(np.abs(np.abs(u[-1]) - 1) < 0.05) > 0.7
    # exact at t = 0 is the closed-form u0 (up to the bilinear interpolation in x)
    xs = np.linspace(-1, 1, 1001)
    e0 = pde.exact([np.zeros_like(xs), xs], np)
    assert np.abs(e0 - xs**2 * np.cos(np.pi * xs)).max() < 2e-5
    # inside jit with jax.numpy, as the worker and the BC terms use it
    pts = jax.random.uniform(jax.random.PRNGKey(0), (256, 2)) * jnp.array([1.0, 2.0]) - jnp.array([0, 1.0])
    ej = jax.jit(lambda p: pde.exact([p[:, 0], p[:, 1]], jnp))(pts)
    en = pde.exact([np.asarray(pts[:, 0], float), np.asarray(pts[:, 1], float)], np)
    np.testing.assert_allclose(np.asarray(ej), en, atol=1e-5)
    # boundary data stay near the stable state -1
    assert np.abs(u[:, 0] + 1).max() < 5e-3


def test_residual_of_the_reference_is_small_in_the_pde_vocabulary():
    """The PDE residual (through a fields object) of the reference solution, evaluated with
    spectral derivatives of the solver's own output at a few times, is small."""
    pde = pdes.build("allen-cahn", 1)
    t, x, u = solve(_u0, n=512, dt=1e-3, n_snap=101)
    k = wavenumbers(512, 2.0)
    i = np.arange(10, 100, 10)
    uxx = np.fft.irfft(-(k**2) * np.fft.rfft(u[i], axis=1), 512, axis=1)
    ut = (u[i + 1] - u[i - 1]) / (2 * (t[1] - t[0]))

    class F(pdes.Fields):
        def _partial(self, idx, c):
            return {(): u[i], (0,): ut, (1, 1): uxx}[idx]

    r = pde.residual(F(np, [t[i][:, None], x[None, :]], True))
    # central differences in t at dt = 0.01 limit the check, not the solver
    assert np.sqrt(np.mean(r**2)) < 5e-3 * np.sqrt(np.mean(ut**2)) + 1e-3
    assert math.isfinite(float(np.abs(r).max()))
