"""Partial inheritance: a child that is not a morphism of its parents keeps every weight tensor
whose node id and shape still match, and starts the rest from a fresh initialisation."""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import torch

from genomes import Genome

from .base import StateDict

__all__ = ["inherit_partial"]


def inherit_partial(child: Genome, donors: Sequence[Mapping[str, torch.Tensor]],
                    rng: np.random.Generator, *, prefer: Mapping[str, int] | None = None) -> StateDict:
    """The child's weights: each tensor from the first donor (or the donor ``prefer[node]``)
    that has it with the same shape, else a fresh tensor seeded from ``rng``."""
    dtype = next((v.dtype for d in donors for v in d.values() if v.is_floating_point()), torch.float32)
    fresh = child.build(seed=int(rng.integers(2**62)), dtype=dtype).state_dict()
    out = {}
    for key, value in fresh.items():
        node = key.split(".", 1)[0]
        order = list(range(len(donors)))
        if prefer and node in prefer:
            order.insert(0, order.pop(prefer[node]))
        source = next((donors[i][key] for i in order
                       if key in donors[i] and donors[i][key].shape == value.shape), value)
        out[key] = source.detach().clone()
    return out
