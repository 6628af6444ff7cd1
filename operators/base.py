"""What every operator shares: the child it returns, its provenance, and the template that picks
a site, works on copies (parents stay untouched) and keeps only legal children. An ``Operator``
is a ``Proposer`` that makes each child on its own from the parents the strategy chose."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Iterator, Mapping, Sequence

import numpy as np
import torch

from genomes import Genome, GenomeError
from genomes.spaces import SearchSpace
from genomes.spaces.base import check_rng

from .proposer import EXACT, FRESH, PARTIAL, TREATMENTS, Proposer, Request

__all__ = ["Child", "NotApplicable", "Operator", "Provenance", "Skip", "StateDict", "copy_state"]

StateDict = dict[str, torch.Tensor]


class NotApplicable(Exception):
    """The genome has no site where this operator can make a legal child."""


class Skip(Exception):
    """This site does not work (raised inside an operator; the template tries the next one)."""


@dataclass(frozen=True)
class Provenance:
    """Who made a child: the operator, its parents (canonical hashes), the site (the parent's
    node ids where it acted), what it did there, and whether the child computes exactly its
    parent's function (before any training)."""

    operator: str
    parents: tuple[str, ...]
    site: tuple[str, ...]
    detail: str
    exact: bool

    def to_dict(self) -> dict[str, Any]:
        return {"operator": self.operator, "parents": list(self.parents), "site": list(self.site),
                "detail": self.detail, "exact": self.exact}


@dataclass(frozen=True)
class Child:
    """A new genome, its initial weights (keyed like ``genome.build().state_dict()``; None when it
    inherits nothing), its provenance, and how it is to be treated (``operators.proposer``:
    exact, approximate, partial or fresh). Unpacks as ``genome, state_dict = child``.
    ``cost``: what making it took where a proposer ran a job for it (``seconds``, ``device``);
    the engine journals it with the child."""

    genome: Genome
    state_dict: StateDict | None
    provenance: Provenance
    treatment: str = FRESH
    cost: Mapping[str, Any] = field(default_factory=dict, compare=False)

    def __post_init__(self):
        if self.treatment not in TREATMENTS:
            raise ValueError(f"treatment must be one of {TREATMENTS}, got {self.treatment!r}")
        if self.state_dict is None and self.treatment != FRESH:
            raise ValueError("a child without weights can only be treated as fresh")

    def __iter__(self) -> Iterator[Any]:
        yield self.genome
        yield self.state_dict


def copy_state(state_dict: Mapping[str, torch.Tensor]) -> StateDict:
    return {k: v.detach().clone() for k, v in state_dict.items()}


