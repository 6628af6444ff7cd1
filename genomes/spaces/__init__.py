"""Search spaces by name: ``get("chain", input_shape=(1, 8, 8), num_outputs=10, **options)``.

The registry maps a name to ``module:Class``; a space's module is imported only when asked for.
"""

from __future__ import annotations

import importlib
import inspect
from typing import Any, Iterable

from .base import Bounds, SearchSpace

__all__ = ["Bounds", "SearchSpace", "get", "names", "space_class"]

_REGISTRY = {
    "chain": "genomes.spaces.chain:ChainSpace",
    "multibranch": "genomes.spaces.multibranch:MultiBranchSpace",
    "cell": "genomes.spaces.cell:CellSpace",
    "nb201": "genomes.spaces.nb201:NB201Space",
}


def names() -> list[str]:
    """Names of the registered search spaces."""
    return list(_REGISTRY)


def space_class(name: str) -> type[SearchSpace]:
    """The class registered under ``name``; ``ValueError`` lists the known names."""
    if name not in _REGISTRY:
        raise ValueError(f"unknown search space {name!r}; known: {names()}")
    module, cls = _REGISTRY[name].split(":")
    return getattr(importlib.import_module(module), cls)


def get(name: str, *, input_shape: Iterable[int], num_outputs: int, **options: Any) -> SearchSpace:
    """Build the space ``name`` for an input shape and output count, with its options."""
    cls = space_class(name)
    allowed = [p for p in inspect.signature(cls.__init__).parameters if p != "self"]
    unknown = [k for k in options if k not in allowed]
    if unknown:
        raise ValueError(f"unknown option {unknown[0]!r} for space {name!r}; allowed: "
                         f"{[a for a in allowed if a not in ('input_shape', 'num_outputs')]}")
    return cls(input_shape=input_shape, num_outputs=num_outputs, **options)
