"""Inverse problems: learn named PDE coefficients from scattered observations of u.

The setting of Raissi, Perdikaris, Karniadakis, J. Comput. Phys. 378 (2019), sec. 4 ("data-driven
discovery"): loss = PDE residual (with the coefficients as trainable scalars) + the IC/BC terms +
a data term mean((u(x_i) - u_i)^2) over ``n_data`` observations drawn uniformly in the domain
from the exact (or reference) solution, with relative Gaussian noise u_i + noise * std(u) * N(0, 1)
as in that paper's noisy-data experiments. The coefficients are trained with the network, by the
same optimizer. Pieces here are pure: the method base class (``JaxMethod``) wires them in.
"""

from __future__ import annotations

import math

import numpy as np

#: step metrics an inverse case adds (one of each per learned coefficient, plus the worst)
COEF_PREFIX = "coef_"


def coef_key(name: str) -> str:
    return f"{COEF_PREFIX}{name}"


def err_key(name: str) -> str:
    return f"{COEF_PREFIX}{name}_rel_err"


MAX_ERR_KEY = "coef_max_rel_err"


def draw_observations(pde, n_data: int, noise: float, seed: int):
    """(X (n_data, n_in), u (n_data,)) numpy float64: uniform points, values of ``pde.exact``
    with relative Gaussian noise (std ``noise`` * std(u)), both from ``seed`` alone."""
    rng = np.random.default_rng([int(seed), 22])
    b = np.array(pde.bounds(), np.float64)
    X = b[:, 0] + (b[:, 1] - b[:, 0]) * rng.random((int(n_data), len(b)))
    u = np.asarray(pde.exact([X[:, i] for i in range(X.shape[1])], np), np.float64)
    if u.ndim > 1 or isinstance(u, tuple):
        raise ValueError(f"inverse mode needs a scalar PDE; {pde.name!r} has {pde.n_out} components")
    if noise:
        u = u + float(noise) * np.std(u) * rng.standard_normal(u.shape)
    return X, u


def coefficient_metrics(values: dict, true: dict, xp) -> dict:
    """Each learned coefficient's value and relative error |c - c*| / |c*| (absolute error for
    a true value of 0), and the worst of them."""
    out, errs = {}, []
    for k, v in values.items():
        t = float(true[k])
        e = xp.abs(v - t) / (abs(t) if t != 0 else 1.0)
        out[coef_key(k)] = v
        out[err_key(k)] = e
        errs.append(e)
    out[MAX_ERR_KEY] = errs[0] if len(errs) == 1 else xp.max(xp.stack(errs))
    return out


def curve_keys(names) -> tuple:
    return tuple(coef_key(k) for k in names) + tuple(err_key(k) for k in names) + (MAX_ERR_KEY,)


def time_to_target(curve: list, target: float) -> dict:
    """Training time and step of the first curve point whose worst coefficient error is at most
    ``target`` (None when never reached or no target)."""
    if target and target > 0:
        for p in curve:
            e = p.get(MAX_ERR_KEY)
            if e is not None and math.isfinite(e) and e <= target:
                return {"time_to_coef_target_s": p["train_s"], "steps_to_coef_target": p["step"]}
    return {"time_to_coef_target_s": None, "steps_to_coef_target": None}
