"""The one thing that flows through the engine: an individual and everything known about it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from genomes import Genome
from objectives import EvalState, EvaluationRecord, TrainState

__all__ = ["Individual"]


@dataclass
class Individual:
    """An id, a genome, its provenance, and (once evaluated) its record and trained weights.

    ``weights`` are the initial weights (inherited from a parent, or None for a fresh start);
    ``state`` is where its training stopped (weights, optimizer, curve), so a promoted candidate
    continues rather than restarts.
    """

    id: int
    genome: Genome
    generation: int
    operator: str = "initial"
    parents: tuple[int, ...] = ()
    detail: str = ""
    inherited: bool = False
    weights: dict | None = field(default=None, repr=False)
    cheap: dict[str, float] = field(default_factory=dict)
    record: EvaluationRecord | None = None
    state: TrainState | None = field(default=None, repr=False)
    seconds: float = 0.0

    @property
    def complete(self) -> bool:
        return self.record is not None and self.record.state is EvalState.COMPLETE

    @property
    def trained_weights(self) -> dict:
        if self.state is None:
            raise ValueError(f"individual {self.id} has not been trained")
        return dict(self.state.model)

    def journal_line(self) -> dict[str, Any]:
        """The journal entry of a finished evaluation (DESIGN.md: one line per evaluation)."""
        record = self.record
        line = {
            "event": "failed" if record.state is EvalState.FAILED else "evaluated",
            "id": self.id, "generation": self.generation, "genome_hash": record.genome_hash,
            "state": record.state.value, "objectives": dict(record.to_dict()["objectives"]),
            "reported": dict(record.to_dict()["reported"]), "epochs": record.epochs,
            "parents": list(self.parents), "operator": self.operator, "detail": self.detail,
            "seconds": round(self.seconds, 3), "curve": record.to_dict()["curve"],
            "genome": self.genome.to_dict(),
        }
        if record.reason:
            line["reason"] = record.reason
        return line
