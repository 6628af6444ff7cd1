"""Tasks by name: ``get("digits", seed=0)``, ``get("npz", path=...)``, ``get("synthetic")``,
``get("torchvision", dataset="cifar10", root=...)``, ``get("waveforms")`` (generated 1-D
signals: ordered pairs of motifs among distractors). Each returns a checked ``Task``. A user's own
task is named ``"package.module:function"`` or registered in the entry point group
``evonas.tasks``.
"""

from __future__ import annotations

from typing import Any

from genomes.registry import Registry

from .base import DataError, Preprocessing, Split, Task, prepare

__all__ = ["DataError", "Preprocessing", "Split", "Task", "get", "names", "prepare"]

_REGISTRY = Registry("task", {
    "digits": "objectives.tasks.digits:digits",
    "npz": "objectives.tasks.npz:npz",
    "synthetic": "objectives.tasks.synthetic:synthetic",
    "torchvision": "objectives.tasks.vision:torchvision_task",
    "waveforms": "objectives.tasks.waveforms:waveforms",
}, error=DataError, group="evonas.tasks", returns=Task)


def names() -> list[str]:
    """Names of the registered tasks (built-in, then entry points)."""
    return _REGISTRY.names()


def get(name: str, /, **options: Any) -> Task:
    """Load and check the task ``name``; ``DataError`` names the option, file or split at fault."""
    return _REGISTRY.build(name, **options)
