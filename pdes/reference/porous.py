"""Finite-difference reference solver for u_t = α ∇·(u ∇u) = (α/2) Δ(u²) on [-1, 1]^d.

The SPINN paper's nonlinear diffusion (S1, Cho et al., NeurIPS 2023) has no closed form and the
solver behind its reference data is not published (REFERENCES.md 1.1 S1), so pinnbench computes
its own: method of lines on a uniform grid with ``n`` nodes per axis (boundary nodes included,
held at u = 0), the conservative second-order stencil Δ_h(u²) (the flux form (α/2)Δ(u²) equals
the paper's α(|∇u|² + uΔu)), and classical RK4 in time with a fixed step well inside RK4's
stability bound for the linearised diffusivity α·max(u). Snapshots are stored every
``1/(n_snap - 1)`` time units.

Accuracy: second order in h (tested in ``tests/test_pdes.py`` by refinement); time error is
negligible at the chosen step. `Interpolant` evaluates the snapshots anywhere by cubic
B-splines in (t, x...) (``scipy.ndimage.map_coordinates``).
"""

from __future__ import annotations

import os
import tempfile
from functools import lru_cache
from pathlib import Path

import numpy as np

RK4_REAL_STABILITY = 2.78  # RK4's stability interval on the negative real axis is about [-2.785, 0]


def laplacian(w: np.ndarray, h: float) -> np.ndarray:
    """Second-order 2d+1-point Laplacian on the interior nodes; zero on the boundary nodes."""
    out = np.zeros_like(w)
    inner = tuple(slice(1, -1) for _ in range(w.ndim))
    for a in range(w.ndim):
        lo = list(inner)
        hi = list(inner)
        lo[a], hi[a] = slice(0, -2), slice(2, None)
        out[inner] += w[tuple(lo)] + w[tuple(hi)] - 2.0 * w[inner]
    return out / (h * h)


def solve(u0, d: int, n: int, alpha: float, t_max: float = 1.0, n_snap: int = 101,
          safety: float = 0.8) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Solve from ``u0(list_of_axis_grids) -> array`` to ``t_max``.

    Returns (t (n_snap,), x (n,), U (n_snap, n, ..., n)) in float64; x is the per-axis grid.
    """
    x = np.linspace(-1.0, 1.0, n)
    h = x[1] - x[0]
    grids = np.meshgrid(*([x] * d), indexing="ij")
    u = np.asarray(u0(grids), np.float64).copy()
    boundary = np.zeros(u.shape, bool)
    for a in range(d):
        idx = [slice(None)] * d
        idx[a] = 0
        boundary[tuple(idx)] = True
        idx[a] = -1
        boundary[tuple(idx)] = True
    u[boundary] = 0.0

    def rhs(v):
        return 0.5 * alpha * laplacian(v * v, h)

    lam = 4.0 * d * alpha * max(float(np.abs(u).max()), 1e-12) / h**2
    dt_max = safety * RK4_REAL_STABILITY / lam
    interval = t_max / (n_snap - 1)
    sub = max(1, int(np.ceil(interval / dt_max)))
    dt = interval / sub
    snaps = [u.copy()]
    for _ in range(n_snap - 1):
        for _ in range(sub):
            k1 = rhs(u)
            k2 = rhs(u + 0.5 * dt * k1)
            k3 = rhs(u + 0.5 * dt * k2)
            k4 = rhs(u + dt * k3)
            u = u + dt / 6.0 * (k1 + 2 * k2 + 2 * k3 + k4)
        snaps.append(u.copy())
    return np.linspace(0.0, t_max, n_snap), x, np.stack(snaps)


class Interpolant:
    """Cubic-spline evaluation of gridded snapshots U[t, x_1, ..., x_d] at arbitrary points."""

    def __init__(self, t: np.ndarray, x: np.ndarray, U: np.ndarray):
        from scipy.ndimage import spline_filter

        self.t, self.x = t, x
        self.coef = spline_filter(U, order=3, mode="nearest")

    def __call__(self, coords: list) -> np.ndarray:
        from scipy.ndimage import map_coordinates

        arrs = np.broadcast_arrays(*[np.asarray(c, np.float64) for c in coords])
        shape = arrs[0].shape
        idx = [(arrs[0].ravel() - self.t[0]) / (self.t[1] - self.t[0])]
        idx += [(a.ravel() - self.x[0]) / (self.x[1] - self.x[0]) for a in arrs[1:]]
        vals = map_coordinates(self.coef, np.stack(idx), order=3, mode="nearest", prefilter=False)
        return vals.reshape(shape)


CACHE_VERSION = 1


def cache_dir() -> Path:
    """``$PINNBENCH_CACHE`` or ``~/.cache/pinnbench``: reference solutions are stored there."""
    return Path(os.environ.get("PINNBENCH_CACHE") or Path.home() / ".cache" / "pinnbench")


@lru_cache(maxsize=4)
def cached_solution(u0, d: int, n: int, alpha: float, t_max: float, n_snap: int, tag: str = ""):
    """`solve` + `Interpolant`, cached in the process and on disk (``tag`` names ``u0``)."""
    path = cache_dir() / "reference" / (
        f"porous-{tag}-d{d}-n{n}-a{alpha!r}-T{t_max!r}-s{n_snap}-v{CACHE_VERSION}.npz")
    if tag and path.exists():
        try:
            with np.load(path) as z:
                return Interpolant(z["t"], z["x"], z["U"])
        except (OSError, ValueError, KeyError):
            pass  # unreadable cache: recompute
    t, x, U = solve(u0, d, n, alpha, t_max, n_snap)
    if tag:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".npz")
            with os.fdopen(fd, "wb") as fh:
                np.savez(fh, t=t, x=x, U=U)
            os.replace(tmp, path)
        except OSError:
            pass  # a read-only home is fine: the solution is just not cached
    return Interpolant(t, x, U)
