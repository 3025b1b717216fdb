"""Method adapters. Registry: name -> Method subclass.

Adding a method: one module with a `Method` subclass and one line below.
"""

from __future__ import annotations

from pdes import Registry

from .base import Method
from .nsm import Nsm, NsmFdPinn
from .pinn import Pinn
from .spinn import Spinn

REGISTRY = Registry("method")
REGISTRY.add("pinn", Pinn)
REGISTRY.add("spinn", Spinn)
REGISTRY.add("nsm", Nsm)
REGISTRY.add("nsm-fdpinn", NsmFdPinn)


def get(name: str) -> type[Method]:
    return REGISTRY.get(name)


__all__ = ["Method", "REGISTRY", "get"]
