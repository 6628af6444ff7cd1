"""Network morphisms by name: ``apply(name, genome, state_dict, rng)`` returns a child that
unpacks as ``(child_genome, child_state_dict)`` and carries its provenance, or raises
``NotApplicable`` when the genome has no legal site.

Exact morphisms keep the parent's function; approximate ones (LEMONADE's ANM) shrink the network,
change its function a little, and are repaired by ``repair`` (distillation from the parent).
"""

from __future__ import annotations

from typing import Mapping

import numpy as np
import torch

from genomes import Genome
from genomes.registry import Registry
from genomes.spaces import SearchSpace

from ..base import Child, NotApplicable, Operator

__all__ = ["NotApplicable", "apply", "get", "names"]

_REGISTRY = Registry("morphism", {
    "deepen": "operators.morphisms.exact:Deepen",
    "widen": "operators.morphisms.exact:Widen",
    "add_skip": "operators.morphisms.exact:AddSkip",
    "widen_kernel": "operators.morphisms.exact:WidenKernel",
    "insert_branch": "operators.morphisms.exact:InsertBranch",
    "remove_layer": "operators.morphisms.approximate:RemoveLayer",
    "shrink": "operators.morphisms.approximate:Shrink",
    "replace_op": "operators.morphisms.approximate:ReplaceOp",
})


def names(exact: bool | None = None) -> list[str]:
    """Morphism names; ``exact=True`` only the function-preserving ones, ``False`` the others."""
    every = _REGISTRY.names()
    return every if exact is None else [n for n in every if _REGISTRY.load(n).exact == exact]


def get(name: str, **options) -> Operator:
    """The morphism ``name``, built with its options (unknown ones are named in the error)."""
    return _REGISTRY.build(name, **options)


def apply(name: str, genome: Genome, state_dict: Mapping[str, torch.Tensor],
          rng: np.random.Generator, *, space: SearchSpace | None = None) -> Child:
    """Apply the morphism ``name`` at a site drawn with ``rng``; parents are not modified."""
    return get(name).make([(genome, state_dict)], rng, space=space)
