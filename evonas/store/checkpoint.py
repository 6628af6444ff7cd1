"""Generation checkpoints: written whole or not at all, verified before they are trusted.

A checkpoint is a folder ``checkpoints/gen-NNNNNN/`` holding ``population.json``, ``state.json``,
``weights/<id>.safetensors``, the proposers' ``operators.safetensors`` and ``manifest.json`` (the
SHA-256 of every other file); the individuals, seen hashes and history entries that joined since
the previous checkpoint go to a chunk in the run's ``individuals/``, chained by hash. It is
written under a temporary name and renamed; then ``LATEST`` is replaced atomically and fsynced.
The files themselves are not fsynced one by one (a checkpoint per generation would cost a dozen
fsyncs): a reader verifies every hash and the whole chain and parses every file before using any
of it, and falls back to the previous checkpoint (or the journal, which is fsynced line by line)
when one is damaged or was torn by a power loss.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

from evonas.store.files import fsync_dir, write_atomic
from evonas.store.files import write_synced as _write_synced  # a name the tests' hooks wrap
from evonas.store.states import (StateFileError, load_state, load_weights, save_state,
                                 weights_to_bytes)

if TYPE_CHECKING:
    import torch

    from objectives import TrainState

__all__ = ["Checkpoint", "CheckpointError", "latest", "prune", "write"]

_NAME = re.compile(r"^gen-(\d{6})$")
_FILE = re.compile(r"^(?:population\.json|state\.json|operators\.safetensors|"
                   r"weights/[0-9]+\.safetensors)$")  # all it holds


class CheckpointError(Exception):
    """A checkpoint cannot be trusted; the message says which file and why."""


@dataclass
class Checkpoint:
    """A verified checkpoint: its folder, generation, population document and state."""

    path: Path
    generation: int
    population: dict[str, Any]
    state: dict[str, Any]
    weights: dict[int, Path] = field(default_factory=dict)
    tensors: Path | None = None  # the proposers' tensors (operators.safetensors), if any

    def load_weights(self, ident: int):
        """The training state saved for individual ``ident`` (a ``TrainState``)."""
        return load_state(self.weights[ident])[0]

    def load_tensors(self) -> dict[str, torch.Tensor]:
        """The proposers' tensors, named ``<operator>/<name>`` (none: an empty dict)."""
        return load_weights(self.tensors) if self.tensors is not None else {}


def name(generation: int) -> str:
    return f"gen-{generation:06d}"


def write(run: Path, generation: int, population: Mapping[str, Any], state: Mapping[str, Any],
          weights: Mapping[int, TrainState], *, tensors: Mapping[str, torch.Tensor] | None = None,
          chain: Mapping[str, Any] | None = None, keep: int = 3) -> Path:
    """Write the checkpoint of ``generation``; ``weights`` maps individual ids to their training
    states, written from memory (not copied from ``weights/``: a damaged or lost file there
    must not reach a checkpoint).

    ``chain`` (what ``write_chunk`` returned) makes the checkpoint incremental: the individuals,
    seen hashes and history entries that joined since the previous checkpoint are in that chunk,
    which names the previous one and its SHA-256, so a checkpoint costs what changed, and
    ``read`` rebuilds the whole lists by walking the chain back (checking every link)."""
    root = run / "checkpoints"
    root.mkdir(exist_ok=True)
    if chain is not None:
        state = {**state, "chunk": dict(chain)}
    final = root / name(generation)
    tmp = root / f".{name(generation)}.{os.getpid()}.tmp"
    if tmp.exists():
        shutil.rmtree(tmp)
    (tmp / "weights").mkdir(parents=True)
    files = {
        "population.json": _json(population),
        "state.json": _json(state),
    }
    for rel, data in files.items():
        _write_synced(tmp / rel, data, sync=False)
    if tensors:  # written like the JSON files (no temporary name inside the temporary folder)
        _write_synced(tmp / "operators.safetensors", weights_to_bytes(tensors), sync=False)
    for ident, train_state in sorted(weights.items()):
        save_state(tmp / "weights" / f"{ident}.safetensors", train_state, {"id": ident})
    digests = {rel: _sha256(tmp / rel) for rel in _files(tmp)}
    _write_synced(tmp / "manifest.json", _json({"generation": generation, "sha256": digests}),
                  sync=False)
    if final.exists():  # a checkpoint of this generation from before a crash: the new one wins
        shutil.rmtree(final)
    os.replace(tmp, final)
    point(run, generation)
    prune(run, keep)
    return final


