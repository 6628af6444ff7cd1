"""The run journal: one JSON object per line, appended, flushed and fsynced.

Every finished evaluation (a rung of training, or a failure) is a line the moment it finishes,
after its weights are on disk. Readers tolerate a torn last line (a driver killed mid-write); a
resuming driver cuts it off before appending. ``Replay`` indexes the lines so that a resumed run
takes finished evaluations from the journal instead of redoing them.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["Replay", "append", "read", "repair"]


def append(path: Path, event: dict[str, Any]) -> None:
    line = json.dumps(event, allow_nan=False, separators=(",", ":"))
    new = not os.path.exists(path)
    with open(path, "a", encoding="utf-8") as f:
        f.write(line + "\n")
        f.flush()
        os.fsync(f.fileno())
    if new:  # the journal's own directory entry must survive a power loss too
        from .states import fsync_dir

        fsync_dir(Path(path).parent)


def read(path: Path) -> tuple[list[dict[str, Any]], int]:
    """The journal's complete lines, and the byte length they span (a torn tail is left out)."""
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        return [], 0
    lines, good, start = [], 0, 0
    while (end := data.find(b"\n", start)) != -1:
        raw = data[start:end]
        start = end + 1
        try:
            event = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            continue  # a damaged line inside the journal: skipped, the rest still counts
        if isinstance(event, dict):
            lines.append(event)
            good = start
    return lines, good


def repair(path: Path) -> int:
    """Cut a torn last line off the journal; returns the number of bytes removed."""
    if not Path(path).exists():
        return 0
    _, good = read(path)
    size = Path(path).stat().st_size
    if size > good:
        with open(path, "r+b") as f:
            f.truncate(good)
            f.flush()
            os.fsync(f.fileno())
    return size - good


@dataclass
class Replay:
    """What a journal already holds: evaluations by (id, epochs), pruned ids, events."""

    evaluations: dict[tuple[int, int], dict[str, Any]] = field(default_factory=dict)
    pruned: set[int] = field(default_factory=set)
    generations: set[int] = field(default_factory=set)
    highest: dict[int, int] = field(default_factory=dict)  # id -> most epochs journaled
    by_id: dict[int, list[dict[str, Any]]] = field(default_factory=dict)

    @classmethod
    def of(cls, lines: list[dict[str, Any]]) -> Replay:
        replay = cls()
        for line in lines:
            event = line.get("event")
            if event in ("evaluated", "failed") and "id" in line:
                ident = int(line["id"])
                epochs = int(line.get("rung_epochs", line.get("epochs", 0)))  # the rung it was
                replay.evaluations[(ident, epochs)] = line
                replay.highest[ident] = max(epochs, replay.highest.get(ident, -1))
                replay.by_id.setdefault(ident, []).append(line)
            elif event == "pruned":
                replay.pruned.add(int(line["id"]))
            elif event == "generation":
                replay.generations.add(int(line["generation"]))
        return replay

    def get(self, ident: int, epochs: int, genome_hash: str) -> dict[str, Any] | None:
        """The journaled evaluation of this individual at this fidelity, if it is the same genome."""
        line = self.evaluations.get((ident, epochs))
        return line if line is not None and line.get("genome_hash") == genome_hash else None

    def first(self, ident: int, genome_hash: str) -> dict[str, Any] | None:
        """Any journaled evaluation of this individual (for its cheap objective values)."""
        return next((line for line in self.by_id.get(ident, ())
                     if line.get("genome_hash") == genome_hash), None)
