"""The run journal: one JSON object per line, appended, flushed and fsynced.

Every finished evaluation (a rung of training, or a failure) is a line the moment it finishes,
after its weights are on disk. Each line ends with its own checksum (``"sum"``: the first 16 hex
digits of the SHA-256 of the line without it), and lines are checked for the types their
readers rely on, so a damaged line is found and named, never used. A journal written before
checksums existed (no line has one) is read unverified.

Readers tolerate a torn last line (a driver killed mid-write); a resuming driver cuts it off and
moves damaged lines to ``journal.damaged.jsonl``. ``Replay`` indexes the lines so that a resumed
run takes finished evaluations from the journal instead of redoing them.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal, Optional, Union

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

__all__ = ["Damage", "Journal", "Replay", "WEIGHTS_PATH", "append", "encode", "load", "quarantine",
           "read"]

SUM_KEY = "sum"
_SUM = re.compile(rb',"sum":"([0-9a-f]{16})"}$')
WEIGHTS_PATH = re.compile(r"^weights/[0-9]+-e[0-9]+\.safetensors$")  # all a journal may name
DAMAGED = "journal.damaged.jsonl"


def _digest(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()[:16]


def encode(event: dict[str, Any]) -> bytes:
    """One journal line (without its newline): compact JSON ending in its checksum."""
    body = json.dumps({k: v for k, v in event.items() if k != SUM_KEY}, allow_nan=False,
                      separators=(",", ":")).encode()
    if body == b"{}":
        raise ValueError("a journal line needs content")
    return body[:-1] + b',"sum":"' + _digest(body).encode() + b'"}'


def append(path: Path, *events: dict[str, Any]) -> None:
    """Append each event as a checksummed line, flushed and fsynced (once) before returning; an
    OSError (a full disk, say) names the journal."""
    line = b"".join(encode(event) + b"\n" for event in events)
    new = not os.path.exists(path)
    try:
        with open(path, "ab") as f:
            f.write(line)
            f.flush()
            os.fsync(f.fileno())
    except OSError as exc:
        raise OSError(exc.errno, exc.strerror or str(exc), str(path)) from exc
    if new:  # the journal's own directory entry must survive a power loss too
        from evonas.store.states import fsync_dir

        fsync_dir(Path(path).parent)


# ---------------------------------------------------------------------- what a line must hold
# Strict types, exactly as the engine writes them (a bool is not an int, "5" is not 5); numbers
# that training left non-finite are written as the strings "nan", "inf", "-inf".
Number = Union[float, Literal["nan", "inf", "-inf"]]
Finite = Annotated[float, Field(allow_inf_nan=False)]


class _Line(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True)


class _Evaluation(_Line):
    event: Literal["evaluated", "failed"]
    id: int = Field(ge=0)
    generation: int = Field(ge=0)
    genome_hash: str
    state: Literal["pending", "complete", "pruned", "failed"]
    objectives: dict[str, Number]
    reported: dict[str, Number] = {}
    epochs: int = Field(0, ge=0)
    parents: list[Annotated[int, Field(ge=0)]] = []
    operator: str = ""
    detail: str = ""
    seconds: Finite = Field(0.0, ge=0)
    curve: list[Annotated[list[Number], Field(min_length=4, max_length=4)]] = []
    genome: dict[str, Any]
    rung_epochs: int = Field(0, ge=0)
    rung_final: bool = True
    weights: Optional[str] = None
    sha256: Optional[str] = Field(None, pattern=r"^[0-9a-f]{64}$")
    reason: Optional[str] = None

    @field_validator("weights")
    @classmethod
    def _inside(cls, value: str | None) -> str | None:
        if value is not None and not WEIGHTS_PATH.match(value):
            raise ValueError(f"names a file outside the run's weights/ folder: {value[:100]!r}")
        return value

    @field_validator("curve", mode="before")
    @classmethod
    def _epochs(cls, value: Any) -> Any:
        if isinstance(value, list) and not all(
                isinstance(p, list) and p and type(p[0]) is int for p in value):
            raise ValueError("each point is [epoch (an int), train loss, val accuracy, seconds]")
        return value

    @model_validator(mode="after")
    def _usable(self) -> _Evaluation:
        if self.event == "evaluated" and not all(isinstance(v, float) for v in
                                                 self.objectives.values()):
            raise ValueError("an evaluated line needs finite objective values")
        if (self.event == "failed") != (self.state == "failed"):
            raise ValueError(f"event {self.event!r} with state {self.state!r}")
        return self


class _Pruned(_Line):
    event: Literal["pruned"]
    id: int = Field(ge=0)
    epochs: int = Field(0, ge=0)


class _Generation(_Line):
    event: Literal["generation"]
    generation: int = Field(ge=0)
    evaluations: int = Field(0, ge=0)
    population: list[int]
    front: list[int]


class _Started(_Line):
    event: Literal["started"]
    config: dict[str, Any]
    preprocessing: Optional[dict[str, Any]] = None
    hash_scheme: Optional[str] = None  # genomes.HASH_SCHEME when the run started (absent: older)
    cwd: Optional[str] = None  # the directory it started from: relative paths in its config


class _OperatorCounts(_Line):
    proposals: int = Field(ge=0)
    duplicates: int = Field(ge=0)
    evaluated: int = Field(ge=0)
    front: int = Field(ge=0)  # its children that entered the Pareto front
    seconds: Finite = Field(ge=0)  # spent proposing


class _Operators(_Line):
    """Each operator's totals since the run started, written after every generation."""

    event: Literal["operators"]
    generation: int = Field(ge=0)
    operators: dict[str, _OperatorCounts]


