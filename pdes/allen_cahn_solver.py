"""Reference solver for the 1-d periodic Allen-Cahn equation (numpy, Fourier + ETDRK4).

    u_t = nu * u_xx + r * (u - u^3),   x in [lo, hi) periodic,   u(0, x) = u0(x)

with nu = 1e-4, r = 5, x in [-1, 1), u0 = x^2 cos(pi x) in the causal-PINN benchmark (Wang,
Sankaran, Perdikaris, arXiv 2203.07404, sec. 5.1; REFERENCES.md 1.4, C1). The published data
(AC.mat) were made with Chebfun's ``spin``; this module is pinnbench's own solver, shipped as
code, so nothing is downloaded.

Method: Fourier pseudo-spectral in x and the exponential time-differencing Runge-Kutta scheme
of order 4 (ETDRK4) of Cox & Matthews, J. Comput. Phys. 176 (2002), with the phi-function
coefficients evaluated by a complex contour integral as in Kassam & Trefethen, SIAM J. Sci.
Comput. 26 (2005), eq. (2.5) and the ``kursiv.m`` listing (here re-derived, not copied). The
linear part L = r - nu k^2 is integrated exactly, the cubic N(u) = -r u^3 explicitly, so the
scheme is stable at dt far above the diffusive limit and converges at order 4 in dt
(checked in ``tests/test_allen_cahn.py``).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Callable

import numpy as np


def wavenumbers(n: int, length: float) -> np.ndarray:
    """Angular wavenumbers of ``np.fft.rfft`` on n points of a period ``length``."""
    return 2.0 * np.pi / length * np.fft.rfftfreq(n, d=1.0 / n)


def etdrk4_coefficients(lin: np.ndarray, dt: float, m: int = 64):
    """(E, E2, Q, f1, f2, f3) of ETDRK4 for the diagonal linear operator ``lin`` and step dt.

    The phi functions are averaged over m points on a unit circle around each dt*L (Kassam &
    Trefethen 2005, sec. 2), which avoids the cancellation of the closed forms near 0.
    """
    h = dt * lin.astype(np.complex128)
    roots = np.exp(1j * np.pi * (np.arange(1, m + 1) - 0.5) / m)
    z = h[:, None] + roots[None, :]
    ez = np.exp(z)
    Q = dt * np.real(np.mean((np.exp(z / 2) - 1.0) / z, axis=1))
    f1 = dt * np.real(np.mean((-4.0 - z + ez * (4.0 - 3.0 * z + z**2)) / z**3, axis=1))
    f2 = dt * np.real(np.mean((2.0 + z + ez * (z - 2.0)) / z**3, axis=1))
    f3 = dt * np.real(np.mean((-4.0 - 3.0 * z - z**2 + ez * (4.0 - z)) / z**3, axis=1))
    return np.exp(h).real, np.exp(h / 2).real, Q, f1, f2, f3


def solve(u0: Callable[[np.ndarray], np.ndarray] | np.ndarray, *, nu: float = 1e-4,
          r: float = 5.0, domain: tuple[float, float] = (-1.0, 1.0), n: int = 512,
          t_end: float = 1.0, dt: float = 1e-3, n_snap: int = 201):
    """Integrate Allen-Cahn; returns (t (n_snap,), x (n,), u (n_snap, n)) in float64.

    ``u0`` is a callable of x or the n initial values on x = lo + (hi - lo) j / n. The step
    count between snapshots must be an integer: ``t_end / (n_snap - 1)`` a multiple of dt.
    """
    lo, hi = domain
    if n < 4 or n % 2:
        raise ValueError(f"n must be an even integer >= 4, got {n!r}")
    if n_snap < 2:
        raise ValueError(f"n_snap must be >= 2, got {n_snap!r}")
    if not dt > 0:
        raise ValueError(f"dt must be positive, got {dt!r}")
    per = (t_end / (n_snap - 1)) / dt
    sub = int(round(per))
    if sub < 1 or abs(per - sub) > 1e-9 * max(per, 1.0):
        raise ValueError(
            f"dt = {dt!r} does not divide the snapshot interval {t_end / (n_snap - 1)!r}"
        )
    x = lo + (hi - lo) * np.arange(n) / n
    u = np.asarray(u0(x) if callable(u0) else u0, dtype=np.float64)
    if u.shape != (n,):
        raise ValueError(f"u0 must give {n} values, got shape {u.shape}")
    k = wavenumbers(n, hi - lo)
    E, E2, Q, f1, f2, f3 = etdrk4_coefficients(r - nu * k**2, dt)

    def nonlin(v):
        w = np.fft.irfft(v, n)
        return np.fft.rfft(-r * w**3)

    v = np.fft.rfft(u)
    out = np.empty((n_snap, n))
    out[0] = u
    for s in range(1, n_snap):
        for _ in range(sub):
            Nv = nonlin(v)
            a = E2 * v + Q * Nv
            Na = nonlin(a)
            b = E2 * v + Q * Na
            Nb = nonlin(b)
            c = E2 * a + Q * (2.0 * Nb - Nv)
            Nc = nonlin(c)
            v = E * v + Nv * f1 + 2.0 * (Na + Nb) * f2 + Nc * f3
        out[s] = np.fft.irfft(v, n)
    t = np.linspace(0.0, t_end, n_snap)
    return t, x, out


def allen_cahn_u0(x, xp=np):
    """The benchmark's initial condition u0 = x^2 cos(pi x)."""
    return x**2 * xp.cos(np.pi * x)


