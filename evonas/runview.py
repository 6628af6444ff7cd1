"""A read-only view of a run directory, for ``front``, ``show``, ``export`` and ``evonas.load``.

It reads the config, the newest checkpoint that verifies, and the journal (damaged lines are
named in ``notes`` and skipped; a torn last line is skipped), and never writes or locks
anything, so it can look at a run that another process is still writing. Individuals known only
to a checkpoint (the journal lost or truncated) are there too, and a population member whose
file in ``weights/`` is gone is read from the checkpoint's copy. Nothing a run's config names is
imported from a user's code (``package.module:Name``, entry points): the directions of such
objectives are read from what the run recorded.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

import objectives
from genomes import Genome, GenomeError
from objectives.tasks import Preprocessing

from evonas.store import checkpoint
from evonas.store import journal
from .config import ConfigError, RunConfig, load, parse
from evonas.search.ranking import first_front, minimisation_matrix
from evonas.store.rundir import RunDirError, inside

__all__ = ["COLUMNS", "Entry", "RunView", "hypervolume"]

# to_dataframe's columns, in order; the objectives' and reported values go after "reason"
COLUMNS = ("id", "generation", "operator", "parents", "status", "reason", "params", "epochs",
           "seconds", "in_front", "genome_hash")

_STATUS = {"complete": "complete", "pruned": "pruned", "failed": "failed", "pending": "running"}


@dataclass
class Entry:
    """One individual as the run describes it. ``status``: complete, pruned, failed, or
    running (its training schedule has not ended yet). ``weights`` is its state file in
    ``weights/`` (checked against ``sha256``); ``saved`` the copy in a checkpoint, if any."""

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
    saved: Path | None = None

    @property
    def params(self) -> int:
        return self.genome.num_params()


@dataclass
class RunView:
    """A run directory read (``RunView.load(path)``, or ``evonas.load(path)``): its config, the
    objectives' directions, and every individual as an ``Entry``; never written to."""

    path: Path
    config: RunConfig
    directions: dict[str, str]
    entries: dict[int, Entry]
    generations: dict[int, dict[str, Any]] = field(default_factory=dict)
    skipped: int = 0  # journal lines that could not be read
    notes: list[str] = field(default_factory=list)  # what was damaged, and what was used instead
    preprocessing: Preprocessing | None = None
    # each operator's totals (proposals, duplicates, evaluated, front, seconds) from the newest
    # "operators" line of the journal; empty when the run wrote none
    operators: dict[str, dict[str, Any]] = field(default_factory=dict)
    # generation -> each operator's weight in the mix drawn after it, where the weights adapt
    weights: dict[int, dict[str, float]] = field(default_factory=dict)
    # the journal's "started" line (time, evonas version, config), None where it was lost
    started: dict[str, Any] | None = None

    def weights_of(self, operator: str) -> list[tuple[int, float]]:
        """(generation, weight) of one operator over the run; empty where the weights are fixed."""
        return [(g, w[operator]) for g, w in sorted(self.weights.items()) if operator in w]

    @classmethod
    def load(cls, path: str | Path) -> RunView:
        path = Path(path)
        if not (path / "config.yaml").is_file():
            raise RunDirError(f"{str(path)!r} is not a run directory (it has no config.yaml)")
        try:
            record = journal.load(path / "journal.jsonl")
        except OSError as exc:  # no permission, a folder of that name
            raise RunDirError(f"cannot read {path / 'journal.jsonl'}: {exc.strerror or exc}") from None
        try:
            saved, notes = checkpoint.latest(path, parse_weights=False)
        except OSError as exc:  # a checkpoint pruned while we read it, say
            saved, notes = None, [f"checkpoints cannot be read: {exc}"]
        started = next((line for line in record.lines if line.get("event") == "started"), None)
        sources = [("the journal's started line", started and started["config"]),
                   (f"checkpoint {saved.path.name}" if saved else "a checkpoint",
                    saved and saved.state.get("config")),
                   ("config.yaml", None)]
        config = None
        for where, data in sources:  # the config the run started with, even if config.yaml
            try:                      # was edited since
                config = parse(data, names=False) if data is not None else (
                    load(path / "config.yaml", names=False) if where == "config.yaml" else None)
            except ConfigError as exc:
                issue, message = exc.issues[0]
                if where == "config.yaml":
                    raise RunDirError(f"{path / 'config.yaml'}: {issue}: {message}") from None
                notes.append(f"the config in {where} cannot be read ({issue}: {message})")
            if config is not None:
                break
        directions = _directions(path, config, started, saved, notes)
        record.require(list(directions))
        notes = [str(d) + "; skipped" for d in record.damaged] + notes
        if record.legacy:
            notes.append("journal.jsonl was written by an older evonas without line checksums; "
                         "its lines are read unverified")
        lines = record.lines
        entries: dict[int, Entry] = {}
        pruned: set[int] = set()
        generations: dict[int, dict[str, Any]] = {}
        accounting: dict[str, dict[str, Any]] = {}
        weights: dict[int, dict[str, float]] = {}
        skipped = len(record.damaged)
        if saved is not None:
            for summary in saved.state.get("history", []):
                if isinstance(summary, dict) and isinstance(summary.get("generation"), int):
                    generations[summary["generation"]] = summary
        reached: dict[int, int] = {}  # id -> the highest rung read (lines may repeat or move)
        for number, line in zip(record.numbers, lines):
            event = line.get("event")
            try:
                if event in ("evaluated", "failed"):
                    ident, rung = int(line["id"]), int(line.get("rung_epochs", 0))
                    if rung >= reached.get(ident, -1):
                        entries[ident], reached[ident] = _entry(line, path), rung
                elif event == "pruned":
                    pruned.add(int(line["id"]))
                elif event == "generation":
                    generations[int(line["generation"])] = line
                elif event == "operators":  # cumulative: the newest line holds it all
                    accounting = {str(name): dict(counts) for name, counts in line["operators"].items()}
                    if "weights" in line:
                        weights[int(line["generation"])] = {str(k): float(v) for k, v
                                                            in line["weights"].items()}
            except (KeyError, TypeError, ValueError, GenomeError) as exc:
                skipped += 1  # a line this version cannot read: the rest still counts
                notes.append(f"journal.jsonl line {number} cannot be read ({str(exc)[:100]}); "
                             f"skipped")
        for ident in pruned & set(entries):
            if entries[ident].status != "failed":
                entries[ident].status = "pruned"
        if saved is not None:
            _merge_checkpoint(entries, saved, path)
        pre = _preprocessing(started, saved)
        return cls(path, config, directions, entries, generations, skipped, notes, pre,
                   operators=accounting, weights=weights, started=started)

    # ------------------------------------------------------------------ queries
    def to_dataframe(self):
        """A ``pandas.DataFrame``, one row per individual (by id): id, generation, operator,
        parents, status (complete, pruned, failed, running), reason, one column per objective
        and per reported value (NaN where there is none), params, epochs, seconds, in_front
        and genome_hash."""
        try:
            import pandas as pd
        except ImportError:
            raise ImportError("RunView.to_dataframe needs pandas: pip install pandas") from None
        front = {e.id for e in self.front()}
        reported = [k for k in dict.fromkeys(k for e in self.entries.values() for k in e.reported)
                    if k not in self.directions]
        rows = []
        for e in sorted(self.entries.values(), key=lambda e: e.id):
            rows.append({"id": e.id, "generation": e.generation, "operator": e.operator,
                         "parents": list(e.parents), "status": e.status, "reason": e.reason,
                         "epochs": e.epochs, "seconds": e.seconds,
                         "in_front": e.id in front, "genome_hash": e.genome_hash,
                         **{k: e.objectives.get(k, float("nan")) for k in self.directions},
                         **{k: e.reported.get(k, float("nan")) for k in reported},
                         "params": e.params})  # a count (the objective holds it as a float)
        named = [*self.directions, *reported]  # an objective "params" is the params column
        columns = [*COLUMNS[:6], *named, *(c for c in COLUMNS[6:] if c not in named)]
        return pd.DataFrame(rows, columns=columns)

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
        return [done[i] for i in sorted(first_front(F), key=lambda i: F[i].tolist())]

    def hypervolumes(self) -> list[tuple[int, float]]:
        """Hypervolume of each generation's front, objectives scaled to [0, 1] over every
        complete individual, reference point 1.1 in each."""
        done = self.complete
        if not done or not self.generations:
            return []
        out = []
        for generation, event in sorted(self.generations.items()):
            members = [self.entries[i] for i in event.get("front", []) if i in self.entries]
            out.append((generation, hypervolume(members, done, self.directions)))
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


