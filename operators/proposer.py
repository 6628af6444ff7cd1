"""The proposer interface: what a search strategy hands a proposal operator, and what it tells it.

A proposer gets a ``Request`` (how many children, the parents the strategy chose, the whole
population with its objective values and directions, the architectures already seen, the space,
the budget left, the generation and a random generator) and returns a batch of ``Child``ren.
After their evaluation it gets frozen ``Result``s through ``tell``, including the children that
were duplicates or were not chosen for training. Its state is JSON plus named tensors, so it
survives a checkpoint (safetensors) without pickle. Optuna's samplers and pymoo's operators are
the models: one small interface, options from the config, nothing global.
"""

from __future__ import annotations

from collections.abc import Set
from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar, Mapping, Sequence

import numpy as np
import torch

from genomes import Genome
from genomes.spaces import SearchSpace
from objectives import EvaluationRecord

__all__ = ["EXACT", "APPROXIMATE", "FRESH", "PARTIAL", "TREATMENTS", "Member", "Proposer",
           "Request", "Result"]

# How a child is to be treated, which it declares itself (the engine never checks names):
EXACT = "exact"  # computes its parent's function: fine-tune at training.inherited_lr_scale
APPROXIMATE = "approximate"  # close to its parent's function: repaired (distilled) first
PARTIAL = "partial"  # inherits the tensors that still fit and trains at the full rate
FRESH = "fresh"  # inherits nothing: no module is built until something trains it
TREATMENTS = (EXACT, APPROXIMATE, PARTIAL, FRESH)


@dataclass(frozen=True)
class Member:
    """One individual as a proposer sees it. ``weights()`` loads its trained weights on demand
    (None where it has none, e.g. in a run that trains nothing)."""

    id: int
    genome: Genome
    record: EvaluationRecord | None
    operator: str
    generation: int
    weights: Callable[[], dict[str, torch.Tensor] | None] = field(
        default=lambda: None, repr=False, compare=False)


@dataclass(frozen=True)
class Request:
    """What a proposer may look at when it makes ``n`` children.

    ``parents`` holds one group per slot (the strategy's selection; an operator of arity k takes
    the first k of a group). ``objectives`` has one row per ``population`` member and one column
    per key of ``directions`` (raw values, not turned into minimisation). ``seen`` holds the
    canonical hashes of every architecture already proposed. ``weights`` is False when nothing
    trains, so children should inherit nothing (and build nothing). ``budget`` maps each budget
    (evaluations, generations, seconds, epochs) to what is left (None: unbounded).
    ``preview(genomes)`` measures the objectives named in ``previewed`` (cheap and exact, e.g.
    ``params``; see ``Objective.preview``) for candidates, exactly as screening will: one dict
    per genome, None where measuring failed. A learning proposer models only the other keys.

    A proposer that must train to propose (``gradient``) does not train in the driver: it hands
    plain-data jobs to ``dispatch(fn, jobs)``, which runs ``fn(job, device)`` on the run's
    devices (a device lease, ``timeout_s``, a failure isolated) and returns one result dict per
    job, in order; a job that failed, timed out or lost its worker comes back as
    ``{"failed": reason, "seconds": s}``. ``task`` (the config's task: ``dataset``, ``seed`` and
    its options) and ``training`` (``TrainConfig`` fields) say what such a job trains on. They
    are None where the engine has none to offer (a run that trains nothing).
    """

    n: int
    parents: tuple[tuple[Member, ...], ...]
    population: tuple[Member, ...]
    objectives: np.ndarray
    directions: Mapping[str, str]
    seen: Set[str]
    space: SearchSpace
    budget: Mapping[str, float | int | None]
    generation: int
    rng: np.random.Generator
    weights: bool = True
    preview: Callable[[Sequence[Genome]], list[dict[str, float] | None]] = field(
        default=lambda genomes: [{} for _ in genomes], repr=False, compare=False)
    previewed: tuple[str, ...] = ()
    dispatch: Callable[[Callable[[dict, str], dict], Sequence[dict]], list[dict]] | None = field(
        default=None, repr=False, compare=False)
    task: Mapping[str, Any] | None = None
    training: Mapping[str, Any] | None = None

    @property
    def keys(self) -> list[str]:
        return list(self.directions)

    @property
    def modelled(self) -> list[str]:
        """The objective keys a proposer cannot preview: what a surrogate must predict."""
        return [k for k in self.directions if k not in self.previewed]


@dataclass(frozen=True)
class Result:
    """What became of one proposed child. ``status`` is ``evaluated`` (``record`` is final:
    complete, pruned or failed), ``duplicate`` (its architecture was seen before; never
    evaluated), ``unchosen`` (a candidate the strategy did not train) or ``invalid`` (not a
    member of the space). ``id`` is None for the children that never became individuals."""

    id: int | None
    genome: Genome
    record: EvaluationRecord | None
    operator: str
    parents: tuple[int, ...]
    proposal: Any  # the Child this result answers
    status: str
    generation: int


class Proposer:
    """Makes children on request and may learn from what became of them.

    Subclasses implement ``propose``; learning proposers also ``tell``, ``state`` and
    ``load_state``. Options come from the config (``search.operators: {name: {weight: w,
    option: value}}``) as keyword arguments of the constructor.
    """

    name: ClassVar[str]
    trains: ClassVar[bool] = False  # True: it trains to propose, so only runs that train suit it

    def propose(self, request: Request) -> list:
        """Up to ``request.n`` children (``operators.Child``); fewer where none can be made."""
        raise NotImplementedError

    def applies(self, space: SearchSpace) -> bool:
        """Whether this proposer can make children in ``space`` at all (``operators: auto``
        takes the ones that can)."""
        return True

    def tell(self, results: Sequence[Result]) -> None:
        """Learn from finished (or discarded) children; called once per generation, in order."""

    def state(self) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
        """What must survive a restart: plain JSON data, and named tensors (saved as
        safetensors)."""
        return {}, {}

    def load_state(self, data: dict[str, Any], tensors: Mapping[str, torch.Tensor]) -> None:
        """Restore what ``state()`` returned."""
