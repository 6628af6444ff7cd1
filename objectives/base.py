"""The objective interface and its registry: named measures with a direction and a cost class.

``cheap`` objectives need no training (parameters, FLOPs, latency, zero-cost proxies, table
look-ups); ``expensive`` ones read the trained network or its learning curve. Values are kept in
their natural direction; the engine turns everything into minimisation using ``direction``.
"""

from __future__ import annotations

import importlib
import inspect
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
from torch import nn

from genomes import Genome

from .records import EpochStats
from .tasks import Task

__all__ = ["Context", "Objective", "ObjectiveError", "get", "names", "require_selectable"]


class ObjectiveError(Exception):
    """An objective could not be measured for this genome (e.g. an unknown table key)."""


@dataclass(frozen=True)
class Context:
    """What an objective may look at. ``model`` and ``curve`` are set once training is done."""

    genome: Genome
    task: Task | None = None
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    seed: int = 0
    model: nn.Module | None = None
    curve: tuple[EpochStats, ...] = ()


class Objective:
    """A named measure of a genome. Subclasses set the class attributes and ``measure``."""

    name: ClassVar[str]
    direction: str = "min"  # "min" or "max"
    cost: ClassVar[str] = "cheap"  # "cheap" (no training) or "expensive"
    selectable: ClassVar[bool] = True  # False: reported to the user, never used for selection

    @property
    def key(self) -> str:
        """The name the value is recorded under."""
        return self.name

    def measure(self, ctx: Context) -> float:
        raise NotImplementedError

    def options(self) -> dict[str, Any]:
        sig = inspect.signature(type(self).__init__)
        return {k: getattr(self, k) for k in sig.parameters if k != "self"}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.options().items())
        return f"{type(self).__name__}({args})"


_REGISTRY = {
    "params": "objectives.cost:Params",
    "flops": "objectives.cost:Flops",
    "latency": "objectives.cost:Latency",
    "latency_lut": "objectives.cost:LatencyLUT",
    "naswot": "objectives.zero_cost:NASWOT",
    "val_accuracy": "objectives.accuracy:ValAccuracy",
    "val_error": "objectives.accuracy:ValError",
    "test_accuracy": "objectives.accuracy:TestAccuracy",
    "train_time": "objectives.accuracy:TrainTime",
    "tabular": "objectives.tabular:Tabular",
}


def names(*, selectable: bool | None = None) -> list[str]:
    """Registered objective names (only the selectable ones with ``selectable=True``)."""
    if selectable is None:
        return list(_REGISTRY)
    return [n for n in _REGISTRY if _class(n).selectable == selectable]


def _class(name: str) -> type[Objective]:
    if name not in _REGISTRY:
        raise ValueError(f"unknown objective {name!r}; known: {names()}")
    module, cls = _REGISTRY[name].split(":")
    return getattr(importlib.import_module(module), cls)


def get(name: str, **options: Any) -> Objective:
    """Build the objective ``name`` with its options; ``ValueError`` names a bad option."""
    cls = _class(name)
    allowed = [p for p in inspect.signature(cls.__init__).parameters if p != "self"]
    unknown = [k for k in options if k not in allowed]
    if unknown:
        raise ValueError(f"unknown option {unknown[0]!r} for objective {name!r}; allowed: {allowed}")
    return cls(**options)


def require_selectable(name: str) -> None:
    """Refuse report-only measures (test accuracy) where an objective for selection is asked."""
    if not _class(name).selectable:
        raise ValueError(f"{name!r} is reported only and can never be an objective: selecting on "
                         f"it would leak the test set; use val_accuracy or val_error")
