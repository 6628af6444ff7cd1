"""The search strategy: which individuals become parents, which proposers make the children (the
operator mix), which of LEMONADE's candidates are trained, who survives, and what the proposers
are told. It never evaluates and never writes: the ask-and-tell loop hands it individuals."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

import operators
from genomes import Genome
from genomes.spaces import SearchSpace
from operators import Child, Member, Proposer, Request, Result
from operators.base import copy_state

from evonas.individual import Individual

from .portfolio import Portfolio, hv_credits
from .ranking import first_front, minimisation_matrix
from .selection import make_selection

__all__ = ["OperatorStats", "Proposal", "Strategy"]

ROUNDS = 8  # rounds of proposing that may refill slots lost to duplicates or inapplicable operators


@dataclass
class OperatorStats:
    """One operator's account: proposals made, duplicates among them, children evaluated,
    children that entered the front, and seconds spent proposing."""

    proposals: int = 0
    duplicates: int = 0
    evaluated: int = 0
    front: int = 0
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"proposals": self.proposals, "duplicates": self.duplicates,
                "evaluated": self.evaluated, "front": self.front, "seconds": round(self.seconds, 4)}


@dataclass
class Proposal:
    """A child and where it came from, before it becomes an individual."""

    child: Child
    operator: str
    parents: tuple[int, ...]
    hash: str = field(default="")


class Strategy:
    """Parents, the operator mix, LEMONADE's candidates and survival, on one config's settings.

    ``rng(*purpose)`` gives the generator for a purpose (derived from the run seed), so that a
    resumed run draws what the interrupted one drew. With a ``portfolio`` the mix's weights
    adapt to the children's hypervolume improvements (``evonas.search.portfolio``).
    """

    def __init__(self, *, space: SearchSpace, directions: Mapping[str, str], cheap: Sequence[str],
                 selection: str, backend: str, tournament: int, candidates: int,
                 operators_: Mapping[str, tuple[float, dict[str, Any]]],
                 rng: Callable[..., np.random.Generator],
                 warn: Callable[[str], None] = lambda text: None,
                 preview: Callable[[Sequence[Genome]], list[dict[str, float] | None]] | None = None,
                 previewed: Sequence[str] = (), portfolio: Portfolio | None = None):
        self.space, self.directions, self.rng, self.warn = space, dict(directions), rng, warn
        self.preview = preview or (lambda genomes: [{} for _ in genomes])
        self.previewed = tuple(k for k in directions if k in previewed)
        keys = list(directions)
        self.cheap = list(cheap)
        self.selection = make_selection(selection, backend, tournament=tournament,
                                        cheap=[keys.index(k) for k in self.cheap])
        self.candidates = candidates
        self.proposers: dict[str, Proposer] = {n: operators.get(n, **o) for n, (_, o) in operators_.items()}
        self.weights = {n: float(w) for n, (w, _) in operators_.items()}
        self.portfolio = portfolio
        # for proposers that train to propose: where their jobs run, and on what (see Request)
        self.dispatch: Callable | None = None
        self.task: dict[str, Any] | None = None
        self.training: dict[str, Any] | None = None
        self.stats = {name: OperatorStats() for name in self.proposers}
        self.discarded: list[Result] = []  # duplicates and unchosen candidates, told at the end

    # ------------------------------------------------------------------ proposing
    def wanted(self, n: int) -> int:
        """How many children to propose for ``n`` trained ones (LEMONADE proposes more)."""
        return n * (self.candidates if self.selection.archive else 1)

    def propose(self, population: Sequence[Individual], generation: int, n: int, *,
                seen: set[str], budget: Mapping[str, Any], weights: bool) -> list[Proposal]:
        """Up to ``n`` new architectures from the operator mix; slots lost to duplicates or to
        operators that cannot apply are refilled, for at most ``ROUNDS`` rounds."""
        members = tuple(_member(p) for p in population)
        F = self.matrix(population)
        born = np.array([p.id for p in population])
        raw = np.array([[p.record.objectives[k] for k in self.directions] for p in population],
                       dtype=float).reshape(len(population), len(self.directions))
        by_hash = {m.genome.canonical_hash(): m.id for m in members}
        names = list(self.proposers)
        mix = self.portfolio.probabilities() if self.portfolio is not None else self.weights
        p = np.array([mix[k] for k in names])
        p = p / p.sum()
        taken: list[Proposal] = []
        batch: set[str] = set()
        for round_ in range(ROUNDS):
            need = n - len(taken)
            if need <= 0:
                break
            rng = self.rng("propose", generation, round_)
            picks = self.selection.parents(F, born, 2 * need, rng)
            groups = [(members[picks[2 * k]], members[picks[2 * k + 1]]) for k in range(need)]
            draws = rng.choice(len(names), size=need, p=p)
            for j, name in enumerate(names):
                slots = [k for k in range(need) if draws[k] == j]
                if not slots:
                    continue
                request = Request(n=len(slots), parents=tuple(groups[k] for k in slots),
                                  population=members, objectives=raw, directions=self.directions,
                                  seen=_ReadOnly(seen), space=self.space, budget=dict(budget),
                                  generation=generation, weights=weights,
                                  rng=self.rng("request", generation, round_, name),
                                  preview=self.preview, previewed=self.previewed,
                                  dispatch=self.dispatch, task=self.task, training=self.training)
                start = time.perf_counter()
                try:
                    children = self.proposers[name].propose(request)[: len(slots)]
                except Exception as exc:  # noqa: BLE001 - a failing proposer makes way for others
                    self.warn(f"operator {name!r} failed to propose in generation {generation} "
                              f"({type(exc).__name__}: {exc}); other operators fill its slots")
                    children = []
                stats = self.stats[name]
                stats.seconds += time.perf_counter() - start
                stats.proposals += len(children)
                for child in children:
                    parents = tuple(by_hash[h] for h in child.provenance.parents if h in by_hash)
                    proposal = Proposal(child, name, parents, child.genome.canonical_hash())
                    if not self.space.contains(child.genome):  # a proposer's mistake: told, dropped
                        self.discarded.append(self.result(proposal, None, "invalid", generation))
                        continue
                    if proposal.hash in seen or proposal.hash in batch:
                        stats.duplicates += 1
                        self.discarded.append(self.result(proposal, None, "duplicate", generation))
                        continue
                    batch.add(proposal.hash)
                    taken.append(proposal)
        return taken[:n]

    def choose(self, population: Sequence[Individual], candidates: Sequence[Individual], n: int,
               generation: int) -> list[int]:
        """Indices of the candidates to train: all of them, or LEMONADE's ``n`` drawn by inverse
        density over the cheap objectives."""
        if not self.selection.archive or len(candidates) <= n:
            return list(range(len(candidates)))
        ref = np.array([[p.record.objectives[k] for k in self.cheap] for p in population])
        pts = np.array([[c.cheap[k] for k in self.cheap] for c in candidates])
        keep = self.selection.choose_children(ref, pts, n, self.rng("lemonade", generation))
        return [int(i) for i in keep]

    # ------------------------------------------------------------------ surviving
    def survive(self, pool: Sequence[Individual], k: int, generation: int) -> list[Individual]:
        if not pool:
            raise RuntimeError("every individual of the first generation failed; see the journal")
        keep = self.selection.survivors(self.matrix(pool), np.array([p.id for p in pool]), k,
                                        self.rng("survive", generation))
        return [pool[i] for i in keep]

    def front(self, individuals: Sequence[Individual]) -> list[Individual]:
        """The Pareto front of the complete individuals, ordered by their objective values."""
        done = [i for i in individuals if i.complete]
        if not done:
            return []
        F = self.matrix(done)
        return [done[i] for i in sorted(first_front(F), key=lambda i: F[i].tolist())]

    def matrix(self, individuals: Sequence[Individual]) -> np.ndarray:
        return minimisation_matrix([i.record for i in individuals], self.directions)

    # ------------------------------------------------------------------ telling
    def result(self, proposal: Proposal, ind: Individual | None, status: str,
               generation: int) -> Result:
        return Result(id=None if ind is None else ind.id, genome=proposal.child.genome,
                      record=None if ind is None else ind.record, operator=proposal.operator,
                      parents=proposal.parents, proposal=proposal.child, status=status,
                      generation=generation)

    def tell(self, evaluated: Sequence[tuple[Individual, Child | None]], front_ids: set[int],
             generation: int, *, warn: Callable[[str], None] = lambda text: None,
             previous_front: Sequence[Individual] = ()) -> None:
        """Hand every proposer this generation's results: the evaluated children, then the
        duplicates and unchosen candidates; update the per-operator account, and the
        portfolio with each child's hypervolume improvement over ``previous_front`` (the front
        before this generation; none in generation 0). A proposer whose ``tell`` raises is
        warned about, not allowed to stop the run."""
        if self.portfolio is not None and previous_front:
            rows = [self.matrix([ind])[0] if ind.complete else None for ind, _ in evaluated]
            credits = hv_credits(self.matrix(previous_front), rows)
            self.portfolio.credit([(ind.operator, c) for (ind, _), c in zip(evaluated, credits)])
        results = []
        for ind, child in evaluated:
            if ind.operator in self.stats:
                self.stats[ind.operator].evaluated += 1
                self.stats[ind.operator].front += ind.id in front_ids
            results.append(Result(ind.id, ind.genome, ind.record, ind.operator, ind.parents,
                                  child, "evaluated", generation))
        results += self.discarded
        self.discarded = []
        for name, proposer in self.proposers.items():
            try:
                proposer.tell(tuple(results))
            except Exception as exc:  # noqa: BLE001 - a proposer that fails to learn
                warn(f"operator {name!r} failed to learn from generation {generation} "
                     f"({type(exc).__name__}: {exc}); it goes on with what it knew")

    # ------------------------------------------------------------------ state
    def state(self) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
        """The proposers' states (JSON, and tensors named ``<operator>/<name>``) and the account."""
        data: dict[str, Any] = {"proposers": {}, "stats": self.accounts()}
        if self.portfolio is not None:
            data["portfolio"] = self.portfolio.state()
        tensors: dict[str, torch.Tensor] = {}
        for name, proposer in self.proposers.items():
            doc, named = proposer.state()
            data["proposers"][name] = doc
            tensors.update({f"{name}/{k}": v for k, v in named.items()})
        return data, tensors

    def load_state(self, data: Mapping[str, Any], tensors: Mapping[str, torch.Tensor]) -> None:
        for name, proposer in self.proposers.items():
            prefix = f"{name}/"
            proposer.load_state(dict(data.get("proposers", {}).get(name, {})),
                                {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)})
        for name, counts in data.get("stats", {}).items():
            if name in self.stats:
                self.stats[name] = OperatorStats(**counts)
        if self.portfolio is not None:
            self.portfolio.load_state(data.get("portfolio", {}))

    def mix(self) -> dict[str, float]:
        """Each operator's share of the slots: the portfolio's probabilities when it adapts,
        else the configured weights, normalised."""
        if self.portfolio is not None:
            return self.portfolio.probabilities()
        total = sum(self.weights.values())
        return {n: w / total for n, w in self.weights.items()}

    def accounts(self) -> dict[str, dict[str, Any]]:
        return {name: stats.to_dict() for name, stats in self.stats.items()}


class _ReadOnly(AbstractSet):
    """A view of the seen hashes that a proposer cannot change."""

    def __init__(self, items: set[str]):
        self._items = items

    def __contains__(self, item: object) -> bool:
        return item in self._items

    def __iter__(self):
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)


def _member(ind: Individual) -> Member:
    def weights():  # a copy: a proposer cannot change an individual's weights
        try:
            return copy_state(ind.trained_weights)
        except ValueError:  # never trained (a run that trains nothing)
            return None

    return Member(ind.id, ind.genome, ind.record, ind.operator, ind.generation, weights)
