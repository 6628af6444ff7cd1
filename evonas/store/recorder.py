"""The recorder: everything a run keeps. Each finished evaluation goes to the journal at once (its
weights written first), the front to ``front.csv``, each generation's end to a checkpoint; a
resumed run takes from the journal what it already holds (``replayed``). Without a run
directory it keeps nothing and replays nothing."""

from __future__ import annotations

import base64
import hashlib
import random
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from evonas.individual import Individual
from objectives import EvaluationRecord, TrainState

from . import checkpoint
from .journal import Replay
from .rundir import RunDir, inside
from .states import StateFileError, load_state, state_to_bytes, write_atomic

__all__ = ["Recorder", "now"]


def now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S")


class Recorder:
    """The journal, weights, ``front.csv`` and checkpoints of one run (``rundir`` None: none)."""

    def __init__(self, rundir: RunDir | None, *, keep: int = 3, replay: Replay | None = None,
                 warn=lambda text: None):
        self.rundir, self.keep, self.warn = rundir, keep, warn
        self.saved = (0, 0, 0)  # individuals, seen hashes and history entries checkpointed so far
        self.link: dict[str, Any] | None = None  # the newest checkpoint's chunk
        self.replay = replay or Replay()
        self.started: set[int] = set()  # ids with an evaluation journaled in this session

    @property
    def path(self) -> Path | None:
        return self.rundir.path if self.rundir is not None else None

    def event(self, *lines: dict[str, Any]) -> None:
        """Journal ``lines`` (one write, one fsync)."""
        for line in lines:
            if line.get("event") in ("evaluated", "failed"):
                self.started.add(line["id"])
        if self.rundir is not None:
            self.rundir.append(*lines)

    # ------------------------------------------------------------------ evaluations
    def result(self, ind: Individual, record: EvaluationRecord, *, epochs: int, final: bool,
               state: TrainState | bytes | None = None, device: str | None = None,
               seconds: float | None = None) -> None:
        """Journal one rung of ``ind`` (its training state written first, when it has one);
        ``seconds``: its evaluation seconds so far, this rung included."""
        extra: dict[str, Any] = {"rung_epochs": epochs, "rung_final": final}
        if seconds is not None:
            extra["seconds"] = round(seconds, 3)
        if device:
            extra["device"] = device
        if state is not None:
            data = state if isinstance(state, bytes) else state_to_bytes(state)
            if self.rundir is not None and record.ok:
                previous = ind.state_file
                ind.state_file = self.rundir.weights / f"{ind.id}-e{epochs}.safetensors"
                write_atomic(ind.state_file, data)
                ind.state_sha256 = hashlib.sha256(data).hexdigest()
                extra.update(weights=f"weights/{ind.state_file.name}", sha256=ind.state_sha256)
                self.event(ind.journal_line(record, **extra))
                if previous is not None and previous != ind.state_file:
                    previous.unlink(missing_ok=True)  # the journal now points at the newer state
                return
        self.event(ind.journal_line(record, **extra))

    def replayed(self, ind: Individual, epochs: int) -> EvaluationRecord | None:
        """The journaled record of ``ind`` at ``epochs`` (its state loaded back), or None."""
        line = self.replay.get(ind.id, epochs, ind.genome.canonical_hash())
        if line is None:
            return None
        later = self.replay.highest.get(ind.id, epochs) > epochs
        if line["event"] == "evaluated" and "weights" in line and not later:
            path = inside(self.rundir.path, line["weights"]) if self.rundir is not None else None
            try:  # the state this individual goes on from (or is a parent with)
                if path is None:
                    raise StateFileError(f"{line['weights']} leads outside the run")
                ind.state = load_state(path, line.get("sha256"))[0]
            except StateFileError as exc:  # lost or damaged: train it again (deterministically)
                self.warn(f"the journaled training state of individual {ind.id} after {epochs} "
                          f"epochs cannot be used ({exc}); training it again")
                return None
            ind.state_file, ind.state_sha256 = path, line.get("sha256")
        ind.seconds = float(line.get("seconds", ind.seconds))
        return EvaluationRecord.from_dict(line)

    def screened(self, ind: Individual) -> dict[str, Any] | None:
        """Any journaled line of ``ind`` (its cheap objective values, or its screening failure)."""
        return self.replay.first(ind.id, ind.genome.canonical_hash())

    # ------------------------------------------------------------------ the front
    def front(self, front: Sequence[Individual], keys: Sequence[str], reported: Sequence[str]) -> None:
        if self.rundir is None:
            return
        rows = [{"id": f.id, "generation": f.generation, "operator": f.operator,
                 **{k: f.record.objectives[k] for k in keys},
                 **{k: f.record.reported.get(k) for k in reported},
                 "params": f.genome.num_params(), "epochs": f.record.epochs,
                 "genome_hash": f.record.genome_hash} for f in front]
        columns = ["id", "generation", "operator", *keys, *reported,
                   *(["params"] if "params" not in keys else []), "epochs", "genome_hash"]
        self.rundir.write_front(columns, rows)

    # ------------------------------------------------------------------ checkpoints
    def checkpoint(self, generation: int, population: Sequence[Individual],
                   individuals: Sequence[Individual], seen: Sequence[str],
                   history: Sequence[dict[str, Any]], state: dict[str, Any],
                   tensors: dict[str, torch.Tensor]) -> None:
        """The generation's end: the population, states and RNGs, its weights, and (in a chunk)
        the individuals, seen hashes and history entries that joined since the last one; the
        lists only ever grow, so each checkpoint writes what is new."""
        if self.rundir is None:
            return
        n_ind, n_seen, n_hist = self.saved
        chunk = {"individuals": [ind.to_dict() for ind in individuals[n_ind:]],
                 "seen": list(seen[n_seen:]), "history": list(history[n_hist:])}
        doc = {"generation": generation, "population": [p.id for p in population],
               "individuals": []}  # all of them are in the chain of chunks
        weights = {}
        for p in population:  # from memory, or from disk checked against the journaled hash
            if p.state is not None:
                weights[p.id] = p.state
            elif p.state_file is not None:
                weights[p.id] = load_state(p.state_file, p.state_sha256)[0]
        link = checkpoint.write_chunk(self.rundir.path, generation, chunk, self.link)
        checkpoint.write(self.rundir.path, generation, doc, {**state, "random": random_states()},
                         weights, tensors=tensors, chain=link, keep=self.keep)
        self.link = link
        self.saved = (len(individuals), len(seen), len(history))
        alive = {p.id for p in population}
        for ind in individuals:  # on disk now; only parents-to-be stay in memory
            if ind.id not in alive and ind.state_file is not None:
                ind.state = None

    def restart_chain(self) -> None:
        """Make the next checkpoint's chunk hold everything (a new chain)."""
        self.saved, self.link = (0, 0, 0), None

    def restore(self, start: checkpoint.Checkpoint) -> tuple[list[Individual], list[Individual]]:
        """Every individual and the population of a checkpoint (population weights loaded)."""
        weights_dir = self.rundir.weights if self.rundir is not None else None
        individuals = [Individual.from_dict(d, weights_dir) for d in start.population["individuals"]]
        by_id = {ind.id: ind for ind in individuals}
        population = [by_id[i] for i in start.population["population"]]
        for ind in population:
            if ind.id in start.weights:
                ind.state = start.load_weights(ind.id)
        set_random_states(start.state["random"])
        chained = "chunk" in start.state  # an older, whole checkpoint: the next chunk holds all
        self.saved = (len(individuals), len(start.state["seen"]),
                      len(start.state["history"])) if chained else (0, 0, 0)
        self.link = start.state["chunk"] if chained else None
        return individuals, population


def random_states() -> dict[str, Any]:
    """Python's, NumPy's and torch's global generators (the engine itself draws from
    generators derived from the seed, but library code may use the global ones)."""
    version, internal, gauss = random.getstate()
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    return {"python": [version, list(internal), gauss],
            "numpy": [kind, keys.tolist(), int(pos), int(has_gauss), float(cached)],
            "torch": base64.b64encode(torch.get_rng_state().numpy().tobytes()).decode()}


def set_random_states(states: dict[str, Any]) -> None:
    version, internal, gauss = states["python"]
    random.setstate((version, tuple(internal), gauss))
    kind, keys, pos, has_gauss, cached = states["numpy"]
    np.random.set_state((kind, np.array(keys, dtype=np.uint32), pos, has_gauss, cached))
    raw = np.frombuffer(base64.b64decode(states["torch"]), dtype=np.uint8).copy()
    torch.set_rng_state(torch.from_numpy(raw))
