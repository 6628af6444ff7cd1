"""Search-strategy pillar: operators that make children. Network morphisms keep the parent's
function and inherit its trained weights (Lamarckian); mutation and crossover change the
function and inherit what still fits; ``random`` samples the space afresh. ``get(name)`` gives
any operator by name. Every operator has ``tell`` (learn from finished evaluations) and
``state``/``load_state``, which learning proposers use (``operators.proposer``)."""

from __future__ import annotations

from genomes.registry import Registry

from . import morphisms
from .base import Child, NotApplicable, Operator, Provenance
from .inheritance import inherit_partial
from .proposer import Member, Proposer, Request, Result

__all__ = ["Child", "Member", "NotApplicable", "Operator", "Proposer", "Provenance", "Request",
           "Result", "applicable", "get", "inherit_partial", "morphisms", "names", "register"]

_OTHERS = Registry("operator", {
    "mutate": "operators.mutation:Mutate",
    "crossover": "operators.crossover:Crossover",
    "random": "operators.sampling:RandomSample",
    "bayesian": "operators.bayesian:Bayesian",
    "rl": "operators.rl:Reinforce",
    "gradient": "operators.gradient:Gradient",
}, group="evonas.operators", returns=Proposer)


def register(name: str, target: str) -> None:
    """Make ``target`` (``"module:Class"``, a ``Proposer`` subclass) available to configs as
    ``name``; the module is imported only when a config names it."""
    if name in names():
        raise ValueError(f"operator {name!r} exists already")
    _OTHERS.add(name, target)


def names() -> list[str]:
    """Every operator a config can name: the morphisms, then mutation, crossover, random."""
    return morphisms.names() + _OTHERS.names()


def applicable(space, *, trains: bool = True) -> list[str]:
    """The operators (built with their default options) that can make children in ``space``,
    in a run that trains networks or not: what ``search.operators: auto`` puts in the mix."""
    out = []
    for name in names():
        op = get(name)
        if op.applies(space) and (trains or not op.trains):
            out.append(name)
    return out


def get(name: str, /, **options) -> Operator:
    """The operator ``name`` built with ``options`` (a config's ``search.operators`` entry; a
    user's own is ``"package.module:Class"`` or an entry point of group ``evonas.operators``);
    ``ValueError`` names an unknown operator or option."""
    if name in morphisms.names():
        return morphisms.get(name, **options)
    if name not in _OTHERS:
        raise ValueError(f"unknown operator {name!r}; known: {names()}, or your own as "
                         f"'package.module:Class'")
    return _OTHERS.build(name, **options)
