"""PDE families, each scaling with a dimension argument. Registry: name -> PDE class.

Adding a PDE: write a module with a `PDE` subclass and add one line below.
"""

from __future__ import annotations

from .advection import Advection
from .allen_cahn import AllenCahn
from .base import PDE, Condition, Fields, Registry, SeparableTerm, UnknownName, as_tuple
from .burgers import Burgers
from .diffusion import Diffusion
from .flow_mixing import FlowMixing
from .heat import Heat
from .helmholtz import Helmholtz
from .klein_gordon import KleinGordon
from .log_fokker_planck import LogFokkerPlanck
from .navier_stokes import NavierStokes
from .nsm_poisson import NsmPoisson
from .poisson import Poisson
from .reaction_diffusion import ReactionDiffusion

REGISTRY = Registry("PDE")
REGISTRY.add("heat", Heat)
REGISTRY.add("helmholtz", Helmholtz)
REGISTRY.add("poisson", Poisson)
REGISTRY.add("advection", Advection)
REGISTRY.add("allen-cahn", AllenCahn)
REGISTRY.add("diffusion", Diffusion)
REGISTRY.add("klein-gordon", KleinGordon)
REGISTRY.add("navier-stokes", NavierStokes)
REGISTRY.add("flow-mixing", FlowMixing)
REGISTRY.add("log-fokker-planck", LogFokkerPlanck)
REGISTRY.add("nsm-poisson", NsmPoisson)
REGISTRY.add("nsm-reaction", ReactionDiffusion)
REGISTRY.add("burgers", Burgers)


# out-of-tree PDEs: entry points in the group ``pinnbench.pdes`` (name -> PDE subclass)
REGISTRY.load_plugins("pinnbench.pdes")


def get(name: str) -> type[PDE]:
    return REGISTRY.get(name)


def build(name: str, dim: int, **params) -> PDE:
    return REGISTRY.get(name)(dim, **params)


__all__ = ["PDE", "Condition", "Fields", "Registry", "SeparableTerm", "UnknownName", "as_tuple",
           "REGISTRY", "get", "build"]
