"""Performance-estimation pillar: tasks (data), resumable training, named objectives, and the
frozen evaluation records that the engine journals and the proposal operators read."""

from typing import TYPE_CHECKING

from . import tasks
from .base import Context, Objective, ObjectiveError, get, names, require_selectable
from .records import EpochStats, EvalState, EvaluationRecord
from .tasks import DataError, Split, Task

if TYPE_CHECKING:  # for type checkers and the API docs; at run time ``__getattr__`` loads them
    from .evaluation import Evaluation, evaluate
    from .training import TrainConfig, TrainOutcome, TrainState, accuracy, inherit, train

# Training and evaluation import torch; they load on first use, so that reading a run directory
# (``evonas front``, ``show``, ``runs``) starts without it.
_LAZY = {"Evaluation": "evaluation", "evaluate": "evaluation", "TrainConfig": "training",
         "TrainOutcome": "training", "TrainState": "training", "accuracy": "training",
         "inherit": "training", "train": "training"}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

__all__ = [
    "Context", "DataError", "EpochStats", "EvalState", "Evaluation", "EvaluationRecord",
    "Objective", "ObjectiveError", "Split", "Task", "TrainConfig", "TrainOutcome", "TrainState",
    "accuracy", "evaluate", "get", "inherit", "names", "require_selectable", "tasks", "train",
]