def write_chunk(run: Path, generation: int, chunk: Mapping[str, list],
                previous: Mapping[str, Any] | None) -> dict[str, Any]:
    """Write ``individuals/gen-NNNNNN.json`` ({individuals, seen, history} that joined since the
    previous checkpoint), naming ``previous`` (that checkpoint's link); returns its own link."""
    folder = run / "individuals"
    folder.mkdir(exist_ok=True)
    data = _json({"generation": generation, "previous": dict(previous) if previous else None,
                  **{k: list(v) for k, v in chunk.items()}})
    write_atomic(folder / f"{name(generation)}.json", data, sync=False)
    return {"generation": generation, "sha256": hashlib.sha256(data).hexdigest()}


def _chunks(folder: Path) -> list[int]:
    found = []
    for child in folder.glob("gen-*.json"):
        match = _NAME.match(child.stem)
        if match:
            found.append(int(match.group(1)))
    return sorted(found)


def _walk(run: Path, link: Any) -> dict[str, list]:
    """The lists a chain of chunks holds, oldest first; ``CheckpointError`` at a broken link."""
    parts: list[dict[str, Any]] = []
    seen: set[int] = set()
    while link is not None:
        if not isinstance(link, dict) or type(link.get("generation")) is not int or \
                link["generation"] in seen or not isinstance(link.get("sha256"), str):
            raise CheckpointError("its chain of individuals is malformed")
        seen.add(link["generation"])
        path = run / "individuals" / f"{name(link['generation'])}.json"
        try:
            if _sha256(path) != link["sha256"]:
                raise CheckpointError(f"individuals/{path.name} does not match its SHA-256")
        except OSError:
            raise CheckpointError(f"individuals/{path.name} is missing") from None
        part = _load_json(path)
        if not isinstance(part, dict) or part.get("generation") != link["generation"]:
            raise CheckpointError(f"individuals/{path.name} is malformed")
        parts.append(part)
        link = part.get("previous")
    out: dict[str, list] = {"individuals": [], "seen": [], "history": []}
    for part in reversed(parts):
        for key in out:
            if not isinstance(part.get(key), list):
                raise CheckpointError(f"individuals/{name(part['generation'])}.json lacks {key}")
            out[key] += part[key]
    return out


def point(run: Path, generation: int) -> None:
    """Make ``LATEST`` name the checkpoint of ``generation`` (replaced atomically)."""
    write_atomic(run / "LATEST", (name(generation) + "\n").encode())  # fsyncs file and folder


def prune(run: Path, keep: int) -> None:
    """Delete all but the newest ``keep`` checkpoints, and leftovers of interrupted writes."""
    root = run / "checkpoints"
    if not root.is_dir():
        return
    _clear_leftovers(root)
    for old in _generations(root)[:-keep]:
        shutil.rmtree(root / name(old), ignore_errors=True)


def discard_after(run: Path, generation: int) -> list[str]:
    """Before resuming from ``generation``: delete leftovers of interrupted writes and every
    newer checkpoint (damaged, or about to be written again); returns the names deleted."""
    chain = run / "individuals"
    if chain.is_dir():  # chunks of checkpoints that are gone or never were
        for g in _chunks(chain):
            if g > generation:
                (chain / f"{name(g)}.json").unlink(missing_ok=True)
    root = run / "checkpoints"
    if not root.is_dir():
        return []
    _clear_leftovers(root)
    newer = [g for g in _generations(root) if g > generation]
    for g in newer:
        shutil.rmtree(root / name(g), ignore_errors=True)
    return [name(g) for g in newer]


def _clear_leftovers(root: Path) -> None:
    """Temporary folders of checkpoint writes that were interrupted."""
    for leftover in root.glob(".gen-*.tmp"):
        shutil.rmtree(leftover, ignore_errors=True)


def latest(run: Path, *, parse_weights: bool = True) -> tuple[Checkpoint | None, list[str]]:
    """The newest checkpoint that verifies, starting from ``LATEST``, and what was skipped
    (one message per damaged checkpoint). ``parse_weights=False`` checks the weights' hashes
    but leaves parsing them to whoever loads one (the inspection commands)."""
    root = run / "checkpoints"
    candidates = sorted(_generations(root), reverse=True) if root.is_dir() else []
    notes: list[str] = []
    pointer = _pointer(run)
    if pointer is not None and pointer in candidates:
        candidates.remove(pointer)
        candidates.insert(0, pointer)
    elif (run / "LATEST").exists():
        notes.append("LATEST is damaged or names a missing checkpoint; using the newest that verifies")
    for generation in candidates:
        try:
            return read(root / name(generation), parse_weights=parse_weights), notes
        except CheckpointError as exc:
            notes.append(f"checkpoint {name(generation)} is damaged: {exc}")
    return None, notes


