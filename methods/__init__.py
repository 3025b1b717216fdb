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


# out-of-tree methods: entry points in the group ``pinnbench.methods`` (name -> Method subclass)
REGISTRY.load_plugins("pinnbench.methods")
