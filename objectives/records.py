"""Frozen evaluation records: what one evaluation of one genome produced.

The engine journals them and hands them to the proposal operators (``tell``); nobody mutates a
record after it is made (like Optuna's ``FrozenTrial``). ``to_dict``/``from_dict`` give the JSON
form.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Mapping

__all__ = ["EpochStats", "EvalState", "EvaluationRecord", "FrozenDict"]


class EvalState(str, Enum):
    PENDING = "pending"
    COMPLETE = "complete"
    PRUNED = "pruned"  # stopped by the early-ranking schedule; its values are partial
    FAILED = "failed"


@dataclass(frozen=True)
class EpochStats:
    """One training epoch: its index (1-based), mean training loss, validation accuracy, seconds."""

    epoch: int
    train_loss: float
    val_accuracy: float
    seconds: float


class FrozenDict(dict):
    """A read-only dict of floats that still pickles (records travel between processes)."""

    def _refuse(self, *args, **kwargs):
        raise TypeError("evaluation records are read-only")

    __setitem__ = __delitem__ = update = pop = popitem = clear = setdefault = _refuse
    __ior__ = _refuse

    def __reduce__(self):
        return (FrozenDict, (dict(self),))


def _frozen(mapping: Mapping[str, float] | None) -> FrozenDict:
    return FrozenDict({k: float(v) for k, v in (mapping or {}).items()})


@dataclass(frozen=True)
class EvaluationRecord:
    """The outcome of evaluating one genome.

    ``objectives`` holds the selectable objective values (in their natural direction);
    ``reported`` holds values shown to the user but never used for selection (test accuracy).
    ``epochs`` is the fidelity reached: the number of epochs the network has been trained.
    """

    genome_hash: str
    state: EvalState
    objectives: Mapping[str, float] = field(default_factory=dict)
    reported: Mapping[str, float] = field(default_factory=dict)
    curve: tuple[EpochStats, ...] = ()
    epochs: int = 0
    reason: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "state", EvalState(self.state))
        object.__setattr__(self, "objectives", _frozen(self.objectives))
        object.__setattr__(self, "reported", _frozen(self.reported))
        object.__setattr__(self, "curve", tuple(self.curve))
        if self.state is EvalState.FAILED and not self.reason:
            raise ValueError("a failed evaluation record needs a reason")

    @property
    def ok(self) -> bool:
        return self.state in (EvalState.COMPLETE, EvalState.PRUNED)

    def with_state(self, state: EvalState, reason: str | None = None) -> EvaluationRecord:
        """A copy in another state (e.g. PRUNED once the schedule stops it)."""
        return EvaluationRecord(self.genome_hash, state, self.objectives, self.reported,
                                self.curve, self.epochs, reason or self.reason)

    def to_dict(self) -> dict[str, Any]:
        return {
            "genome_hash": self.genome_hash, "state": self.state.value,
            "objectives": {k: _json_float(v) for k, v in self.objectives.items()},
            "reported": {k: _json_float(v) for k, v in self.reported.items()},
            "curve": [[e.epoch, _json_float(e.train_loss), _json_float(e.val_accuracy),
                       _json_float(e.seconds)] for e in self.curve],
            "epochs": self.epochs, "reason": self.reason,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> EvaluationRecord:
        return cls(
            genome_hash=data["genome_hash"], state=EvalState(data["state"]),
            objectives=data.get("objectives", {}), reported=data.get("reported", {}),
            curve=tuple(EpochStats(int(e), float(l), float(a), float(s))
                        for e, l, a, s in data.get("curve", [])),
            epochs=int(data.get("epochs", 0)), reason=data.get("reason"),
        )


def _json_float(value: float) -> float | str:
    """JSON has no NaN or infinity; write them as strings (``float`` reads them back)."""
    value = float(value)
    return value if math.isfinite(value) else str(value)
