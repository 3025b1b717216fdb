"""Method adapters. Registry: name -> Method subclass.

Adding a method: one module with a `Method` subclass and one line below.
"""

from __future__ import annotations

from pdes import Registry

from .base import Method
from .causal import CausalPinn, SpinnCausal
from .kfac import Kfac, KfacStar
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
REGISTRY.add("kfac", Kfac)
REGISTRY.add("kfac-star", KfacStar)
REGISTRY.add("pinn-torch", PinnTorch)


def get(name: str) -> type[Method]:
    return REGISTRY.get(name)


__all__ = ["Method", "REGISTRY", "get"]


def _load_plugins() -> None:
    """Out-of-tree methods: an entry point in the group ``pinnbench.methods`` (name -> class)."""
    import warnings
    from importlib.metadata import entry_points

    for ep in entry_points(group="pinnbench.methods"):
        if ep.name in REGISTRY:
            continue
        try:
            REGISTRY.add(ep.name, ep.load())
        except Exception as e:  # a broken plugin must not break the harness
            warnings.warn(f"pinnbench: method plugin {ep.name!r} failed to load: {e}", stacklevel=2)


_load_plugins()