def hypervolume(front: list, every: list, directions: dict[str, str]) -> float:
    """The hypervolume of ``front`` (records or entries: anything with ``objectives``), each
    objective scaled to [0, 1] over ``every`` (as ``ranking.normalise``), reference point 1.1
    in each; 0 for an empty front."""
    from pymoo.indicators.hv import HV

    if not front or not every:
        return 0.0
    F = minimisation_matrix(every, directions)
    low, span = F.min(0), np.where(np.ptp(F, 0) > 0, np.ptp(F, 0), 1.0)
    indicator = HV(ref_point=np.full(F.shape[1], 1.1))
    return float(indicator((minimisation_matrix(front, directions) - low) / span))


def _directions(path: Path, config: RunConfig, started: dict[str, Any] | None,
                saved: checkpoint.Checkpoint | None, notes: list[str]) -> dict[str, str]:
    """Each objective's key -> "min" or "max": as the run recorded them (the journal's started
    line or a checkpoint, ``"directions"``), else from the built-in objectives. A user's own
    objective is never imported to find out: a run that does not record it is refused."""
    n = len(config.objectives)
    for where, data in (("the journal's started line", started),
                        ("the checkpoint", saved.state if saved is not None else None)):
        recorded = (data or {}).get("directions")
        if recorded is None:
            continue
        if (isinstance(recorded, dict) and len(recorded) == n
                and all(isinstance(k, str) and v in ("min", "max") for k, v in recorded.items())):
            return dict(recorded)
        notes.append(f"the objectives' directions in {where} cannot be read; ignored")
    from .config import plugins

    users = plugins(config)
    directions = {}
    for i, item in enumerate(config.objectives):
        if f"objectives[{i}].name" in users:
            raise RunDirError(f"{path}: objectives[{i}]: {item.name!r} is a user's own objective "
                              f"and the run does not record its direction; reading a run never "
                              f"imports code it names")
        try:
            obj = objectives.get(item.name, **item.options())
        except ValueError as exc:
            raise RunDirError(f"{path / 'config.yaml'}: objectives[{i}]: {exc}") from None
        directions[obj.key] = obj.direction
    return directions


