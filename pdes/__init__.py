"""PDE families, each scaling with a dimension argument. Registry: name -> PDE class.

Adding a PDE: write a module with a `PDE` subclass and add one line below.
"""

from __future__ import annotations

from .base import PDE, Condition, Fields, Registry, SeparableTerm, UnknownName, as_tuple
from .heat import Heat
from .nsm_poisson import NsmPoisson
from .reaction_diffusion import ReactionDiffusion

REGISTRY = Registry("PDE")
REGISTRY.add("heat", Heat)
REGISTRY.add("nsm-poisson", NsmPoisson)
REGISTRY.add("nsm-reaction", ReactionDiffusion)


def get(name: str) -> type[PDE]:
    return REGISTRY.get(name)


def build(name: str, dim: int, **params) -> PDE:
    return REGISTRY.get(name)(dim, **params)


__all__ = ["PDE", "Condition", "Fields", "Registry", "SeparableTerm", "UnknownName", "as_tuple",
           "REGISTRY", "get", "build"]
