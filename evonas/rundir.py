"""The run directory (DESIGN.md): the resolved config, the append-only journal, trained weights,
checkpoints, and the current front.

evonas writes only the files named here, and deletes only those: a folder holding anything else
is never used for a new run (not even with ``force``), so a mistyped ``--run-dir`` cannot
destroy a user's files.
"""

from __future__ import annotations

import csv
import io
import json
import re
import shutil
from pathlib import Path
from typing import Any, Sequence

import yaml

from . import journal
from .states import write_atomic

__all__ = ["RunDir", "RunDirError", "foreign", "inside", "leftovers"]

# what evonas writes in a run directory, as paths relative to it
_TOP = {"config.yaml", "journal.jsonl", journal.DAMAGED, "front.csv", "operators.json", "LATEST",
        "lock"}
_TMP = r"\.[^/]+\.[0-9]+\.tmp"  # write_atomic's temporary names: .<name>.<pid>.tmp
_OURS = re.compile(
    rf"^(?:{_TMP}"
    rf"|weights|weights/[0-9]+-e[0-9]+\.safetensors|weights/{_TMP}"
    rf"|checkpoints|checkpoints/gen-[0-9]{{6}}"
    rf"|checkpoints/gen-[0-9]{{6}}/(?:manifest|population|state)\.json"
    rf"|checkpoints/gen-[0-9]{{6}}/weights|checkpoints/gen-[0-9]{{6}}/weights/[0-9]+\.safetensors"
    rf"|checkpoints/\.gen-[0-9]{{6}}\.[0-9]+\.tmp(?:/.*)?)$")


class RunDirError(Exception):
    """The run directory cannot be used (it holds another run, or cannot be written)."""


def foreign(path: Path, limit: int = 5) -> list[str]:
    """Up to ``limit`` entries under ``path`` that evonas did not write (relative paths)."""
    found: list[str] = []
    if not path.is_dir():
        return found
    stack = [path]
    while stack and len(found) < limit:
        folder = stack.pop()
        for child in sorted(folder.iterdir()):
            rel = child.relative_to(path).as_posix()
            ours = rel in _TOP or _OURS.match(rel)
            if not ours:
                found.append(rel + ("/" if child.is_dir() and not child.is_symlink() else ""))
            elif child.is_dir() and not child.is_symlink():
                stack.append(child)
            elif child.is_symlink():  # evonas never makes links
                found.append(rel)
            if len(found) >= limit:
                break
    return found


def inside(run: Path, rel: str) -> Path | None:
    """``run / rel`` if it resolves inside the run directory (no ``..``, no absolute path, no
    link leading out), else None."""
    root = Path(run).resolve()
    target = (root / rel).resolve()
    return target if root in target.parents else None


def leftovers(path: Path) -> list[Path]:
    """Temporary files of writes that were interrupted (a killed driver), in the run directory
    and its ``weights/``; checkpoints clear their own."""
    pattern = re.compile(rf"^{_TMP}$")
    out = []
    for folder in (path, path / "weights"):
        if folder.is_dir():
            out += [p for p in folder.iterdir() if pattern.match(p.name) and p.is_file()]
    return out


class RunDir:
    """``config.yaml``, ``journal.jsonl`` (a line per finished evaluation or event, flushed and
    fsynced), ``weights/`` (a training state per evaluated individual), ``checkpoints/`` with
    ``LATEST``, and ``front.csv`` (replaced atomically) in one folder."""

    def __init__(self, path: str | Path):
        self.path = Path(path)

    @property
    def weights(self) -> Path:
        return self.path / "weights"

    def check_new(self, *, force: bool = False) -> None:
        """Refuse a folder that is not free for a new run: one holding files evonas did not
        write (even with ``force``), a run (without ``force``), or a run that lost its journal
        but can still be resumed."""
        if self.path.exists() and not self.path.is_dir():
            raise RunDirError(f"{str(self.path)!r} is a file, not a folder; choose another --run-dir")
        if not self.path.is_dir():
            return
        strangers = foreign(self.path)
        if strangers:
            listed = ", ".join(strangers[:5])
            raise RunDirError(f"{str(self.path)!r} holds files evonas did not write ({listed}); "
                              f"choose an empty or new --run-dir" +
                              (" (--force replaces only a run evonas wrote)" if force else ""))
        has_journal = (self.path / "journal.jsonl").exists()
        has_checkpoints = (self.path / "checkpoints").is_dir() and any(
            (self.path / "checkpoints").glob("gen-*"))
        if has_checkpoints and not has_journal:
            raise RunDirError(f"{str(self.path)!r} holds a run whose journal is missing, but its "
                              f"checkpoints can still be resumed: evonas resume {self.path}"
                              + ("" if not force else "; or delete the folder yourself to start over"))
        if not force and any((self.path / name).exists() for name in
                             ("journal.jsonl", "config.yaml", "weights", "checkpoints")):
            raise RunDirError(f"{str(self.path)!r} already holds a run; choose another --run-dir, "
                              f"continue it with evonas resume, or pass --force to replace it")

    def create(self, config: dict[str, Any], *, force: bool = False) -> RunDir:
        """Start a new run here: ``check_new``, then clear what an earlier run wrote."""
        self.check_new(force=force)
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            for name in ("journal.jsonl", journal.DAMAGED, "front.csv", "operators.json", "LATEST"):
                (self.path / name).unlink(missing_ok=True)
            for leftover in leftovers(self.path):
                leftover.unlink(missing_ok=True)
            for name in ("weights", "checkpoints"):  # only evonas's files are in them (checked)
                shutil.rmtree(self.path / name, ignore_errors=True)
            self.weights.mkdir()
            self._replace("config.yaml", yaml.safe_dump(config, sort_keys=False))
        except OSError as exc:
            raise RunDirError(f"cannot write the run directory {str(self.path)!r}: "
                              f"{exc.strerror or exc}") from None
        return self

    def clear_leftovers(self) -> list[Path]:
        """Delete temporary files of interrupted writes; returns them."""
        found = leftovers(self.path)
        for path in found:
            path.unlink(missing_ok=True)
        return found

    def append(self, event: dict[str, Any]) -> None:
        journal.append(self.path / "journal.jsonl", event)

    def write_front(self, columns: Sequence[str], rows: Sequence[dict[str, Any]]) -> None:
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=list(columns), extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
        self._replace("front.csv", buffer.getvalue())

    def write_json(self, name: str, data: Any) -> None:
        """A JSON file of the run (e.g. operator states), replaced atomically."""
        self._replace(name, json.dumps(data, indent=1, sort_keys=True))

    def _replace(self, name: str, text: str) -> None:
        write_atomic(self.path / name, text.encode("utf-8"))
