"""What a run may spend: generations, evaluations, wall-clock seconds and training epochs.

``plan(config)`` says what a config will spend at most, before anything runs (``evonas
validate`` prints it); a ``Budget`` counts what a run has spent, across resumed sessions, and
says which budget ends it. Whichever budget runs out first binds.

>>> from evonas.config import parse
>>> config = parse({"objectives": [{"name": "val_error"}],
...                 "search": {"population": 4, "offspring": 4, "generations": 2},
...                 "training": {"epochs": 4, "early_ranking": {"rungs": [1, 4], "keep": 0.5}}})
>>> plan(config, expensive=True)   # 4 x 4 epochs, then per generation 4 x 1 + 2 x 3
Plan(evaluations=12, epochs=36, generations=2)
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from evonas.config import RunConfig

__all__ = ["BUDGETS", "Budget", "Plan", "halving_epochs", "plan"]

BUDGETS = ("generations", "evaluations", "seconds", "epochs")  # the order exhausted() checks


@dataclass(frozen=True)
class Plan:
    """What a config plans to spend, at most: evaluations (individuals whose schedule runs),
    training epochs summed over them, and generations after the initial population."""

    evaluations: int
    epochs: int
    generations: int


def halving_epochs(n: int, rungs: Sequence[int], keep: float) -> int:
    """Epochs that successive halving spends on ``n`` candidates when none fails: all train to
    ``rungs[0]``, then ``ceil(keep * alive)`` go on to each next rung."""
    total, alive, reached = 0, n, 0
    for rung in rungs:
        total += alive * (rung - reached)
        reached, alive = rung, math.ceil(keep * alive)
    return total


def plan(config: RunConfig, *, generations: int | None = None,
         expensive: bool | None = None) -> Plan:
    """What ``config`` spends at most over ``generations`` (its own when None). ``expensive``:
    whether evaluations train (None: whether any of the config's objectives is expensive); a
    run without training plans 0 epochs. Duplicates and failures only make a run spend less."""
    search, training = config.search, config.training
    generations = search.generations if generations is None else generations
    if expensive is None:
        expensive = _trains(config)
    cap = search.max_evaluations
    initial = search.population if cap is None else min(search.population, cap)
    full = generations if cap is None else min(generations, (cap - initial) // search.offspring)
    rest = 0 if cap is None or full == generations else min(search.offspring,
                                                            cap - initial - full * search.offspring)
    er = training.early_ranking

    def children(n: int) -> int:
        return halving_epochs(n, er.rungs, er.keep) if er is not None else n * training.epochs

    epochs = initial * training.epochs + full * children(search.offspring) + children(rest)
    if not expensive:
        epochs = 0
    if search.max_epochs is not None:
        epochs = min(epochs, search.max_epochs)
    return Plan(evaluations=initial + full * search.offspring + rest, epochs=epochs,
                generations=full + (rest > 0))


def _trains(config: RunConfig) -> bool:
    """Whether any objective needs training; one that cannot be built counts as expensive
    (a plan is an upper bound)."""
    import objectives

    for item in config.objectives:
        try:
            if objectives.get(item.name, **item.options()).cost == "expensive":
                return True
        except (ValueError, TypeError):
            return True
    return False


class Budget:
    """Evaluations, generations, wall-clock seconds and training epochs a run may spend;
    whichever ends first binds.

    ``generations`` counts generations after the initial population (generation 0, which is
    always made); ``used`` is what earlier sessions spent (``to_dict()`` of their budget, kept
    in a checkpoint), so a resumed run goes on counting. ``clock`` (seconds, monotonic) is for
    tests.
    """

    def __init__(self, *, generations: int, max_evaluations: int | None, max_seconds: float | None,
                 max_epochs: int | None, planned: Plan, used: dict[str, Any] | None = None,
                 clock: Callable[[], float] | None = None):
        self.generations = generations
        self.max_evaluations = max_evaluations
        self.max_seconds = max_seconds
        self.max_epochs = max_epochs
        self.planned = planned
        used = _checked(used or {})
        self.evaluations, self.epochs = used["evaluations"], used["epochs"]
        self.generation = used["generations"]
        self._before = used["seconds"]
        self._clock = clock or time.monotonic
        self._since = self._clock()

    @classmethod
    def of(cls, config: RunConfig, *, generations: int | None = None,
           used: dict[str, Any] | None = None, expensive: bool | None = None,
           clock: Callable[[], float] | None = None) -> Budget:
        """The budget ``config`` sets (``generations`` overrides its own, as ``resume
        --generations`` does)."""
        search = config.search
        generations = search.generations if generations is None else generations
        return cls(generations=generations, max_evaluations=search.max_evaluations,
                   max_seconds=search.max_seconds, max_epochs=search.max_epochs,
                   planned=plan(config, generations=generations, expensive=expensive),
                   used=used, clock=clock)

    # ------------------------------------------------------------------ counting
    def spend(self, *, evaluations: int = 0, epochs: int = 0) -> None:
        """Count finished evaluations and the training epochs they took."""
        if evaluations < 0 or epochs < 0:
            raise ValueError(f"cannot spend a negative amount ({evaluations} evaluations, "
                             f"{epochs} epochs)")
        self.evaluations += evaluations
        self.epochs += epochs

    def generation_done(self, generation: int) -> None:
        """Generation ``generation`` has ended (0: the initial population)."""
        self.generation = max(self.generation, generation)

    @property
    def seconds(self) -> float:
        """Wall-clock seconds spent, earlier sessions included."""
        return self._before + max(self._clock() - self._since, 0.0)

    # ------------------------------------------------------------------ questions
    def exhausted(self) -> str | None:
        """The budget that is spent ("generations", "evaluations", "seconds", "epochs"; the
        first in that order), or None while the run may go on. Asked before each generation."""
        seconds = self.seconds
        if self.generation >= self.generations:
            return "generations"
        if self.max_evaluations is not None and self.evaluations >= self.max_evaluations:
            return "evaluations"
        if self.max_seconds is not None and seconds >= self.max_seconds:
            return "seconds"
        if self.max_epochs is not None and self.epochs >= self.max_epochs:
            return "epochs"
        return None

    def left(self) -> dict[str, float | int | None]:
        """What is left of each budget, never below 0; None for one the config leaves open."""
        def rest(limit: float | None, used: float) -> float | None:
            return None if limit is None else max(limit - used, 0)

        return {"generations": max(self.generations - self.generation, 0),
                "evaluations": rest(self.max_evaluations, self.evaluations),
                "seconds": rest(self.max_seconds, self.seconds),
                "epochs": rest(self.max_epochs, self.epochs)}

    def fraction(self) -> float:
        """Progress from 0 to 1: the largest share used of the planned evaluations, the
        seconds and the epochs (1 once a budget is exhausted)."""
        return self._progress()[1]

    def binding(self) -> str:
        """The budget ``fraction()`` comes from: the exhausted one, else the one furthest
        spent ("evaluations" on a tie)."""
        return self._progress()[0]

    def _progress(self) -> tuple[str, float]:
        if (spent := self.exhausted()) is not None:
            return spent, 1.0
        shares = {"evaluations": self.evaluations / max(self.planned.evaluations, 1)}
        if self.max_seconds is not None:
            shares["seconds"] = self.seconds / self.max_seconds
        if self.max_epochs is not None:
            shares["epochs"] = self.epochs / self.max_epochs
        name = max(shares, key=lambda k: shares[k])  # the first of the largest: evaluations
        return name, min(max(shares[name], 0.0), 1.0)

    def describe(self) -> str:
        """The binding budget's progress in words: "12/300 evaluations", "40% of 60 s"."""
        name, share = self._progress()
        if name == "seconds":
            return f"{share:.0%} of {self.max_seconds:g} s"
        if name == "epochs":
            return f"{self.epochs}/{self.max_epochs} epochs"
        if name == "generations":
            return f"{self.generation}/{self.generations} generations"
        return f"{self.evaluations}/{self.planned.evaluations} evaluations"

    def to_dict(self) -> dict[str, Any]:
        """What was spent, as plain JSON (for a checkpoint; ``used`` of the next session)."""
        return {"evaluations": self.evaluations, "epochs": self.epochs,
                "seconds": round(self.seconds, 3), "generations": self.generation}

    def __repr__(self) -> str:
        return (f"Budget(generations={self.generation}/{self.generations}, evaluations="
                f"{self.evaluations}/{self.max_evaluations}, seconds={self.seconds:.1f}/"
                f"{self.max_seconds}, epochs={self.epochs}/{self.max_epochs})")


def _checked(used: dict[str, Any]) -> dict[str, Any]:
    """``used`` from a checkpoint: counts are non-negative ints, seconds a finite number >= 0."""
    if not isinstance(used, dict):
        raise TypeError(f"a budget's used amounts are a mapping, got {type(used).__name__}")
    out: dict[str, Any] = {}
    for key in ("evaluations", "epochs", "generations"):
        value = used.get(key, 0)
        if type(value) is not int or value < 0:
            raise ValueError(f"budget used {key} must be an int >= 0, got {str(value)[:40]!r}")
        out[key] = value
    seconds = used.get("seconds", 0.0)
    if type(seconds) not in (int, float) or not math.isfinite(seconds) or seconds < 0:
        raise ValueError(f"budget used seconds must be a finite number >= 0, got "
                         f"{str(seconds)[:40]!r}")
    out["seconds"] = float(seconds)
    return out