def _entry(line: dict[str, Any], run: Path) -> Entry:
    if line["event"] == "failed":
        status = "failed"
    else:
        status = "complete" if line.get("rung_final", True) else "running"
    weights = None
    if line.get("weights"):
        weights = inside(run, line["weights"]) if journal.WEIGHTS_PATH.match(line["weights"]) else None
        if weights is None:
            raise ValueError(f"its weights path {line['weights'][:100]!r} leads outside the run")
    return Entry(
        id=int(line["id"]), generation=int(line["generation"]), operator=line.get("operator", ""),
        parents=tuple(int(p) for p in line.get("parents", ())), detail=line.get("detail", ""),
        genome=Genome.from_dict(line["genome"]), genome_hash=line["genome_hash"], status=status,
        objectives={k: float(v) for k, v in line.get("objectives", {}).items()},
        reported={k: float(v) for k, v in line.get("reported", {}).items()},
        epochs=int(line.get("epochs", 0)),
        curve=[[int(e), float(loss), float(acc), float(sec)] for e, loss, acc, sec in line.get("curve", [])],
        seconds=float(line.get("seconds", 0.0)), reason=line.get("reason"), weights=weights,
        sha256=line.get("sha256"),
    )


def _merge_checkpoint(entries: dict[int, Entry], saved: checkpoint.Checkpoint, run: Path) -> None:
    """Add what only the checkpoint knows: individuals the journal lost, a final record where
    the journal's last line for it is gone, and the saved copy of each population member's
    training state."""
    from .individual import Individual

    for data in saved.population.get("individuals", []):
        ind = Individual.from_dict(data)  # verified when the checkpoint was read
        known = entries.get(ind.id)
        if ind.record is not None and (known is None or known.status == "running"
                                       and ind.record.state.value != "pending"):
            rec = ind.record
            weights = inside(run, f"weights/{data['state_file']}") if data.get("state_file") else None
            entries[ind.id] = Entry(
                id=ind.id, generation=ind.generation, operator=ind.operator, parents=ind.parents,
                detail=ind.detail, genome=ind.genome, genome_hash=rec.genome_hash,
                status=_STATUS[rec.state.value],
                objectives={k: float(v) for k, v in rec.objectives.items()},
                reported={k: float(v) for k, v in rec.reported.items()},
                epochs=rec.epochs, curve=[[e.epoch, e.train_loss, e.val_accuracy, e.seconds]
                                          for e in rec.curve],
                seconds=ind.seconds, reason=rec.reason, weights=weights, sha256=ind.state_sha256)
        if ind.id in saved.weights and ind.id in entries:
            entries[ind.id].saved = saved.weights[ind.id]


def _preprocessing(started: dict[str, Any] | None,
                   saved: checkpoint.Checkpoint | None) -> Preprocessing | None:
    for data in ((started or {}).get("preprocessing"),
                 saved.state.get("preprocessing") if saved is not None else None):
        if data is not None:
            try:
                return Preprocessing.from_dict(data)
            except ValueError:
                continue
    return None
