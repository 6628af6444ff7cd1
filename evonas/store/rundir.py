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
import os
import re
import shutil
from pathlib import Path
from typing import Any, Sequence

import yaml

from evonas.store import journal
from evonas.store.files import write_atomic

__all__ = ["REPORT", "OutputError", "RunDir", "RunDirError", "check_output", "foreign", "inside",
           "leftovers"]

# what evonas writes in a run directory, as paths relative to it
_TOP = {"config.yaml", "journal.jsonl", journal.DAMAGED, "front.csv", "operators.json", "LATEST",
        "lock"}
_NAMES = r"(?:config\.yaml|journal\.jsonl|front\.csv|operators\.json|LATEST)"
_STATE = r"[0-9]+-e[0-9]+\.safetensors"
_TMP_TOP = rf"\.{_NAMES}\.[0-9]+\.tmp"  # write_atomic's temporary names: .<name>.<pid>.tmp
_TMP_WEIGHTS = rf"\.{_STATE}\.[0-9]+\.tmp"
_CHECKPOINT = r"(?:gen-[0-9]{6}|\.gen-[0-9]{6}\.[0-9]+\.tmp)"  # a checkpoint, or one being written
# folders of files derived from the run (DESIGN.md): rebuilt at will, deleted by ``run --force``
_DERIVED = r"(?:report|tensorboard)"
REPORT = "report"  # where ``evonas report`` writes a run's own report (and plots may go)
_OURS = re.compile(
    rf"^(?:{_TMP_TOP}"
    rf"|weights|weights/{_STATE}|weights/{_TMP_WEIGHTS}"
    rf"|checkpoints|checkpoints/{_CHECKPOINT}"
    rf"|checkpoints/{_CHECKPOINT}/(?:manifest|population|state)\.json"
    rf"|checkpoints/{_CHECKPOINT}/operators\.safetensors"
    rf"|individuals|individuals/gen-[0-9]{{6}}\.json|individuals/\.gen-[0-9]{{6}}\.json\.[0-9]+\.tmp"
    rf"|{_DERIVED}|{_DERIVED}/[^/]+"  # the report and TensorBoard's files: any file, no folders
    rf"|checkpoints/{_CHECKPOINT}/(?:weights|weights/[0-9]+\.safetensors"
    rf"|weights/\.[0-9]+\.safetensors\.[0-9]+\.tmp))$")


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


class OutputError(Exception):
    """A file the user asked for (an export, a plot) may not or cannot be written there."""


def check_output(run: Path, path: Path, *, force: bool = False, report: bool = False) -> None:
    """Refuse to write ``path`` inside the run directory (through links too), over an existing
    file without ``force``, over a folder, or where it cannot be written, saying why.
    ``report``: a file directly in the run's ``report/`` folder is allowed (the run's derived
    files; never through a link, which evonas never makes)."""
    root, where = Path(run).resolve(), Path(path).resolve()
    folder = Path(run) / REPORT
    if folder.is_symlink() and where.parent == folder.resolve():
        raise OutputError(f"{folder} is a symbolic link; evonas never makes one and will not "
                          f"write through it")
    in_report = report and where.parent == root / REPORT
    if (where == root or root in where.parents) and not in_report:
        raise OutputError(f"refusing to write {path} inside the run directory {run}: it would "
                          f"change the run; write it somewhere else")
    if where.is_dir():
        raise OutputError(f"{path} is a folder; name a file")
    if (where.exists() or Path(path).is_symlink()) and not force:
        raise OutputError(f"{path} already exists; pass --force to replace it")
    for parent in where.parents:
        if parent.exists():
            if not parent.is_dir():
                raise OutputError(f"cannot write {path}: {parent} is a file, not a folder")
            if not os.access(parent, os.W_OK | os.X_OK):
                raise OutputError(f"cannot write {path}: {parent} is not writable")
            break


def leftovers(path: Path) -> list[Path]:
    """Temporary files of writes that were interrupted (a killed driver), in the run directory
    and its ``weights/``; checkpoints clear their own."""
    out = []
    for folder, pattern in ((path, _TMP_TOP), (path / "weights", _TMP_WEIGHTS),
                            (path / "individuals", r"\.gen-[0-9]{6}\.json\.[0-9]+\.tmp")):
        if folder.is_dir() and not folder.is_symlink():
            out += [p for p in folder.iterdir() if re.fullmatch(pattern, p.name) and p.is_file()
                    and not p.is_symlink()]
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

    def check_links(self) -> None:
        """Refuse a run whose own folders or files are symbolic links (evonas never makes one):
        writing through them would write outside the run directory."""
        for name in ("weights", "checkpoints", "individuals", REPORT, "tensorboard", *sorted(_TOP)):
            if (self.path / name).is_symlink():
                raise RunDirError(f"{self.path / name} is a symbolic link; evonas never makes one "
                                  f"and will not write through it (it may lead outside the run)")

    def check_new(self, *, force: bool = False, own_lock: bool = False) -> None:
        """Refuse a folder that is not free for a new run: without ``force`` anything but an
        empty folder; even with ``force``, one holding files evonas did not write, or a run
        that lost its journal but can still be resumed. ``own_lock``: the ``lock`` file is this
        process's (taken just before)."""
        if self.path.exists() and not self.path.is_dir():
            raise RunDirError(f"{str(self.path)!r} is not a folder; choose another --run-dir")
        if not self.path.is_dir():
            return
        entries = [p.name for p in self.path.iterdir() if not (own_lock and p.name == "lock")]
        if not entries:
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
        if not force:
            raise RunDirError(f"{str(self.path)!r} already holds a run (or part of one); choose "
                              f"another --run-dir, continue it with evonas resume, or pass "
                              f"--force to replace it")

    def create(self, config: dict[str, Any], *, force: bool = False) -> RunDir:
        """Start a new run here (its lock already taken): ``check_new``, then clear what an
        earlier run wrote."""
        self.check_new(force=force, own_lock=True)
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            for name in ("journal.jsonl", journal.DAMAGED, "front.csv", "operators.json", "LATEST"):
                (self.path / name).unlink(missing_ok=True)
            for leftover in leftovers(self.path):
                leftover.unlink(missing_ok=True)
            for name in ("weights", "checkpoints", "individuals", REPORT, "tensorboard"):  # only
                # evonas's files (checked)
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

    def append(self, *events: dict[str, Any]) -> None:
        """Journal ``events`` with one write and one fsync."""
        journal.append(self.path / "journal.jsonl", *events)

    def write_front(self, columns: Sequence[str], rows: Sequence[dict[str, Any]]) -> None:
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=list(columns), extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
        # derived from the journal and rewritten every generation: replaced, not fsynced
        write_atomic(self.path / "front.csv", buffer.getvalue().encode("utf-8"), sync=False)

    def write_json(self, name: str, data: Any) -> None:
        """A JSON file of the run (e.g. operator states), replaced atomically."""
        self._replace(name, json.dumps(data, indent=1, sort_keys=True))

    def _replace(self, name: str, text: str) -> None:
        write_atomic(self.path / name, text.encode("utf-8"))
