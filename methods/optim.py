"""First-order optimizer registry: case parameter ``optimizer`` -> an optax transformation.

Adding one is one entry in :data:`OPTIMIZERS` (a function of the method's resolved parameters
returning an ``optax.GradientTransformation``); the methods that list it in their
``choices["optimizer"]`` accept it. Second-order optimizers with their own step (KFAC, KFAC*)
are methods today (``methods/kfac.py``).
"""

from __future__ import annotations

from typing import Callable

import optax

#: name -> (resolved method params -> optax transformation)
OPTIMIZERS: dict[str, Callable[[dict], optax.GradientTransformation]] = {
    "adam": lambda p: optax.adam(p["lr"]),  # Kingma & Ba, ICLR 2015
}


def build(params: dict) -> optax.GradientTransformation:
    """The optimizer named by ``params["optimizer"]``, configured from ``params``."""
    name = params["optimizer"]
    if name not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {name!r} (valid: {', '.join(sorted(OPTIMIZERS))})")
    return OPTIMIZERS[name](params)
