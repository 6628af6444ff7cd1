"""The run directory (DESIGN.md): the resolved config, the append-only journal, trained weights,
checkpoints, and the current front."""

from __future__ import annotations

import csv
import io
import json
import shutil
from pathlib import Path
from typing import Any, Sequence

import yaml

from . import journal
from .states import write_atomic

__all__ = ["RunDir", "RunDirError"]


class RunDirError(Exception):
    """The run directory cannot be used (it holds another run, or cannot be written)."""


class RunDir:
    """``config.yaml``, ``journal.jsonl`` (a line per finished evaluation or event, flushed and
    fsynced), ``weights/`` (a training state per evaluated individual), ``checkpoints/`` with
    ``LATEST``, and ``front.csv`` (replaced atomically) in one folder."""

    def __init__(self, path: str | Path):
        self.path = Path(path)

    @property
    def weights(self) -> Path:
        return self.path / "weights"

    def create(self, config: dict[str, Any], *, force: bool = False) -> RunDir:
        if (self.path / "journal.jsonl").exists() and not force:
            raise RunDirError(f"{str(self.path)!r} already holds a run; choose another --run-dir "
                              f"or pass --force to replace it")
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            for name in ("journal.jsonl", "front.csv", "operators.json", "LATEST"):
                (self.path / name).unlink(missing_ok=True)
            for name in ("weights", "checkpoints"):
                shutil.rmtree(self.path / name, ignore_errors=True)
            self.weights.mkdir()
            self._replace("config.yaml", yaml.safe_dump(config, sort_keys=False))
        except OSError as exc:
            raise RunDirError(f"cannot write the run directory {str(self.path)!r}: {exc}") from None
        return self

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