class Operator(Proposer):
    """An operator makes one child from ``arity`` parents (``make``); ``propose`` asks it for a
    batch, one child per parent group of the request.

    Operators with ``arity`` 0 (``random``) draw from the space instead (``_fresh``).
    ``tell``/``state``/``load_state`` carry what learning proposers need; plain operators keep
    no state.

    ``make`` is the public template (pymoo's ``do``/``_do``): it checks the parents, tries the
    operator's sites in an order drawn from ``rng`` on copies of the parents, and returns the
    first child that is a legal genome inside ``space`` (when given). Subclasses implement
    ``_sites`` (every place the operator could act, in a fixed order) and ``_make`` (build the
    child at one site and describe it, or raise ``Skip``); ``_make`` may return
    ``(site node ids, description)`` where the site is not simply its site argument. At most
    ``max_tries`` sites are tried, so a large genome with few legal sites gives up in bounded
    time.
    """

    name: ClassVar[str]
    exact: ClassVar[bool] = False
    arity: ClassVar[int] = 1
    branching: ClassVar[bool] = False  # True: every child has a node with two inputs
    adds_nodes: ClassVar[int] = 0  # the fewest nodes a child has beyond its first parent
    max_tries: ClassVar[int] = 100  # sites tried before giving up (they are drawn at random)
    needs_weights: ClassVar[bool] = True  # False: ``_make`` handles a parent without weights

    @property
    def treatment(self) -> str:
        """How a child that inherits weights is treated; one that inherits none is fresh."""
        if self.arity == 0:
            return FRESH
        return EXACT if self.exact else PARTIAL

    def propose(self, request: Request) -> list[Child]:
        """One child per parent group, each from its own generator drawn from ``request.rng``
        (a slot where no site works is left out; the strategy refills it)."""
        children = []
        for k in range(request.n):
            rng = np.random.default_rng(request.rng.integers(2**63))
            group = request.parents[k][: self.arity] if self.arity else ()
            parents = [(m.genome, m.weights() if request.weights else None) for m in group]
            try:
                children.append(self.make(parents, rng, space=request.space,
                                          weights=request.weights))
            except NotApplicable:
                continue
        return children

    def make(self, parents: Sequence[tuple[Genome, Mapping[str, torch.Tensor] | None]],
             rng: np.random.Generator, *, space: SearchSpace | None = None,
             weights: bool = True) -> Child:
        """One child of ``parents`` ((genome, weights) pairs; weights may be None, and then the
        child inherits nothing and no module is built)."""
        check_rng(rng)
        if len(parents) != self.arity:
            raise ValueError(f"{self.name} takes {self.arity} parent(s), got {len(parents)}")
        if self.arity == 0:
            if space is None:
                raise ValueError(f"{self.name} proposes from a space; pass space=")
            genome, state, where = self._fresh(space, rng, weights)
            return Child(genome, state, Provenance(self.name, (), (), where, False),
                         FRESH if state is None else PARTIAL)
        for genome, _ in parents:
            genome.validate()
        if space is not None:
            self._check_room(parents[0][0], space)
        sites = self._sites(parents)
        for k in rng.permutation(len(sites))[: self.max_tries]:
            site = sites[int(k)]
            genome = parents[0][0].copy()
            state = copy_state(parents[0][1]) if parents[0][1] is not None else None
            if state is None and self.needs_weights:  # works on tensors; the child keeps none
                state = parents[0][0].build(seed=0).state_dict()
            try:
                where = self._make(genome, state, site, parents, rng, space)
            except (Skip, GenomeError):  # this site does not give a legal genome
                continue
            if genome.problems() or (space is not None and not space.contains(genome)):
                continue
            hashes = tuple(g.canonical_hash() for g, _ in parents)
            if isinstance(where, tuple):  # the operator names its site nodes itself
                nodes, where = where
            else:
                nodes = tuple(x for x in (site if isinstance(site, tuple) else (site,))
                              if isinstance(x, str) and x in parents[0][0])
            if parents[0][1] is None:
                state = None
            return Child(genome, state, Provenance(self.name, hashes, tuple(nodes), where, self.exact),
                         self.treatment if state is not None else FRESH)
        raise NotApplicable(f"{self.name}: no site gives a legal child"
                            + (f" of the {space.name} space" if space is not None else ""))

    def applies(self, space: SearchSpace) -> bool:
        if self.arity == 0:
            return True
        return space.editable and (space.branching or not self.branching)

    def _fresh(self, space: SearchSpace, rng: np.random.Generator, weights: bool):
        raise NotImplementedError

    def _check_room(self, genome: Genome, space: SearchSpace) -> None:
        """Give up at once where no site can work, instead of trying them all."""
        if not space.editable:
            raise NotApplicable(f"{self.name}: the {space.name} space is fixed; its genomes do not "
                                f"change layer by layer")
        if self.branching and not space.branching:
            raise NotApplicable(f"{self.name}: the {space.name} space has no branches")
        if len(genome) + self.adds_nodes > space.bounds.max_nodes:
            raise NotApplicable(f"{self.name}: the genome has no room for more nodes "
                                f"(max_nodes={space.bounds.max_nodes})")

    def _sites(self, parents) -> list:
        raise NotImplementedError

    def _make(self, genome: Genome, state: StateDict, site, parents, rng: np.random.Generator,
              space: SearchSpace | None):
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"
