"""Search-strategy pillar: operators that make children. Network morphisms keep the parent's
function and inherit its trained weights (Lamarckian); mutation and crossover change the
function and inherit what still fits; ``random`` samples the space afresh. ``get(name)`` gives
any operator by name. Every operator has ``tell`` (learn from finished evaluations) and
``state``/``load_state``, which learning proposers use."""

from __future__ import annotations

from genomes.registry import Registry

from . import morphisms
from .base import Child, NotApplicable, Operator, Provenance
from .inheritance import inherit_partial

__all__ = ["Child", "NotApplicable", "Operator", "Provenance", "get", "inherit_partial",
           "morphisms", "names"]

_OTHERS = Registry("operator", {
    "mutate": "operators.mutation:Mutate",
    "crossover": "operators.crossover:Crossover",
    "random": "operators.sampling:RandomSample",
})


def names() -> list[str]:
    """Every operator a config can name: the morphisms, then mutation, crossover, random."""
    return morphisms.names() + _OTHERS.names()


def get(name: str, /, **options) -> Operator:
    """The operator ``name`` built with ``options`` (a config's ``search.operators`` entry);
    ``ValueError`` names an unknown operator or option."""
    if name in morphisms.names():
        return morphisms.get(name, **options)
    if name not in _OTHERS:
        raise ValueError(f"unknown operator {name!r}; known: {names()}")
    return _OTHERS.build(name, **options)