@lru_cache(maxsize=4)
def reference(n: int = 1024, dt: float = 1e-3, n_snap: int = 201, nu: float = 1e-4,
              r: float = 5.0, t_end: float = 1.0):
    """The benchmark's reference solution, computed once per process and cached in memory.

    Defaults (1024 modes, dt = 1e-3, 201 snapshots; about 0.6 s on one CPU core) were chosen by
    measurement: halving dt changes u by < 1e-10, doubling the modes by < 1e-5 relative, and
    bilinear interpolation of the table deviates from a 2048-mode solution by 1.3e-4 relative
    L2 (3e-3 max, at the interfaces), far below PINN errors.
    """
    t, x, u = solve(allen_cahn_u0, nu=nu, r=r, n=n, t_end=t_end, dt=dt, n_snap=n_snap)
    t.flags.writeable = x.flags.writeable = u.flags.writeable = False
    return t, x, u


def interpolate(table, t_grid, x_lo: float, period: float, t, x, xp=np):
    """Bilinear interpolation of ``table`` (n_t, n_x) at (t, x); periodic in x, clamped in t.

    ``t_grid`` is uniform; x-nodes are x_lo + period * j / n_x. Works with numpy and jax.numpy
    arrays (``xp``); broadcasting of t and x follows the array library.
    """
    nt, nx = table.shape
    t0, t1 = float(t_grid[0]), float(t_grid[-1])
    tt = xp.clip((t - t0) / (t1 - t0) * (nt - 1), 0.0, nt - 1.0)
    i0 = xp.clip(xp.floor(tt), 0, nt - 2)
    ft = tt - i0
    xx = (x - x_lo) / period * nx
    fl = xp.floor(xx)
    fx = xx - fl
    k0 = xp.mod(fl, nx)
    k1 = xp.mod(k0 + 1, nx)
    i0, k0, k1 = (_as_index(a, xp) for a in (i0, k0, k1))
    tab = xp.asarray(table)
    lo_row = (1 - fx) * tab[i0, k0] + fx * tab[i0, k1]
    hi_row = (1 - fx) * tab[i0 + 1, k0] + fx * tab[i0 + 1, k1]
    return (1 - ft) * lo_row + ft * hi_row


def _as_index(a, xp):
    return a.astype(np.int32) if hasattr(a, "astype") else xp.asarray(a, dtype=np.int32)
