"""The one thing that flows through the engine: an individual and everything known about it."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from genomes import Genome
from objectives import EvalState, EvaluationRecord

from evonas.store.states import load_state

if TYPE_CHECKING:
    from objectives import TrainState

__all__ = ["Individual", "STATE_FILE"]

STATE_FILE = re.compile(r"^[0-9]+-e[0-9]+\.safetensors$")  # weights/<id>-e<epochs>.safetensors


@dataclass
class Individual:
    """An id, a genome, its provenance, and (once evaluated) its record and trained weights.

    ``weights`` are the initial weights (inherited from a parent, or None for a fresh start);
    ``state`` is where its training stopped (weights, optimizer, curve), so a promoted candidate
    continues rather than restarts. In a run with a directory the state is also on disk
    (``state_file``, checked against ``state_sha256``) and may be dropped from memory.
    """

    id: int
    genome: Genome
    generation: int
    operator: str = "initial"
    parents: tuple[int, ...] = ()
    detail: str = ""
    inherited: bool = False
    treatment: str = "fresh"  # how its proposer said to treat it: exact, approximate, partial, fresh
    weights: dict | None = field(default=None, repr=False)
    cheap: dict[str, float] = field(default_factory=dict)
    record: EvaluationRecord | None = None
    state: TrainState | None = field(default=None, repr=False)
    seconds: float = 0.0
    proposal: dict[str, Any] = field(default_factory=dict)  # a proposer's job for it: seconds, device
    state_file: Path | None = None
    state_sha256: str | None = None
    _genome_doc: dict | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self):
        self.genome.freeze()  # a recorded architecture never changes; operators edit copies

    @property
    def genome_doc(self) -> dict[str, Any]:
        """The genome's JSON form, made once (an individual's genome never changes)."""
        if self._genome_doc is None:
            self._genome_doc = self.genome.to_dict()
        return self._genome_doc

    @property
    def complete(self) -> bool:
        return self.record is not None and self.record.state is EvalState.COMPLETE

    @property
    def trained_weights(self) -> dict:
        if self.state is not None:
            return dict(self.state.model)
        if self.state_file is not None:
            return dict(load_state(self.state_file, self.state_sha256)[0].model)
        raise ValueError(f"individual {self.id} has not been trained")

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON data for a checkpoint (the weights live in their own file)."""
        return {
            "id": self.id, "generation": self.generation, "operator": self.operator,
            "parents": list(self.parents), "detail": self.detail, "inherited": self.inherited,
            "treatment": self.treatment,
            "cheap": dict(self.cheap), "seconds": self.seconds, "genome": self.genome_doc,
            "record": None if self.record is None else self.record.to_dict(),
            "state_file": None if self.state_file is None else self.state_file.name,
            "state_sha256": self.state_sha256,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any], weights_dir: Path | None = None) -> Individual:
        """The inverse of ``to_dict``; ``ValueError`` for a state file named outside
        ``weights/`` (a checkpoint may only point at the run's own files)."""
        record = data.get("record")
        name = data.get("state_file")
        if name is not None and (not isinstance(name, str) or not STATE_FILE.match(name)):
            raise ValueError(f"individual {data.get('id')}: state_file {str(name)[:100]!r} is not "
                             f"a file of the run's weights/ folder")
        return cls(
            id=int(data["id"]), genome=Genome.from_dict(data["genome"]),
            generation=int(data["generation"]), operator=data["operator"],
            parents=tuple(int(p) for p in data["parents"]), detail=data.get("detail", ""),
            inherited=bool(data.get("inherited")), cheap=dict(data.get("cheap", {})),
            treatment=str(data.get("treatment") or ("exact" if data.get("inherited") else "fresh")),
            record=None if record is None else EvaluationRecord.from_dict(record),
            seconds=float(data.get("seconds", 0.0)),
            state_file=(weights_dir / data["state_file"]) if data.get("state_file") and weights_dir else None,
            state_sha256=data.get("state_sha256"),
        )

    def journal_line(self, record: EvaluationRecord | None = None, **extra: Any) -> dict[str, Any]:
        """The journal entry of a finished evaluation: a rung of training, or a failure."""
        record = record or self.record
        line = {
            "event": "failed" if record.state is EvalState.FAILED else "evaluated",
            "id": self.id, "generation": self.generation, "genome_hash": record.genome_hash,
            "state": record.state.value, "objectives": dict(record.to_dict()["objectives"]),
            "reported": dict(record.to_dict()["reported"]), "epochs": record.epochs,
            "parents": list(self.parents), "operator": self.operator, "detail": self.detail,
            "seconds": round(self.seconds, 3), "curve": record.to_dict()["curve"],
            "genome": self.genome_doc,
        }
        if record.reason:
            line["reason"] = record.reason
        if self.proposal:
            line["proposal"] = dict(self.proposal)
        return {**line, **extra}
