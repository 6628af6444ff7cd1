"""A config turned into the objects it names: the task loaded, the space and the objectives
built. Every failure is a ``ConfigError`` naming its key, found before a run starts."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

import objectives
from genomes import spaces
from objectives import TrainConfig, tasks

from .config import ConfigError, RunConfig, located
from .evaluation.devices import DeviceError, resolve_driver

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
    if config.dispatch.security is not None:  # files, like the task's: checked before a run
        issues += [(f"dispatch.security.{key}", message)
                   for key, message in config.dispatch.security.missing()]
    try:
        task = tasks.get(config.task.dataset, seed=config.seed, **config.task.options())
    except tasks.DataError as exc:
        where, message = located("task", str(exc))
        if where == "task":  # a file or value named in the message points at its key
            where = next((f"task.{k}" for k, v in config.task.options().items()
                          if isinstance(v, str) and v and v in message), "task.dataset")
        raise ConfigError([*issues, (where, message)]) from None
    try:
        space = spaces.get(config.space.kind, input_shape=task.input_shape,
                           num_outputs=task.num_classes, **config.space.options())
    except ValueError as exc:
        issues.append(located("space", str(exc)))
        space = None
    if space is not None:
        issues += _draw(space, config, task)
    chosen = []
    for i, item in enumerate(config.objectives):
        try:
            obj = objectives.get(item.name, **item.options())
            obj.check()
            chosen.append(obj)
        except ValueError as exc:
            issues.append(located(f"objectives[{i}]", str(exc)))
    if space is not None and len(chosen) == len(config.objectives):
        issues += _portfolio(space, config, trains=any(o.cost == "expensive" for o in chosen))
    if issues:
        raise ConfigError(issues)
    report = [objectives.get("test_accuracy")] if task.test is not None else []
    t = config.training
    training = TrainConfig(epochs=t.epochs, batch_size=t.batch_size, optimizer=t.optimizer, lr=t.lr,
                           momentum=t.momentum, weight_decay=t.weight_decay, schedule=t.schedule,
                           label_smoothing=t.label_smoothing, timeout_s=t.timeout_s,
                           threads=config.dispatch.threads_per_worker)
    return Resolved(config, task, space, chosen, report, training, _device(config.dispatch.devices))


DRAW_CHECK_NODES = 300  # spaces of genomes this small are also checked for a first population


def _draw(space: spaces.SearchSpace, config: RunConfig, task: objectives.Task) -> list[tuple[str, str]]:
    """Draw from the space as the run will, with a fixed generator: a space that cannot give a
    legal genome (bounds too tight for the task) is found here, before a run folder is written.
    Where genomes are small (cheap to draw), a first population of up to 32 distinct genomes is
    drawn too, which finds spaces with fewer members than the population."""
    rng = np.random.default_rng([config.seed, 0x5EED])
    options = config.space.options()
    try:
        first = space.sample(rng)
        wanted = min(config.search.population, config.search.max_evaluations or 32, 32)
        if len(first) <= DRAW_CHECK_NODES and wanted > 1:
            space.initial(rng, wanted)
    except ValueError as exc:
        text = str(exc)
        if "distinct" in text:
            return [("search.population", f"the space cannot fill a first population: {text}")]
        bound = next((k for k in ("max_params", "max_nodes") if k in options and k in text), None)
        where = f"space.{bound}" if bound else "space"
        return [(where, f"the space cannot draw a legal genome for task {config.task.dataset!r} "
                        f"(input {task.input_shape}, {task.num_classes} classes): {text}")]
    return []


def _device(devices) -> torch.device:
    try:
        return resolve_driver(devices)
    except DeviceError as exc:
        raise ConfigError([("dispatch.devices", str(exc))]) from None


def _portfolio(space: spaces.SearchSpace, config: RunConfig, *,
               trains: bool) -> list[tuple[str, str]]:
    """An adaptive mix must have operators (``auto``: those that apply to the space), each able
    to keep ``p_min``."""
    adaptive = config.search.adaptive
    if adaptive is None or not config.search.operators:
        return []
    auto = config.search.operators == "auto"
    k = len(config.search.operator_specs(space, trains=trains))
    if k == 0:
        return [("search.operators", f"'auto' found no operator that applies to the "
                                     f"{space.name} space; name them")]
    if adaptive.p_min * k >= 1:
        found = f"'auto' found {k} operators for the {space.name} space" if auto else \
            f"{k} operators"
        return [("search.portfolio.p_min", f"{found}; they cannot each keep {adaptive.p_min:g}: "
                                           f"it must be below 1 / {k}")]
    return []
