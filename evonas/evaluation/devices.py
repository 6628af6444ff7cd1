"""Devices, resolved in one place: what ``dispatch.devices`` means for the driver (screening,
repair), for the worker slots, and for a worker that was handed a device name. Where CUDA is
missing, GPU names fall back to the CPU in workers (fake ids in tests) and are refused for the
driver with a message naming the key."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

__all__ = ["DeviceError", "gpu_count", "resolve_driver", "resolve_worker"]


class DeviceError(ValueError):
    """``dispatch.devices`` asks for what this machine does not have."""


def gpu_count(cuda: bool | None = None) -> int:
    """Visible GPUs; ``cuda`` True/False pretends there is one / none (tests, fake ids)."""
    import torch  # not at import: dispatch is imported where torch is not yet needed

    if cuda is None:
        return torch.cuda.device_count() if torch.cuda.is_available() else 0
    return 1 if cuda else 0


def resolve_driver(devices: str | Sequence[int]) -> "torch.device":
    """The device the driver measures on: ``cpu``, ``auto`` (the first GPU, else the CPU), or
    the first of a list of GPU indices (``DeviceError`` without CUDA)."""
    import torch

    if devices == "cpu":
        return torch.device("cpu")
    if devices == "auto":
        return torch.device("cuda:0" if gpu_count() else "cpu")
    if not gpu_count():
        raise DeviceError(f"GPUs {list(devices)} were asked for, but CUDA is not available here; "
                          f"use cpu or auto")
    return torch.device(f"cuda:{devices[0]}")


def resolve_worker(name: str) -> "torch.device":
    """What a worker given ``name`` (``cpu``, ``cuda``, ``cuda:k``, ``auto``) runs on."""
    import torch

    if name == "auto" or (name.startswith("cuda") and not torch.cuda.is_available()):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)
