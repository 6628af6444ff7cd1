"""The objective interface and its registry: named measures with a direction and a cost class.

``cheap`` objectives need no training (parameters, FLOPs, latency, zero-cost proxies, table
look-ups); ``expensive`` ones read the trained network or its learning curve. Values are kept in
their natural direction; the engine turns everything into minimisation using ``direction``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from genomes import Genome
from genomes.registry import Registry, option_names

from .records import EpochStats
from .tasks import Task

if TYPE_CHECKING:
    import torch
    from torch import nn

__all__ = ["Context", "Objective", "ObjectiveError", "get", "names", "require_selectable"]


class ObjectiveError(Exception):
    """An objective could not be measured for this genome (e.g. an unknown table key)."""


@dataclass(frozen=True)
class Context:
    """What an objective may look at. ``model`` and ``curve`` are set once training is done."""

    genome: Genome
    task: Task | None = None
    device: torch.device = field(default_factory=lambda: _cpu())
    seed: int = 0
    model: nn.Module | None = None
    curve: tuple[EpochStats, ...] = ()


def _cpu() -> torch.device:
    import torch

    return torch.device("cpu")


class Objective:
    """A named measure of a genome. Subclasses set the class attributes and ``measure``."""

    name: ClassVar[str]
    direction: str = "min"  # "min" or "max"
    cost: ClassVar[str] = "cheap"  # "cheap" (no training) or "expensive"
    selectable: ClassVar[bool] = True  # False: reported to the user, never used for selection
    # True: cheap and exact enough that a proposer may measure it for candidates it has not yet
    # proposed (``Request.preview``), so a learning proposer models only the other objectives.
    preview: ClassVar[bool] = False

    @property
    def key(self) -> str:
        """The name the value is recorded under."""
        return self.name

    def measure(self, ctx: Context) -> float:
        raise NotImplementedError

    def check(self) -> None:
        """Fail early (``ValueError``) on what would fail every evaluation, e.g. a missing file.

        The engine calls it when it validates a config; the default checks nothing.
        """

    def options(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in option_names(type(self))}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.options().items())
        return f"{type(self).__name__}({args})"


_REGISTRY = Registry("objective", {
    "params": "objectives.cost:Params",
    "flops": "objectives.cost:Flops",
    "latency": "objectives.cost:Latency",
    "latency_lut": "objectives.cost:LatencyLUT",
    "naswot": "objectives.zero_cost:NASWOT",
    "val_accuracy": "objectives.trained:ValAccuracy",
    "val_error": "objectives.trained:ValError",
    "test_accuracy": "objectives.trained:TestAccuracy",
    "train_time": "objectives.trained:TrainTime",
    "tabular": "objectives.tabular:Tabular",
}, group="evonas.objectives", returns=Objective)


def names(*, selectable: bool | None = None) -> list[str]:
    """Registered objective names (only the selectable ones with ``selectable=True``)."""
    every = _REGISTRY.names()
    return every if selectable is None else [
        n for n in every if getattr(_REGISTRY.load(n), "selectable", True) == selectable]


def get(name: str, /, **options: Any) -> Objective:
    """Build the objective ``name`` (built-in, ``"package.module:Class"`` or an entry point of
    group ``evonas.objectives``) with its options; ``ValueError`` names a bad option."""
    return _REGISTRY.build(name, **options)


def require_selectable(name: str) -> None:
    """Refuse report-only measures (test accuracy) where an objective for selection is asked
    (a user's factory function is checked on what it builds)."""
    if not getattr(_REGISTRY.load(name), "selectable", True):
        raise ValueError(f"{name!r} is reported only and can never be an objective: selecting on "
                         f"it would leak the test set; use val_accuracy or val_error")
