"""What ``evonas runs [DIR]`` lists: every run directory under a folder, with its state.

Each run is read through ``RunView`` (the read-only view that ``front`` and ``show`` use) and
the journal's own lines, so nothing is written, nothing of a run is executed, and a run that
another process is writing can be listed. A run that cannot be read is listed as damaged with
the reason, never raised.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .runview import RunView

__all__ = ["RunSummary", "find_runs", "is_running", "list_runs", "summarise"]

STATUSES = ("running", "stopped", "finished", "damaged")
MAX_DEPTH = 4  # how deep under DIR runs are looked for
_MARKERS = ("config.yaml", "journal.jsonl", "LATEST")  # the folder asked for is read as a run
_EVENTS = (b'"event":"started"', b'"event":"resumed"', b'"event":"stopped"',
           b'"event":"finished"')


@dataclass
class RunSummary:
    """One run as ``evonas runs`` lists it. ``status``: running (its lock is held), stopped
    (stopped or killed before its end; ``evonas resume`` goes on), finished, or damaged
    (``reason`` says why); ``generations``: the last generation that ended (None: none yet),
    of ``planned``; ``best``: each objective's best complete value; ``hypervolume``: of the
    newest generation's front, normalised over the run's own individuals (ref 1.1)."""

    path: str
    name: str
    status: str
    reason: str | None = None
    generations: int | None = None
    planned: int | None = None
    evaluations: int = 0
    states: dict[str, int] = field(default_factory=dict)
    best: dict[str, float] = field(default_factory=dict)
    directions: dict[str, str] = field(default_factory=dict)
    hypervolume: float | None = None
    updated: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def find_runs(root: str | Path, *, depth: int = MAX_DEPTH) -> list[Path]:
    """``root`` itself if it is a run (it holds a config, a journal or ``LATEST``), else the
    runs in the folders under it (``depth`` levels at most, links not followed, a run's own
    folders not searched), sorted by path. Below ``root`` a run is a folder holding what only
    evonas writes, a journal or ``checkpoints/``: another tool's ``config.yaml`` is no run,
    and the folders under it are searched."""
    root = Path(root)
    if _is_run(root):
        return [root]
    found: list[Path] = []
    for folder, subfolders, _ in os.walk(root, followlinks=False):
        here = Path(folder)
        level = len(here.relative_to(root).parts)
        keep = []
        for name in sorted(subfolders):
            child = here / name
            if child.is_symlink():
                continue
            if (child / "journal.jsonl").is_file() or (child / "checkpoints").is_dir():
                found.append(child)
            elif level + 1 < depth:
                keep.append(name)
        subfolders[:] = keep
    return sorted(found)


def _is_run(path: Path) -> bool:
    return path.is_dir() and any((path / marker).is_file() for marker in _MARKERS)


def is_running(run: str | Path) -> bool:
    """Whether a driver holds the run's lock. Probed with a shared ``flock`` on a read-only
    descriptor, dropped at once: nothing is written, and a driver holding the lock is not
    disturbed."""
    path = Path(run) / "lock"
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows: no advisory locks to ask
        return False
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # no lock file: no driver ever held it
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError:
        return True
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    finally:
        os.close(fd)


def summarise(run: str | Path) -> RunSummary:
    """One run's summary; whatever is wrong with it becomes ``status="damaged"`` and a reason."""
    from evonas.store.rundir import RunDirError

    from .runview import RunView

    run = Path(run)
    running = is_running(run)
    try:
        view = RunView.load(run)
    except (RunDirError, OSError, ValueError, KeyError, TypeError) as exc:
        summary = RunSummary(path=str(run), name=run.name, status="damaged", reason=_short(exc),
                             updated=_updated(run))
        if running:
            summary.reason += " (a driver holds its lock)"
        return summary
    return summarise_view(view, running=running)


def summarise_view(view: RunView, *, running: bool | None = None) -> RunSummary:
    """The summary of a run already read (``running``: probed here when not given)."""
    run = view.path
    summary = RunSummary(path=str(run), name=run.name, status="stopped", updated=_updated(run))
    running = is_running(run) if running is None else running
    summary.name = view.config.name if run.name in ("", ".") else run.name
    summary.directions = dict(view.directions)
    summary.evaluations = len(view.entries)
    for entry in view.entries.values():
        summary.states[entry.status] = summary.states.get(entry.status, 0) + 1
    for key, direction in view.directions.items():
        values = [e.objectives[key] for e in view.complete]
        if values:
            summary.best[key] = (min if direction == "min" else max)(values)
    try:
        hv = view.hypervolumes()
    except ValueError as exc:  # values that cannot be compared
        view.notes.append(f"the hypervolume cannot be computed ({_short(exc)})")
        hv = []
    summary.hypervolume = hv[-1][1] if hv else None
    summary.generations = max(view.generations) if view.generations else None
    events = _events(run / "journal.jsonl")
    summary.planned = next((int(e["generations"]) for e in reversed(events)
                            if e.get("event") == "resumed" and isinstance(e.get("generations"), int)),
                           view.config.search.generations)
    last = next((e["event"] for e in reversed(events) if e.get("event") in ("started", "resumed",
                                                                           "stopped", "finished")),
                None)
    damage = [n for n in view.notes if not n.startswith("journal.jsonl was written by an older")]
    if running:
        summary.status = "running"
    elif damage:
        summary.status = "damaged"
    elif last == "finished":
        summary.status = "finished"
    if damage:
        summary.reason = damage[0] + (f" (and {len(damage) - 1} more)" if len(damage) > 1 else "")
    return summary


def list_runs(root: str | Path) -> list[RunSummary]:
    """Every run under ``root`` (``find_runs``), summarised."""
    return [summarise(run) for run in find_runs(root)]


def _events(path: Path) -> list[dict[str, Any]]:
    """The journal's start, resume, stop and finish lines (only those are parsed; a line that
    does not parse is left to ``RunView``'s notes)."""
    out = []
    try:
        with open(path, "rb") as f:
            for raw in f:
                if any(marker in raw for marker in _EVENTS) and raw.endswith(b"\n"):
                    try:
                        line = json.loads(raw)
                    except ValueError:
                        continue
                    if isinstance(line, dict):
                        out.append(line)
    except OSError:
        return []
    return out


def _updated(run: Path) -> str | None:
    """When the run last wrote: the newest of its journal, LATEST and config, local time."""
    times = []
    for name in ("journal.jsonl", "LATEST", "config.yaml"):
        try:
            times.append((run / name).stat().st_mtime)
        except OSError:
            continue
    return datetime.fromtimestamp(max(times)).isoformat(sep=" ", timespec="minutes") if times else None


def _short(exc: BaseException, limit: int = 300) -> str:
    text = str(exc) or type(exc).__name__
    return text if len(text) <= limit else text[: limit - 1] + "…"
