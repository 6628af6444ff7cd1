"""Early ranking by successive halving: which candidates keep training is a selection decision.

All candidates train to the first rung, are ranked, and only the best ``keep`` fraction continue
(their training resumes, it does not restart) to the next rung, and so on. With several
objectives the ranking is multi-objective: pymoo's non-dominated sorting of the partial values
(cheap objectives are exact at every rung), then crowding distance within a front. Each rung's
ranking is compared with the last rung's (Kendall tau over the candidates that reached it), so a
user can see how far early rankings can be trusted.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Mapping, Sequence

from scipy.stats import kendalltau

from evonas.search.ranking import minimisation_matrix, rank
from objectives import EvalState, EvaluationRecord

__all__ = ["HalvingReport", "Rung", "SuccessiveHalving"]


@dataclass(frozen=True)
class Rung:
    """One rung: its epochs, who trained to it, their ranking (best first), who went on, and
    the Kendall tau of this ranking against the last rung's (None where < 2 reached the end)."""

    epochs: int
    trained: tuple[int, ...]
    ranking: tuple[int, ...]
    promoted: tuple[int, ...]
    failed: tuple[int, ...]
    kendall_tau: float | None = None


@dataclass(frozen=True)
class HalvingReport:
    rungs: tuple[Rung, ...]
    records: tuple[EvaluationRecord | None, ...]  # each candidate's last record (PRUNED if stopped)
    epochs_trained: int  # compute spent, in epochs
    epochs_full: int  # what training every candidate to the last rung would cost

    @property
    def saved(self) -> float:
        """Fraction of the full budget that early ranking did not spend."""
        return 1 - self.epochs_trained / self.epochs_full if self.epochs_full else 0.0

    @property
    def survivors(self) -> tuple[int, ...]:
        return self.rungs[-1].ranking


class SuccessiveHalving:
    """Rungs of epochs (e.g. ``[1, 3, 9]``) and the fraction kept at each rung."""

    def __init__(self, *, rungs: Sequence[int], keep: float):
        rungs = list(rungs)
        if not rungs or any(type(r) is not int or r < 1 for r in rungs) or rungs != sorted(set(rungs)):
            raise ValueError(f"training.early_ranking.rungs must be increasing positive ints, got {rungs!r}")
        if type(keep) not in (int, float) or not 0 < keep <= 1:
            raise ValueError(f"training.early_ranking.keep must be in (0, 1], got {keep!r}")
        self.rungs, self.keep = tuple(rungs), float(keep)

    def promote(self, level: int, ranked: Sequence[int]) -> list[int]:
        """Of the candidates ranked best first at rung ``level``, those that go on."""
        if level == len(self.rungs) - 1:
            return list(ranked)
        return list(ranked[: math.ceil(self.keep * len(ranked))])

    def run(self, n: int, advance: Callable[[int, int], EvaluationRecord] | None,
            directions: Mapping[str, str], *,
            batch: Callable[[list[int], int], list[EvaluationRecord]] | None = None) -> HalvingReport:
        """Run the schedule over candidates ``0..n-1``.

        ``advance(i, epochs)`` trains candidate ``i`` up to ``epochs`` (continuing its earlier
        training) and returns its record; ``directions`` maps objective keys to 'min'/'max'.
        ``batch(indices, epochs)``, where given, does a whole rung at once (in parallel).
        """
        if batch is None:
            if advance is None:
                raise ValueError("pass advance or batch")
            batch = lambda indices, epochs: [advance(i, epochs) for i in indices]  # noqa: E731
        records: list[EvaluationRecord | None] = [None] * n
        reached = [0] * n
        alive, rungs, spent = list(range(n)), [], 0
        for level, epochs in enumerate(self.rungs):
            ok, failed = [], []
            for i, record in zip(alive, batch(list(alive), epochs)):
                records[i] = record
                spent += epochs - reached[i]
                reached[i] = epochs
                (ok if records[i].ok else failed).append(i)
            order = [ok[j] for j in rank(minimisation_matrix([records[i] for i in ok], directions))]
            promoted = self.promote(level, order)
            for i in order[len(promoted):]:
                records[i] = records[i].with_state(EvalState.PRUNED)
            rungs.append(Rung(epochs, tuple(alive), tuple(order), tuple(promoted), tuple(failed)))
            alive = promoted
        final = rungs[-1].ranking
        rungs = [_with_tau(r, final) for r in rungs]
        return HalvingReport(tuple(rungs), tuple(records), spent, n * self.rungs[-1])


def _with_tau(rung: Rung, final: tuple[int, ...]) -> Rung:
    common = [i for i in final if i in rung.ranking]
    if len(common) < 2:
        return rung
    position = {i: p for p, i in enumerate(rung.ranking)}
    tau = kendalltau([position[i] for i in common], list(range(len(common)))).statistic
    return Rung(rung.epochs, rung.trained, rung.ranking, rung.promoted, rung.failed,
                None if math.isnan(tau) else float(tau))
