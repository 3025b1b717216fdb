"""Spectral bases (methods/spectral.py) against independent computations.

Derivatives are checked against jax.grad of the explicit series (Fourier) and numpy's
polynomial calculus (Chebyshev); transforms against numpy's rfft; Parseval weights against the
grid quadrature and against fine quadrature of band-limited fields.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from methods import spectral


@pytest.fixture(autouse=True)
def x64():
    """These checks are about exactness: float64, restored afterwards for other test files."""
    with jax.enable_x64(True):
        yield


def fourier_series(a, b):
    """Explicit scalar function u(x) = sum a_k cos(2 pi k x) + sum b_k sin(2 pi k x)."""
    def u(x):
        kc = jnp.arange(len(a))
        ks = jnp.arange(1, len(b) + 1)
        return (jnp.sum(a * jnp.cos(2 * jnp.pi * kc * x))
                + jnp.sum(b * jnp.sin(2 * jnp.pi * ks * x)))
    return u


@pytest.mark.parametrize("n", [9, 8])
@pytest.mark.parametrize("order", [1, 2, 3])
def test_fourier_derivative_exact_on_trig_polynomials(n, order):
    f = spectral.Fourier(n)
    rng = np.random.default_rng(n + order)
    c = rng.normal(size=n)
    if order % 2 and n % 2 == 0:
        c[f.m] = 0.0  # an odd derivative of the Nyquist cosine leaves the grid's span
    a, b = jnp.asarray(c[: f.m + 1]), jnp.asarray(c[f.m + 1:])
    g = fourier_series(a, b)
    for _ in range(order):
        g = jax.grad(g)
    x = rng.uniform(size=7)
    want = np.asarray(jax.vmap(g)(jnp.asarray(x)))
    got = f.values(x) @ (f.deriv_matrix(order) @ c)
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-8 * (2 * np.pi * n) ** order)


@pytest.mark.parametrize("order", [1, 2, 3])
def test_chebyshev_derivative_exact_on_polynomials(order):
    n = 11
    cb = spectral.Chebyshev(n)
    rng = np.random.default_rng(order)
    p = np.polynomial.Polynomial(rng.normal(size=n))  # degree n-1 in x on [0, 1]
    coef = cb.from_grid @ p(cb.nodes)
    x = rng.uniform(size=9)
    got = cb.values(x) @ (cb.deriv_matrix(order) @ coef)
    np.testing.assert_allclose(got, p.deriv(order)(x), rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("n", [7, 16])
def test_fourier_transform_matches_rfft(n):
    f = spectral.Fourier(n)
    v = np.random.default_rng(0).normal(size=n)
    c = f.from_grid @ v
    X = np.fft.rfft(v) / n
    a = 2 * X.real
    a[0] = X[0].real
    if n % 2 == 0:
        a[-1] = X[-1].real
    np.testing.assert_allclose(c[: f.m + 1], a, atol=1e-12)
    np.testing.assert_allclose(c[f.m + 1:], -2 * X.imag[1: f.n_sin + 1], atol=1e-12)
    np.testing.assert_allclose(f.to_grid @ c, v, atol=1e-12)


def test_chebyshev_transform_interpolates_at_lobatto_nodes():
    cb = spectral.Chebyshev(9)
    assert cb.nodes[0] == 1.0 and abs(cb.nodes[-1]) < 1e-15
    v = np.random.default_rng(1).normal(size=9)
    c = cb.from_grid @ v
    xi = 2 * cb.nodes - 1
    np.testing.assert_allclose(np.polynomial.chebyshev.chebval(xi, c), v, atol=1e-12)


def test_tensor_mixed_derivative_and_products_on_grid():
    """u = T_2(2t-1) sin(2 pi x): u_tx and u^2 through the grid, 2-d Chebyshev x Fourier."""
    tb = spectral.TensorBasis([spectral.Chebyshev(6), spectral.Fourier(9)], jnp.float64)
    t, x = tb.grid_coords(np)
    u = ((2 * (2 * t - 1) ** 2 - 1) * np.sin(2 * np.pi * x))[..., None]
    c = tb.from_grid(jnp.asarray(u))
    ut_x = tb.to_grid(tb.deriv(tb.deriv(c, 0, 1), 1, 1))[..., 0]
    want = 8 * (2 * t - 1) * 2 * np.pi * np.cos(2 * np.pi * x)
    np.testing.assert_allclose(ut_x, want, atol=1e-9)
    # product formed on the grid, evaluated between the nodes: u^2 needs degree 4 in t and
    # wavenumber 2 in x, both inside (6, 9), so the interpolant is exact
    sq = tb.from_grid(tb.to_grid(c) ** 2)
    pts = [np.array([0.13, 0.71]), np.array([0.05, 0.4, 0.93])]
    T, X = np.meshgrid(*pts, indexing="ij")
    exact = ((2 * (2 * T - 1) ** 2 - 1) * np.sin(2 * np.pi * X)) ** 2
    np.testing.assert_allclose(tb.evaluate(sq, pts)[..., 0], exact, atol=1e-10)


def test_parseval_weights_equal_grid_quadrature():
    tb = spectral.TensorBasis([spectral.Chebyshev(7), spectral.Fourier(8)], jnp.float64)
    v = np.random.default_rng(2).normal(size=(7, 8, 1))
    c = np.asarray(tb.from_grid(jnp.asarray(v)))[..., 0]
    lhs = float(np.sum(tb.gamma() * c**2))
    rhs = float(np.sum(tb.quad() * v[..., 0] ** 2))
    assert lhs == pytest.approx(rhs, rel=1e-12)


def test_parseval_weights_equal_integral_for_band_limited_fields():
    """Fourier below Nyquist: uniform mean; Chebyshev below the last mode: Chebyshev weight."""
    rng = np.random.default_rng(3)
    f = spectral.Fourier(8)
    c = rng.normal(size=8)
    c[f.m] = 0.0
    xf = np.arange(256) / 256
    assert np.mean((f.values(xf) @ c) ** 2) == pytest.approx(np.sum(f.gamma * c**2), rel=1e-12)
    cb = spectral.Chebyshev(8)
    c = rng.normal(size=8)
    c[-1] = 0.0
    # Gauss-Chebyshev quadrature (exact for degree < 2*200) of the weight normalised to 1
    x = (1 + np.cos(np.pi * (np.arange(200) + 0.5) / 200)) / 2
    assert np.mean((cb.values(x) @ c) ** 2) == pytest.approx(np.sum(cb.gamma * c**2), rel=1e-12)


def test_resize_pads_and_truncates_consistently():
    tb = spectral.TensorBasis([spectral.Fourier(6), spectral.Chebyshev(4)], jnp.float64)
    c = jnp.asarray(np.random.default_rng(4).normal(size=(2, 6, 4, 1)))
    big = tb.resize(c, (11, 7))
    big_tb = spectral.TensorBasis([spectral.Fourier(11), spectral.Chebyshev(7)], jnp.float64)
    pts = [np.array([0.1, 0.55]), np.array([0.2, 0.9])]
    np.testing.assert_allclose(big_tb.evaluate(big, pts), tb.evaluate(c, pts), atol=1e-12)
    np.testing.assert_allclose(big_tb.resize(big, (6, 4)), c, atol=0)


def test_bad_mode_count_is_rejected():
    with pytest.raises(ValueError, match="modes must be an integer >= 2"):
        spectral.Fourier(1)
    with pytest.raises(ValueError, match="valid: fourier, chebyshev"):
        spectral.make("legendre", 8)
