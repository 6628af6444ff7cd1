"""Training states on disk: safetensors for the tensors, JSON in its header for the rest.

A ``TrainState`` (weights, optimizer, AMP scaler, learning curve) round-trips bit for bit, so a
candidate promoted after a restart continues exactly where it stopped. Loading reads the
safetensors format only: nothing in the file is ever executed.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

from .files import fsync_dir, write_atomic

if TYPE_CHECKING:  # torch and safetensors load on first use: reading a run's JSON needs neither
    import torch

    from objectives import TrainState

__all__ = ["StateFileError", "fsync_dir", "load_state", "load_weights", "save_state", "save_weights",
           "state_from_bytes", "state_to_bytes", "weights_from_bytes", "weights_to_bytes",
           "write_atomic"]

_FORMAT = "evonas.state/1"


class StateFileError(Exception):
    """A weights or state file is missing, damaged, or not in the safetensors format."""


def save_state(path: str | Path, state: TrainState, meta: Mapping[str, Any] | None = None) -> str:
    """Write ``state`` (and JSON-able ``meta``) to ``path`` atomically; return its SHA-256."""
    data = state_to_bytes(state, meta)
    write_atomic(path, data)
    return hashlib.sha256(data).hexdigest()


def state_to_bytes(state: TrainState, meta: Mapping[str, Any] | None = None) -> bytes:
    """A training state as safetensors bytes (what ``save_state`` writes)."""
    from safetensors.torch import save as save_bytes

    tensors: dict[str, torch.Tensor] = {}
    skeleton = {
        "epoch": state.epoch,
        "model": _flatten(dict(state.model), "model", tensors),
        "optimizer": _flatten(state.optimizer, "optimizer", tensors),
        "scaler": _flatten(state.scaler, "scaler", tensors),
        "curve": [[s.epoch, s.train_loss, s.val_accuracy, s.seconds] for s in state.curve],
    }
    header = {"format": _FORMAT, "state": json.dumps(skeleton), "meta": json.dumps(dict(meta or {}))}
    return save_bytes(tensors, metadata=header)


def load_state(path: str | Path, sha256: str | None = None) -> tuple[TrainState, dict[str, Any]]:
    """Read what ``save_state`` wrote: the state and its meta (checked against ``sha256``)."""
    return _state(*_read(path, sha256=sha256), path)


def state_from_bytes(data: bytes) -> TrainState:
    return _state(*_parse(data, "a training state"), "a training state")[0]


def _state(tensors, header, where) -> tuple[TrainState, dict[str, Any]]:
    from objectives.training import EpochStats, TrainState

    try:
        skeleton = json.loads(header["state"])
        state = TrainState(
            epoch=int(skeleton["epoch"]),
            model=_unflatten(skeleton["model"], tensors),
            optimizer=_unflatten(skeleton["optimizer"], tensors),
            curve=tuple(EpochStats(int(e), float(l), float(a), float(s))
                        for e, l, a, s in skeleton["curve"]),
            scaler=_unflatten(skeleton["scaler"], tensors),
        )
        return state, json.loads(header.get("meta", "{}"))
    except (KeyError, TypeError, ValueError) as exc:
        raise StateFileError(f"{where}: not an evonas training state ({exc})") from None


def weights_to_bytes(weights: Mapping[str, torch.Tensor]) -> bytes:
    from safetensors.torch import save as save_bytes

    return save_bytes({k: v.detach().to("cpu").contiguous() for k, v in weights.items()})


def weights_from_bytes(data: bytes) -> dict[str, torch.Tensor]:
    return _parse(data, "weights", need_format=False)[0]


def save_weights(path: str | Path, weights: Mapping[str, torch.Tensor],
                 meta: Mapping[str, str] | None = None) -> None:
    """Plain weights (a ``state_dict``) with string metadata, e.g. for export."""
    from safetensors.torch import save as save_bytes

    tensors = {k: v.detach().to("cpu").contiguous() for k, v in weights.items()}
    write_atomic(path, save_bytes(tensors, metadata=dict(meta or {})))


def load_weights(path: str | Path) -> dict[str, torch.Tensor]:
    """The weights of a state file or a plain weights file."""
    tensors, header = _read(path, need_format=False)
    if header.get("format") == _FORMAT:
        return dict(load_state(path)[0].model)
    return tensors


def _read(path: str | Path, need_format: bool = True,
          sha256: str | None = None) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise StateFileError(f"cannot read {path}: {exc.strerror or exc}") from None
    if sha256 is not None and hashlib.sha256(data).hexdigest() != sha256:
        raise StateFileError(f"{path} does not match the SHA-256 recorded for it")
    return _parse(data, str(path), need_format)


def _parse(data: bytes, where: str, need_format: bool = True) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    from safetensors import SafetensorError
    from safetensors.torch import load as load_bytes

    try:
        tensors = load_bytes(data)
        header = _header(data)
    except (SafetensorError, ValueError, UnicodeDecodeError) as exc:
        raise StateFileError(f"{where} is not a safetensors file ({exc}); evonas never loads "
                             f"pickled weights") from None
    if need_format and header.get("format") != _FORMAT:
        raise StateFileError(f"{where}: not an evonas training state (format "
                             f"{header.get('format')!r}, expected {_FORMAT!r})")
    return tensors, header


def _header(data: bytes) -> dict[str, str]:
    size = int.from_bytes(data[:8], "little")
    return dict(json.loads(data[8:8 + size].decode()).get("__metadata__") or {})


def _flatten(value: Any, prefix: str, tensors: dict[str, torch.Tensor]) -> Any:
    """JSON skeleton of nested dicts/lists whose tensors go to ``tensors`` under dotted keys."""
    import torch

    if isinstance(value, torch.Tensor):
        tensors[prefix] = value.detach().to("cpu").contiguous().clone()
        return {"$tensor": prefix}
    if isinstance(value, Mapping):
        items = list(value.items())
        return {"$map": [[_key(k), _flatten(v, f"{prefix}.{i}", tensors)] for i, (k, v) in enumerate(items)]}
    if isinstance(value, (list, tuple)):
        return {"$list" if isinstance(value, list) else "$tuple":
                [_flatten(v, f"{prefix}.{i}", tensors) for i, v in enumerate(value)]}
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise StateFileError(f"cannot store a {type(value).__name__} at {prefix!r} in a state file")


def _key(key: Any) -> Any:
    if isinstance(key, (bool, int, float, str)) or key is None:
        return key
    raise StateFileError(f"cannot store a {type(key).__name__} dictionary key in a state file")


def _unflatten(node: Any, tensors: Mapping[str, torch.Tensor]) -> Any:
    if isinstance(node, dict):
        if "$tensor" in node:
            return tensors[node["$tensor"]]
        if "$map" in node:
            return {k: _unflatten(v, tensors) for k, v in node["$map"]}
        if "$list" in node:
            return [_unflatten(v, tensors) for v in node["$list"]]
        if "$tuple" in node:
            return tuple(_unflatten(v, tensors) for v in node["$tuple"])
        raise ValueError(f"unknown node {sorted(node)}")
    return node
