"""Search spaces by name: ``get("chain", input_shape=(1, 8, 8), num_outputs=10, **options)``.

The registry maps a name to ``module:Class``; a space's module is imported only when asked for.
A user's own space is named ``"package.module:Class"`` or registered as an entry point of group
``evonas.spaces`` (``genomes.registry.Registry``).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ..registry import Registry
from .base import Bounds, SearchSpace

__all__ = ["Bounds", "SearchSpace", "get", "names", "space_class"]

_REGISTRY = Registry("search space", {
    "chain": "genomes.spaces.chain:ChainSpace",
    "multibranch": "genomes.spaces.multibranch:MultiBranchSpace",
    "cell": "genomes.spaces.cell:CellSpace",
    "nb201": "genomes.spaces.nb201:NB201Space",
}, group="evonas.spaces", returns=SearchSpace)


def names() -> list[str]:
    """Names of the registered search spaces (built-in, then entry points)."""
    return _REGISTRY.names()


def space_class(name: str) -> type[SearchSpace]:
    """The class registered under ``name``; ``ValueError`` lists the known names."""
    return _REGISTRY.load(name)


def get(name: str, /, *, input_shape: Iterable[int], num_outputs: int,
        **options: Any) -> SearchSpace:
    """Build the space ``name`` for an input shape and output count, with its options."""
    return _REGISTRY.build(name, input_shape=input_shape, num_outputs=num_outputs, **options)
