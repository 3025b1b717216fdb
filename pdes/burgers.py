"""Viscous Burgers' equation u_t + lambda_1 u u_x - lambda_2 u_xx = 0 on t in [0, 1], x in [-1, 1].

The standard PINN setting of Raissi, Perdikaris, Karniadakis, "Physics-informed neural
networks", J. Comput. Phys. 378 (2019), sec. 3.1.1 (forward) and sec. 4.1.1 (identification of
lambda_1, lambda_2): u(0, x) = -sin(pi x), u(t, +-1) = 0, lambda_1 = 1, lambda_2 = nu = 0.01/pi.
A shock forms at x = 0 near t = 0.3.

There is no closed form. ``exact`` is a *reference*: pinnbench's own Cole-Hopf solution
evaluated by Gauss-Hermite quadrature (`cole_hopf`), pointwise at the requested coordinates (no
interpolation; it needs concrete arrays, not traced ones). The IC and BC terms use their closed
forms. ``coefficients`` names lambda_1 and lambda_2 for inverse mode.
"""

from __future__ import annotations

import math

import numpy as np

from .base import PDE, Condition

NU = 0.01 / math.pi
#: numpy's hermgauss overflows beyond about 360 nodes
MAX_NODES = 350


def cole_hopf(t, x, nu: float = NU, n_nodes: int = 200):
    """u(t, x) of u_t + u u_x = nu u_xx, u(0, x) = -sin(pi x), on the whole line (2-periodic).

    Cole-Hopf: u = -2 nu phi_x / phi with phi the heat-kernel convolution of
    exp(-(1/(2 nu)) int u0) = exp(-cos(pi y) / (2 pi nu)) (up to a constant), which gives

        u(t, x) = -int sin(pi (x - s z)) F(x - s z) e^{-z^2} dz / int F(x - s z) e^{-z^2} dz,
        F(y) = exp(-cos(pi y) / (2 pi nu)),  s = sqrt(4 nu t),

    both integrals by ``n_nodes``-point Gauss-Hermite quadrature, with the exponents shifted
    by their maximum per point (F spans e^{+-50} at nu = 0.01/pi). Vectorised over broadcasting
    ``t`` and ``x`` (numpy); t = 0 gives u0 exactly.
    """
    t, x = np.broadcast_arrays(np.asarray(t, np.float64), np.asarray(x, np.float64))
    z, w = np.polynomial.hermite.hermgauss(n_nodes)
    with np.errstate(divide="ignore"):
        logw = np.log(w)
    s = np.sqrt(4.0 * nu * t)[..., None]
    y = x[..., None] - s * z
    expo = logw - np.cos(np.pi * y) / (2.0 * np.pi * nu)
    expo = expo - expo.max(axis=-1, keepdims=True)
    e = np.exp(expo)
    return -(np.sin(np.pi * y) * e).sum(-1) / e.sum(-1)


class Burgers(PDE):
    name = "burgers"
    description = "Burgers u_t + l1 u u_x = l2 u_xx, x in [-1,1], u0 = -sin(pi x), l2 = 0.01/pi (Raissi 2019)"
    citation = "Raissi, Perdikaris, Karniadakis, J. Comput. Phys. 378 (2019), sec. 3.1.1 / 4.1.1"
    dims = (1,)
    time_dependent = True
    defaults = {"lambda_1": 1.0, "lambda_2": NU, "n_nodes": 200}
    solution = "reference"
    coefficients = {"lambda_1": "convection coefficient (1)", "lambda_2": "viscosity nu (0.01/pi)"}

    def setup(self):
        for k in ("lambda_1", "lambda_2"):
            v = self.params[k]
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                raise ValueError(f"burgers parameter {k} = {v!r} must be a number")
        self.lambda_1 = float(self.params["lambda_1"])
        self.lambda_2 = float(self.params["lambda_2"])
        if not self.lambda_2 > 0:
            raise ValueError(f"burgers parameter lambda_2 = {self.lambda_2!r} must be positive")
        n = self.params["n_nodes"]
        if isinstance(n, bool) or not isinstance(n, int) or not 2 <= n <= MAX_NODES:
            raise ValueError(f"burgers parameter n_nodes = {n!r} must be an integer from 2 to {MAX_NODES}")

    def bounds(self):
        return [(0.0, 1.0), (-1.0, 1.0)]

    def residual(self, f):
        u = f.u()
        return f.dt() + self.coef("lambda_1") * u * f.d(0) - self.coef("lambda_2") * f.d(0, 2)

    def exact(self, coords, xp):
        t, x = coords
        try:
            tn, xn = np.asarray(t), np.asarray(x)
        except Exception as e:  # a tracer: the reference is a numpy quadrature
            raise ValueError("burgers reference needs concrete coordinates (not traced)") from e
        # lambda_1 rescales u: u solves the lambda_1 = 1 equation divided by lambda_1
        u = cole_hopf(tn, xn, self.lambda_2, self.params["n_nodes"]) / self.lambda_1
        return xp.asarray(u.astype(np.asarray(x).dtype if np.asarray(x).dtype.kind == "f" else np.float64))

    def _ic(self, f):
        return f.u() + f.xp.sin(math.pi * f.x(0))

    def _bc(self, f):
        return f.u()

    def conditions(self):
        return [Condition("ic", "ic", 0, "lo", self._ic),
                Condition("bc_x0_lo", "bc", 1, "lo", self._bc),
                Condition("bc_x0_hi", "bc", 1, "hi", self._bc)]

    def describe(self):
        return {**super().describe(),
                "exact": f"reference: Cole-Hopf by {self.params['n_nodes']}-node Gauss-Hermite quadrature"}