class _Other(_Line):
    event: str


_MODELS = {"evaluated": _Evaluation, "failed": _Evaluation, "pruned": _Pruned,
           "generation": _Generation, "started": _Started, "operators": _Operators}


@dataclass(frozen=True)
class Damage:
    """A journal line that cannot be used: its number (from 1), why, and its bytes."""

    line: int
    reason: str
    raw: bytes = field(repr=False, default=b"")

    def __str__(self) -> str:
        return f"journal.jsonl line {self.line} is damaged ({self.reason})"


@dataclass
class Journal:
    """What a journal holds: its usable lines (with their numbers), the damaged ones, and the
    torn tail (bytes after the last newline, left by a killed write)."""

    lines: list[dict[str, Any]] = field(default_factory=list)
    numbers: list[int] = field(default_factory=list)
    damaged: list[Damage] = field(default_factory=list)
    torn: bytes = b""
    legacy: bool = False  # written before line checksums: read unverified

    @property
    def torn_line(self) -> int | None:
        """The number the torn tail would have had, if there is one."""
        return len(self.numbers) + len(self.damaged) + 1 if self.torn else None

    def require(self, keys: list[str]) -> None:
        """Count as damaged every evaluated line that lacks one of the run's objectives ``keys``
        (only a config knows them), so no reader ranks a line it cannot compare."""
        kept_lines, kept_numbers = [], []
        for number, line in zip(self.numbers, self.lines):
            missing = [k for k in keys if k not in line.get("objectives", {})] \
                if line.get("event") == "evaluated" else []
            if missing:
                self.damaged.append(Damage(number, f"objectives: no value for {missing[0]!r}",
                                           encode(line)))
            else:
                kept_lines.append(line)
                kept_numbers.append(number)
        self.lines, self.numbers = kept_lines, kept_numbers
        self.damaged.sort(key=lambda d: d.line)

    def notes(self) -> list[str]:
        """One message per damaged line, and one for a torn tail."""
        out = [str(d) for d in self.damaged]
        if self.torn:
            out.append(f"journal.jsonl line {self.torn_line} (the last) is incomplete "
                       f"({len(self.torn)} bytes, a write that was cut off)")
        return out


def read(path: Path) -> tuple[list[dict[str, Any]], int]:
    """The journal's usable lines, and the byte length of its complete lines."""
    journal = load(path)
    try:
        size = Path(path).stat().st_size
    except FileNotFoundError:
        size = 0
    return journal.lines, size - len(journal.torn)


def load(path: Path) -> Journal:
    """Read and check every line; never raises for what the file holds."""
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        return Journal()
    end = data.rfind(b"\n") + 1
    raw_lines = data[:end].split(b"\n")[:-1]
    journal = Journal(torn=data[end:])
    journal.legacy = bool(raw_lines) and not any(_SUM.search(r) for r in raw_lines)
    for number, raw in enumerate(raw_lines, start=1):
        event, why = _check(raw, verify=not journal.legacy)
        if event is None:
            journal.damaged.append(Damage(number, why, raw))
        else:
            journal.lines.append(event)
            journal.numbers.append(number)
    return journal


