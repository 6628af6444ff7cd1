"""A read-only view of a run directory, for ``front``, ``show`` and ``export``.

It reads the config and the journal (a torn last line is skipped) and never writes or locks
anything, so it can look at a run that another process is still writing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from pymoo.indicators.hv import HV
from pymoo.util.nds.non_dominated_sorting import NonDominatedSorting

import objectives
from genomes import Genome, GenomeError

from . import journal
from .config import ConfigError, RunConfig, load, parse
from .early_ranking import minimisation_matrix
from .rundir import RunDirError

__all__ = ["Entry", "RunView"]


@dataclass
class Entry:
    """One individual as the journal describes it. ``status``: complete, pruned, failed, or
    running (its training schedule has not ended yet)."""

    id: int
    generation: int
    operator: str
    parents: tuple[int, ...]
    detail: str
    genome: Genome
    genome_hash: str
    status: str
    objectives: dict[str, float]
    reported: dict[str, float]
    epochs: int
    curve: list[list[float]]
    seconds: float
    reason: str | None = None
    weights: Path | None = None
    sha256: str | None = None

    @property
    def params(self) -> int:
        return self.genome.num_params()


@dataclass
class RunView:
    path: Path
    config: RunConfig
    directions: dict[str, str]
    entries: dict[int, Entry]
    generations: dict[int, dict[str, Any]] = field(default_factory=dict)
    skipped: int = 0  # journal lines that could not be read

    @classmethod
    def load(cls, path: str | Path) -> RunView:
        path = Path(path)
        if not (path / "config.yaml").is_file():
            raise RunDirError(f"{str(path)!r} is not a run directory (it has no config.yaml)")
        lines, _ = journal.read(path / "journal.jsonl")
        started = next((line["config"] for line in lines if line.get("event") == "started"
                        and isinstance(line.get("config"), dict)), None)
        try:  # the config the run started with, even if config.yaml was edited since
            config = parse(started) if started is not None else load(path / "config.yaml")
        except ConfigError as exc:
            where, message = exc.issues[0]
            raise RunDirError(f"{path / 'config.yaml'}: {where}: {message}") from None
        directions = {}
        for i, item in enumerate(config.objectives):
            try:
                obj = objectives.get(item.name, **item.options())
            except ValueError as exc:
                raise RunDirError(f"{path / 'config.yaml'}: objectives[{i}]: {exc}") from None
            directions[obj.key] = obj.direction
        entries: dict[int, Entry] = {}
        pruned: set[int] = set()
        generations: dict[int, dict[str, Any]] = {}
        skipped = 0
        for line in lines:
            event = line.get("event")
            try:
                if event in ("evaluated", "failed"):
                    entries[int(line["id"])] = _entry(line, path)
                elif event == "pruned":
                    pruned.add(int(line["id"]))
                elif event == "generation":
                    generations[int(line["generation"])] = line
            except (KeyError, TypeError, ValueError, GenomeError):
                skipped += 1  # a line this version cannot read: the rest still counts
        for ident in pruned & set(entries):
            if entries[ident].status != "failed":
                entries[ident].status = "pruned"
        return cls(path, config, directions, entries, generations, skipped)

    # ------------------------------------------------------------------ queries
    def get(self, ident: int) -> Entry:
        if ident not in self.entries:
            known = sorted(self.entries)
            span = f"ids {known[0]}..{known[-1]}" if known else "no individuals yet"
            raise KeyError(f"the run {str(self.path)!r} has no evaluated individual {ident} ({span})")
        return self.entries[ident]

    @property
    def complete(self) -> list[Entry]:
        return [e for e in self.entries.values() if e.status == "complete"
                and all(k in e.objectives for k in self.directions)]

    def matrix(self, entries: list[Entry]) -> np.ndarray:
        """Objective values, each column turned into minimisation."""
        return minimisation_matrix(entries, self.directions)

    def front(self) -> list[Entry]:
        """The non-dominated complete individuals, ordered by the first objective."""
        done = self.complete
        if not done:
            return []
        F = self.matrix(done)
        first = NonDominatedSorting().do(F, only_non_dominated_front=True)
        return [done[i] for i in sorted(first, key=lambda i: F[i].tolist())]

    def hypervolumes(self) -> list[tuple[int, float]]:
        """Hypervolume of each generation's front, objectives scaled to [0, 1] over every
        complete individual, reference point 1.1 in each."""
        done = self.complete
        if not done or not self.generations:
            return []
        F = self.matrix(done)
        low, span = F.min(0), np.where(np.ptp(F, 0) > 0, np.ptp(F, 0), 1.0)
        indicator = HV(ref_point=np.full(F.shape[1], 1.1))
        out = []
        for generation, event in sorted(self.generations.items()):
            members = [self.entries[i] for i in event.get("front", []) if i in self.entries]
            out.append((generation, float(indicator((self.matrix(members) - low) / span))
                        if members else 0.0))
        return out

    def lineage(self, ident: int) -> list[Entry]:
        """The individual and its ancestors back to generation 0, each once, nearest first."""
        order, queue, seen = [], [ident], set()
        while queue:
            current = queue.pop(0)
            if current in seen or current not in self.entries:
                continue
            seen.add(current)
            order.append(self.entries[current])
            queue.extend(self.entries[current].parents)
        return order


def _entry(line: dict[str, Any], run: Path) -> Entry:
    if line["event"] == "failed":
        status = "failed"
    else:
        status = "complete" if line.get("rung_final", True) else "running"
    weights = run / line["weights"] if line.get("weights") else None
    return Entry(
        id=int(line["id"]), generation=int(line["generation"]), operator=line.get("operator", ""),
        parents=tuple(int(p) for p in line.get("parents", ())), detail=line.get("detail", ""),
        genome=Genome.from_dict(line["genome"]), genome_hash=line["genome_hash"], status=status,
        objectives={k: float(v) for k, v in line.get("objectives", {}).items()},
        reported={k: float(v) for k, v in line.get("reported", {}).items()},
        epochs=int(line.get("epochs", 0)), curve=line.get("curve", []),
        seconds=float(line.get("seconds", 0.0)), reason=line.get("reason"), weights=weights,
        sha256=line.get("sha256"),
    )
