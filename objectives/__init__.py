"""Performance-estimation pillar: tasks (data), resumable training, named objectives, and the
frozen evaluation records that the engine journals and the proposal operators read."""

from . import tasks
from .base import Context, Objective, ObjectiveError, get, names, require_selectable
from .evaluation import Evaluation, evaluate
from .records import EpochStats, EvalState, EvaluationRecord
from .tasks import DataError, Split, Task
from .training import TrainConfig, TrainOutcome, TrainState, accuracy, inherit, train

__all__ = [
    "Context", "DataError", "EpochStats", "EvalState", "Evaluation", "EvaluationRecord",
    "Objective", "ObjectiveError", "Split", "Task", "TrainConfig", "TrainOutcome", "TrainState",
    "accuracy", "evaluate", "get", "inherit", "names", "require_selectable", "tasks", "train",
]