def started(path: Path) -> dict[str, Any] | None:
    """The journal's first line when it is a usable ``started`` line (read alone, not the whole
    journal), else None."""
    try:
        with Path(path).open("rb") as f:
            raw = f.readline()
    except OSError:
        return None
    if not raw.endswith(b"\n"):
        return None
    event, _ = _check(raw[:-1], verify=bool(_SUM.search(raw)))
    return event if event is not None and event["event"] == "started" else None


def _check(raw: bytes, *, verify: bool) -> tuple[dict[str, Any] | None, str]:
    if verify:
        match = _SUM.search(raw)
        if match is None:
            return None, "no checksum"
        body = raw[:match.start()] + b"}"
        if _digest(body) != match.group(1).decode():
            return None, "checksum mismatch"
    try:
        event = json.loads(raw, parse_constant=_no_constants)
    except (ValueError, UnicodeDecodeError):
        return None, "not valid JSON (or NaN/Infinity, which evonas never writes)"
    except RecursionError:
        return None, "nested too deeply"
    if not isinstance(event, dict) or not isinstance(event.get("event"), str):
        return None, "not a journal event"
    event.pop(SUM_KEY, None)
    model = _MODELS.get(event["event"], _Other)
    try:
        model.model_validate(event)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "line"
        return None, f"{where}: {first['msg'][:120]}"
    return event, ""


def _no_constants(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


def quarantine(path: Path, journal: Journal) -> None:
    """Move damaged lines (and a torn tail) out of the journal into ``journal.damaged.jsonl``,
    keeping every good line in order, checksummed (a journal from before checksums is upgraded
    here); the journal is replaced atomically."""
    from evonas.store.files import write_atomic

    path = Path(path)
    if not journal.damaged and not journal.torn and not journal.legacy:
        return
    moved = [{"line": d.line, "reason": d.reason, "text": d.raw.decode("utf-8", "replace")}
             for d in journal.damaged]
    if journal.torn:
        moved.append({"line": journal.torn_line, "reason": "incomplete last line",
                      "text": journal.torn.decode("utf-8", "replace")})
    if moved:
        try:
            with open(path.parent / DAMAGED, "a", encoding="utf-8") as f:
                for item in moved:
                    f.write(json.dumps(item) + "\n")
                f.flush()
                os.fsync(f.fileno())
        except OSError as exc:
            raise OSError(exc.errno, exc.strerror or str(exc), str(path.parent / DAMAGED)) from exc
    write_atomic(path, b"".join(encode(line) + b"\n" for line in journal.lines))


@dataclass
class Replay:
    """What a journal already holds: evaluations by (id, epochs), pruned ids, events."""

    evaluations: dict[tuple[int, int], dict[str, Any]] = field(default_factory=dict)
    pruned: set[int] = field(default_factory=set)
    generations: set[int] = field(default_factory=set)
    highest: dict[int, int] = field(default_factory=dict)  # id -> most epochs journaled
    by_id: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    journaled: int = 0  # evaluation lines (rungs and failures)
    seconds: float = 0.0  # the most run seconds (all sessions) a ``stopped`` line records

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
                replay.journaled += 1
            elif event == "pruned":
                replay.pruned.add(int(line["id"]))
            elif event == "generation":
                replay.generations.add(int(line["generation"]))
            elif event == "stopped":  # older journals' stopped lines have no seconds
                s = line.get("seconds")
                if type(s) in (int, float) and math.isfinite(s) and s >= 0:
                    replay.seconds = max(replay.seconds, float(s))
        return replay

    def get(self, ident: int, epochs: int, genome_hash: str) -> dict[str, Any] | None:
        """The journaled evaluation of this individual at this fidelity, if it is the same genome."""
        line = self.evaluations.get((ident, epochs))
        return line if line is not None and line.get("genome_hash") == genome_hash else None

    def first(self, ident: int, genome_hash: str) -> dict[str, Any] | None:
        """Any journaled evaluation of this individual (for its cheap objective values)."""
        return next((line for line in self.by_id.get(ident, ())
                     if line.get("genome_hash") == genome_hash), None)
