"""Method adapters. Registry: name -> Method subclass.

Adding a method: one module with a `Method` subclass and one line below.
"""

from __future__ import annotations

from pdes import Registry

from . import gauss_newton  # noqa: F401  (registers engd, engd-layerwise, hessian-free)
from .base import Method
from .causal import CausalPinn, SpinnCausal
from .kfac import KfacPinn, KfacStarPinn
from .nsm import Nsm, NsmFdPinn
from .pinn import Pinn
from .pinn_fl import PinnFL
from .pinn_torch import PinnTorch
from .spinn import Spinn
from .spinn_lowrank import SpinnLowrank

REGISTRY = Registry("method")
REGISTRY.add("pinn", Pinn)
REGISTRY.add("spinn", Spinn)
REGISTRY.add("spinn-lowrank", SpinnLowrank)
REGISTRY.add("causal", CausalPinn)
REGISTRY.add("spinn-causal", SpinnCausal)
REGISTRY.add("nsm", Nsm)
REGISTRY.add("nsm-fdpinn", NsmFdPinn)
REGISTRY.add("pinn-fl", PinnFL)
REGISTRY.add("kfac", KfacPinn)  # preset: pinn-fl + optimizer kfac
REGISTRY.add("kfac-star", KfacStarPinn)  # preset: pinn-fl + optimizer kfac-star
REGISTRY.add("pinn-torch", PinnTorch)


def get(name: str) -> type[Method]:
    return REGISTRY.get(name)


def canonical(name: str, params: dict) -> tuple[str, dict]:
    """The one name of the computation "method ``name`` with case parameters ``params``": a
    preset and its base method with the preset's optimizer are one computation, so
    ``pinn-fl`` + ``optimizer = "kfac"`` is ``kfac``, ``kfac`` + ``optimizer = "kfac-star"`` is
    ``kfac-star`` and ``kfac`` + ``optimizer = "adam"`` is ``pinn-fl``. ``params`` comes back
    without an ``optimizer`` key that equals the chosen name's default (case ids of suites
    that never name the optimizer do not change)."""
    cls = get(name)
    base = cls.preset_of or name
    opt = params.get("optimizer", cls.all_defaults()["optimizer"])
    chosen = base
    for n in REGISTRY.names():
        c = get(n)
        if (c.preset_of or n) == base and c.all_defaults()["optimizer"] == opt:
            chosen = n
            break
    out = dict(params)
    if out.get("optimizer") == get(chosen).all_defaults()["optimizer"]:
        del out["optimizer"]
    return chosen, out


__all__ = ["Method", "REGISTRY", "canonical", "get"]


# out-of-tree methods: entry points in the group ``pinnbench.methods`` (name -> Method subclass)
REGISTRY.load_plugins("pinnbench.methods")
