"""Held-out evaluation points: one draw per case configuration, whatever the framework.

Every method of a case configuration (``pinn`` in JAX, ``pinn-torch`` in PyTorch, ...) is scored
on the same points: they are drawn here, from the case's seed, with one NumPy generator, in
float64, and only then converted to the worker's framework and dtype. (Drawing them with each
framework's own RNG, as the workers once did, gave ``pinn`` and ``pinn-torch`` different test
sets, so their errors were not comparable.)
"""

from __future__ import annotations

import numpy as np

#: the generator's stream for evaluation points, apart from any other use of the case seed
EVAL_STREAM = 0x5EED_E7A1


def eval_points(bounds, n: int, seed: int) -> np.ndarray:
    """``n`` points uniform in the box ``bounds`` (one (lo, hi) per input), float64, shape (n, d):
    the same for every framework given the same (bounds, n, seed)."""
    lo = np.array([b[0] for b in bounds], dtype=np.float64)
    hi = np.array([b[1] for b in bounds], dtype=np.float64)
    rng = np.random.default_rng([EVAL_STREAM, int(seed)])
    return lo + (hi - lo) * rng.random((int(n), len(bounds)))