def read(folder: Path, *, parse_weights: bool = True) -> Checkpoint:
    """Verify and read one checkpoint folder; ``CheckpointError`` says what is wrong."""
    match = _NAME.match(folder.name)
    if not match:
        raise CheckpointError(f"{folder.name!r} is not a checkpoint folder name")
    manifest = _load_json(folder / "manifest.json")
    digests = manifest.get("sha256") if isinstance(manifest, dict) else None
    if not isinstance(digests, dict) or manifest.get("generation") != int(match.group(1)):
        raise CheckpointError("manifest.json does not describe this checkpoint")
    for rel in ("population.json", "state.json"):
        if rel not in digests:
            raise CheckpointError(f"manifest.json does not list {rel}")
    for rel in digests:
        if not isinstance(rel, str) or not _FILE.match(rel):
            raise CheckpointError(f"manifest.json names a file a checkpoint does not hold: "
                                  f"{str(rel)[:100]!r}")
    if any(path.is_symlink() for path in folder.rglob("*")):
        raise CheckpointError("it holds a symbolic link; evonas never writes one")
    on_disk = set(_files(folder)) - {"manifest.json"}
    if missing := sorted(set(digests) - on_disk):
        raise CheckpointError(f"{missing[0]} is missing")
    for rel, digest in digests.items():
        if _sha256(folder / rel) != digest:
            raise CheckpointError(f"{rel} does not match its SHA-256 in manifest.json")
    population = _load_json(folder / "population.json")
    state = _load_json(folder / "state.json")
    weights = {}
    for rel in digests:
        if rel.startswith("weights/"):
            stem = rel[len("weights/"):].removesuffix(".safetensors")
            if not stem.isdigit():
                raise CheckpointError(f"{rel} is not named after an individual id")
            try:
                if parse_weights:  # parse it now: a bad file is found before it is needed
                    load_state(folder / rel)
            except StateFileError as exc:
                raise CheckpointError(str(exc)) from None
            weights[int(stem)] = folder / rel
    if not isinstance(population, dict) or not isinstance(state, dict):
        raise CheckpointError("population.json and state.json must hold JSON objects")
    if "chunk" in state:  # incremental: the whole lists come from the chain of chunks
        lists = _walk(folder.parent.parent, state["chunk"])
        population = {**population, "individuals": lists["individuals"]}
        state = {**state, "seen": lists["seen"], "history": lists["history"]}
    tensors = None
    if "operators.safetensors" in digests:
        tensors = folder / "operators.safetensors"
        try:
            load_weights(tensors)
        except StateFileError as exc:
            raise CheckpointError(str(exc)) from None
    _check_structure(population, state, weights)
    return Checkpoint(folder, int(match.group(1)), population, state, weights, tensors)


def _check_structure(population: dict[str, Any], state: dict[str, Any],
                     weights: dict[int, Path]) -> None:
    """What a resume and the inspection commands rely on, checked before they use any of it:
    every individual parses (genome, record, a state file inside ``weights/``), the population
    names known individuals, and the state has its counters, RNG states and config."""
    from evonas.individual import Individual

    try:
        individuals = [Individual.from_dict(d) for d in population["individuals"]]
        known = {ind.id for ind in individuals}
        members = [int(i) for i in population["population"]]
        if len(known) != len(individuals) or not set(members) <= known:
            raise ValueError("the population names individuals it does not hold")
        if not set(weights) <= known:
            raise ValueError("weights/ holds a state of an unknown individual")
        for key in ("next_id", "evaluations", "generations"):
            if type(state[key]) is not int or state[key] < 0:
                raise ValueError(f"state.json: {key} must be a non-negative int")
        if not isinstance(state["seen"], list) or not isinstance(state["history"], list) or \
                not isinstance(state["operators"], dict) or not isinstance(state["random"], dict) \
                or not isinstance(state["config"], dict):
            raise ValueError("state.json lacks the run's counters, history, RNG states or config")
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise CheckpointError(f"population.json or state.json is malformed ({str(exc)[:200]})") from None
    except Exception as exc:  # noqa: BLE001 - a genome that does not parse, and the like
        raise CheckpointError(f"population.json is malformed ({type(exc).__name__}: "
                              f"{str(exc)[:200]})") from None


def _pointer(run: Path) -> int | None:
    try:
        match = _NAME.match((run / "LATEST").read_text().strip())
    except (OSError, UnicodeDecodeError):
        return None
    return int(match.group(1)) if match else None


def _generations(root: Path) -> list[int]:
    found = []
    for child in root.iterdir():
        match = _NAME.match(child.name)
        if match and child.is_dir():
            found.append(int(match.group(1)))
    return sorted(found)


def _files(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())


def _load_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CheckpointError(f"{path.name} is missing") from None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise CheckpointError(f"{path.name} is not valid JSON ({str(exc)[:200]})") from None
    except RecursionError:
        raise CheckpointError(f"{path.name} is nested too deeply") from None


def _json(data: Any) -> bytes:
    return json.dumps(data, sort_keys=True, separators=(",", ":")).encode()


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


_fsync_dir = fsync_dir
