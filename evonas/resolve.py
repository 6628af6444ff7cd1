"""A config turned into the objects it names: the task loaded, the space and the objectives
built. Every failure is a ``ConfigError`` naming its key, found before a run starts."""

from __future__ import annotations

from dataclasses import dataclass

import torch

import objectives
from genomes import spaces
from objectives import TrainConfig, tasks

from .config import ConfigError, RunConfig

__all__ = ["Resolved", "resolve"]


@dataclass
class Resolved:
    """A config turned into the objects it names."""

    config: RunConfig
    task: objectives.Task
    space: spaces.SearchSpace
    objectives: list[objectives.Objective]
    report: list[objectives.Objective]
    training: TrainConfig
    device: torch.device

    @property
    def directions(self) -> dict[str, str]:
        return {o.key: o.direction for o in self.objectives}


def resolve(config: RunConfig) -> Resolved:
    """Load the task and build the space and objectives; ``ConfigError`` names what fails."""
    issues: list[tuple[str, str]] = []
    try:
        task = tasks.get(config.task.dataset, seed=config.seed, **config.task.options())
    except tasks.DataError as exc:
        where = _path("task", str(exc))
        if where == "task":  # a file or value named in the message points at its key
            where = next((f"task.{k}" for k, v in config.task.options().items()
                          if isinstance(v, str) and v in str(exc)), "task.dataset")
        raise ConfigError([(where, str(exc))]) from None
    try:
        space = spaces.get(config.space.kind, input_shape=task.input_shape,
                           num_outputs=task.num_classes, **config.space.options())
    except ValueError as exc:
        issues.append((_path("space", str(exc)), str(exc)))
        space = None
    chosen = []
    for i, item in enumerate(config.objectives):
        try:
            obj = objectives.get(item.name, **item.options())
            obj.check()
            chosen.append(obj)
        except ValueError as exc:
            issues.append((_path(f"objectives[{i}]", str(exc)), str(exc)))
    if issues:
        raise ConfigError(issues)
    report = [objectives.get("test_accuracy")] if task.test is not None else []
    t = config.training
    training = TrainConfig(epochs=t.epochs, batch_size=t.batch_size, optimizer=t.optimizer, lr=t.lr,
                           momentum=t.momentum, weight_decay=t.weight_decay, schedule=t.schedule,
                           label_smoothing=t.label_smoothing, timeout_s=t.timeout_s,
                           threads=config.dispatch.threads_per_worker)
    return Resolved(config, task, space, chosen, report, training, _device(config.dispatch.devices))


def _path(section: str, message: str) -> str:
    import re

    found = re.search(r"option '([A-Za-z_]+)'", message)
    return f"{section}.{found.group(1)}" if found else section


def _device(devices) -> torch.device:
    if devices == "cpu":
        return torch.device("cpu")
    if devices == "auto":
        return torch.device("cuda:0" if torch.cuda.is_available() else "cpu")
    if not torch.cuda.is_available():
        raise ConfigError([("dispatch.devices", f"GPUs {devices} were asked for, but CUDA is not "
                                                f"available here; use cpu or auto")])
    return torch.device(f"cuda:{devices[0]}")
