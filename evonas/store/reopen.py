"""Reopening a run to resume it: its lock taken, its journal checked (damaged lines set aside, a
torn tail cut), the newest checkpoint that verifies found, the config compared with the one the
run started with, and newer checkpoints discarded. Nothing is executed from the run."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import objectives
from genomes import HASH_SCHEME, Genome

from evonas.config import ConfigError, RunConfig, diff, load
from evonas.progress import Progress
from evonas.resolve import Resolved, resolve

from . import checkpoint, journal
from .lock import RunLock
from .recorder import now
from .rundir import RunDir, RunDirError

__all__ = ["RESUMABLE", "Reopened", "reopen"]

# Keys a resumed run may change: how long it goes on, how many checkpoints it keeps, where it runs
# (not threads_per_worker: CPU results depend on the thread count).
RESUMABLE = ("search.generations", "search.max_evaluations", "search.max_seconds",
             "search.max_epochs", "checkpoints.", "logging.", "dispatch.devices",
             "dispatch.workers_per_device", "dispatch.backend", "dispatch.scheduler")


@dataclass
class Reopened:
    resolved: Resolved
    rundir: RunDir
    lock: RunLock
    generations: int
    start: checkpoint.Checkpoint | None
    replay: journal.Replay


def reopen(path: Path, generations: int | None, progress: Progress) -> Reopened:
    """Take up the run in ``path``; the lock is held on return (the caller releases it)."""
    if not (path / "config.yaml").is_file():
        raise RunDirError(f"{str(path)!r} holds no run (it has no config.yaml)")
    RunDir(path).check_links()  # never write through a link leading out of the run
    lock = RunLock(path).acquire()
    try:
        return _reopen(path, generations, progress, lock)
    except BaseException:
        lock.release()
        raise


def _reopen(path: Path, generations: int | None, progress: Progress, lock: RunLock) -> Reopened:
    config = load(path / "config.yaml")
    try:
        record = journal.load(path / "journal.jsonl")
    except OSError as exc:
        raise RunDirError(f"cannot read {path / 'journal.jsonl'}: {exc.strerror or exc}") from None
    record.require(_objective_keys(config))
    lines = record.lines
    start, notes = checkpoint.latest(path)
    ran = start.state.get("config") if start is not None else next(
        (line["config"] for line in lines if line.get("event") == "started"), None)
    if ran is None:
        damaged = "; ".join(record.notes())
        raise RunDirError(f"{str(path)!r} cannot be resumed: neither a checkpoint nor the "
                          f"journal's started line survives, so nothing shows the config the "
                          f"run started with (config.yaml may have been edited since); start "
                          f"a new run instead" + (f" ({damaged})" if damaged else ""))
    for note in record.notes():
        progress.warn(f"{note}; moved to {journal.DAMAGED}, and what it held is taken from "
                      f"a checkpoint or evaluated again")
    if record.legacy:
        progress.warn("journal.jsonl was written by an older evonas without line checksums; "
                      "its lines are read unverified and checksummed from now on")
    for note in notes:
        progress.warn(note)
    if start is not None and notes:
        progress.log(f"falling back to checkpoint {start.path.name}")
    if changed := diff(ran, config.to_dict(), RESUMABLE):
        raise ConfigError([(key, f"differs from the config the run was started with "
                                 f"({before!r} then, {after!r} now); a resumed run keeps its "
                                 f"config") for key, before, after in changed])
    if generations is None:  # a run goes on to what it was last asked for, or to an
        generations = config.search.generations  # edited config.yaml's count
        if start is not None and ran["search"]["generations"] == config.search.generations:
            generations = int(start.state["generations"])
    if start is not None and generations < start.generation:
        raise ConfigError([("--generations", f"{generations} asked for, but the run already has "
                                             f"{_n(start.generation)}; to extend it, ask for "
                                             f"more than {start.generation}")])
    scheme = start.state.get("hash_scheme") if start is not None else next(
        (line.get("hash_scheme") for line in lines if line.get("event") == "started"), None)
    if scheme != HASH_SCHEME:
        progress.warn(f"this run's genome hashes were made by {scheme or 'an older scheme'}, not "
                      f"{HASH_SCHEME}; its genomes are hashed again as they are read")
        lines = _rehashed(lines)
    resolved = resolve(config)
    journal.quarantine(path / "journal.jsonl", record)  # damaged lines out, a torn tail cut
    rundir = RunDir(path)
    rundir.clear_leftovers()  # temporary files of writes a kill interrupted
    rundir.weights.mkdir(exist_ok=True)
    # newer checkpoints are damaged or about to be rewritten; the start is never pruned
    checkpoint.discard_after(path, start.generation if start is not None else -1)
    if start is not None and notes:
        checkpoint.point(path, start.generation)  # LATEST names a checkpoint that verifies
    rundir.append({"event": "resumed", "checkpoint": start.path.name if start else None,
                   "generations": generations, "damaged": notes + record.notes(), "time": now()})
    origin = (f"checkpoint {start.path.name}" if start is not None else
              "the start (no checkpoint verifies)" if notes else
              "the start (it stopped before its first checkpoint)")
    progress.log(f"resuming {path} from {origin}, {_n(generations)}")
    return Reopened(resolved, rundir, lock, generations, start, journal.Replay.of(lines))


def _n(generations: int) -> str:
    return f"{generations} generation" + ("" if generations == 1 else "s")


def _rehashed(lines: list[dict]) -> list[dict]:
    """Journal lines with each evaluation's ``genome_hash`` made anew from its genome, so that a
    resumed run finds them (lines whose genome does not parse keep theirs)."""
    out = []
    for line in lines:
        if line.get("event") in ("evaluated", "failed") and isinstance(line.get("genome"), dict):
            try:
                line = {**line, "genome_hash": Genome.from_dict(line["genome"]).canonical_hash()}
            except Exception:  # noqa: BLE001 - damaged lines were set aside; keep what is there
                pass
        out.append(line)
    return out


def _objective_keys(config: RunConfig) -> list[str]:
    """The keys the config's objectives are recorded under (checked names: parse did that)."""
    return [objectives.get(item.name, **item.options()).key for item in config.objectives]
