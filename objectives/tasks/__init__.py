"""Tasks by name: ``get("digits", seed=0)``, ``get("npz", path=...)``, ``get("synthetic")``,
``get("torchvision", dataset="cifar10", root=...)``. Each returns a checked ``Task``.
"""

from __future__ import annotations

import importlib
import inspect
from typing import Any

from .base import DataError, Split, Task, prepare

__all__ = ["DataError", "Split", "Task", "get", "names", "prepare"]

_REGISTRY = {
    "digits": "objectives.tasks.digits:digits",
    "npz": "objectives.tasks.npz:npz",
    "synthetic": "objectives.tasks.synthetic:synthetic",
    "torchvision": "objectives.tasks.vision:torchvision_task",
}


def names() -> list[str]:
    return list(_REGISTRY)


def get(name: str, **options: Any) -> Task:
    """Load and check the task ``name``; ``DataError`` names the option, file or split at fault."""
    if name not in _REGISTRY:
        raise DataError(f"unknown task {name!r}; known: {names()}")
    module, fn = _REGISTRY[name].split(":")
    factory = getattr(importlib.import_module(module), fn)
    params = inspect.signature(factory).parameters
    unknown = [k for k in options if k not in params]
    if unknown:
        raise DataError(f"unknown option {unknown[0]!r} for task {name!r}; allowed: {list(params)}")
    missing = [k for k, p in params.items() if p.default is inspect.Parameter.empty and k not in options]
    if missing:
        raise DataError(f"task {name!r} needs option {missing[0]!r}")
    return factory(**options)
