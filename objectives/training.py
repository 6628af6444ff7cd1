"""Training a built genome, resumably: continuing to more epochs equals training straight through.

The learning-rate schedule is a function of the epoch and of ``TrainConfig.epochs`` (the
horizon, i.e. the last rung), and each epoch's shuffle is seeded by (seed, epoch); with the
optimizer state carried in ``TrainState``, a candidate promoted from a 3-epoch rung to a 9-epoch
rung continues exactly where it stopped. Failures (NaN/inf loss, exceptions, out of memory,
time-out) end the training with a reason and never raise into the caller's loop.
"""

from __future__ import annotations

import copy
import hashlib
import math
import time
from contextlib import nullcontext
from dataclasses import dataclass, fields
from typing import Any, Mapping

import torch
from torch import nn

from genomes import Genome

from .records import EpochStats
from .tasks import Split, Task

__all__ = ["TrainConfig", "TrainOutcome", "TrainState", "accuracy", "inherit", "train"]

OPTIMIZERS = ("sgd", "adam", "adamw")
SCHEDULES = ("cosine", "constant", "step")


@dataclass(frozen=True)
class TrainConfig:
    """How to train. ``epochs`` is the schedule's horizon (the longest a candidate trains)."""

    epochs: int = 10
    batch_size: int = 64
    optimizer: str = "sgd"
    lr: float = 0.05
    momentum: float = 0.9
    weight_decay: float = 5e-4
    schedule: str = "cosine"
    label_smoothing: float = 0.0
    threads: int = 1
    timeout_s: float | None = None
    amp: bool = True  # mixed precision, on CUDA only

    def __post_init__(self) -> None:
        def need(ok: bool, key: str, what: str) -> None:
            if not ok:
                raise ValueError(f"training.{key} {what}, got {getattr(self, key)!r}")

        for key in ("epochs", "batch_size", "threads"):
            need(type(getattr(self, key)) is int and getattr(self, key) >= 1, key, "must be an int >= 1")
        for key in ("lr", "momentum", "weight_decay", "label_smoothing"):
            value = getattr(self, key)
            need(type(value) in (int, float) and value >= 0, key, "must be a number >= 0")
        need(self.lr > 0, "lr", "must be > 0")
        need(self.label_smoothing < 1, "label_smoothing", "must be < 1")
        need(self.optimizer in OPTIMIZERS, "optimizer", f"must be one of {list(OPTIMIZERS)}")
        need(self.schedule in SCHEDULES, "schedule", f"must be one of {list(SCHEDULES)}")
        need(self.timeout_s is None or (type(self.timeout_s) in (int, float) and self.timeout_s > 0),
             "timeout_s", "must be a positive number or null")
        need(isinstance(self.amp, bool), "amp", "must be true or false")

    @classmethod
    def keys(cls) -> list[str]:
        return [f.name for f in fields(cls)]

    def check_call(self, *, until: Any, seed: Any, state: TrainState | None) -> None:
        """Refuse a training call that no candidate could satisfy (a caller's mistake)."""
        done = state.epoch if state is not None else 0
        if type(until) is not int or not done <= until <= self.epochs:
            raise ValueError(f"epochs to train to must be an int in [{done}, "
                             f"training.epochs={self.epochs}], got {until!r}")
        if type(seed) is not int or seed < 0:
            raise ValueError(f"seed must be an int >= 0, got {seed!r}")

    def lr_at(self, epoch: int) -> float:
        """Learning rate for the 0-based ``epoch`` of a run whose horizon is ``self.epochs``."""
        if self.schedule == "constant":
            return self.lr
        if self.schedule == "step":  # x0.1 at 50 % and 75 % of the horizon
            return self.lr * 0.1 ** sum(epoch >= self.epochs * f for f in (0.5, 0.75))
        return self.lr * 0.5 * (1 + math.cos(math.pi * min(epoch, self.epochs) / self.epochs))


@dataclass(frozen=True)
class TrainState:
    """Where a training stopped: epochs done, weights, optimizer (and AMP scaler) state, curve."""

    epoch: int
    model: Mapping[str, torch.Tensor]
    optimizer: Mapping[str, Any]
    curve: tuple[EpochStats, ...]
    scaler: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class TrainOutcome:
    """A training's result: the new state and trained module, or a failure with its reason.

    ``curve`` holds every finished epoch, also those before a failure.
    """

    state: TrainState | None
    model: nn.Module | None
    reason: str | None = None
    curve: tuple[EpochStats, ...] = ()

    @property
    def failed(self) -> bool:
        return self.reason is not None


class _Stop(Exception):
    """Ends a training as a failure; the message is the reason."""


def train(genome: Genome, task: Task, config: TrainConfig, *, until: int, seed: int = 0,
          state: TrainState | None = None, weights: Mapping[str, torch.Tensor] | None = None,
          device: str | torch.device = "cpu") -> TrainOutcome:
    """Train ``genome`` on ``task`` up to epoch ``until`` (continuing from ``state`` if given).

    ``weights`` (e.g. inherited from a parent) initialise every tensor whose name and shape
    match; the rest keep their seeded initialisation. A failing network gives a failed outcome,
    never an exception; only a wrong call (``until`` beyond the horizon, a bad seed) raises.
    """
    config.check_call(until=until, seed=seed, state=state)
    device = torch.device(device)
    curve = list(state.curve) if state is not None else []
    threads, benchmark = torch.get_num_threads(), torch.backends.cudnn.benchmark
    try:
        if device.type == "cpu":
            torch.set_num_threads(config.threads)
        return _train(genome, task, config, until, seed, state, weights, device, curve)
    except _Stop as stop:
        return TrainOutcome(None, None, str(stop), tuple(curve))
    except Exception as exc:  # a failing candidate must never stop the run
        if device.type == "cuda" and isinstance(exc, torch.cuda.OutOfMemoryError):
            torch.cuda.empty_cache()
            return TrainOutcome(None, None, "out of memory", tuple(curve))
        return TrainOutcome(None, None, f"{type(exc).__name__}: {str(exc)[:300]}", tuple(curve))
    finally:
        torch.set_num_threads(threads)
        torch.backends.cudnn.benchmark = benchmark


def _train(genome, task, config, until, seed, state, weights, device, curve) -> TrainOutcome:
    if genome.input_shape != task.input_shape or genome.num_outputs != task.num_classes:
        raise _Stop(f"the genome takes {genome.input_shape} inputs to {genome.num_outputs} outputs; "
                    f"the task has {task.input_shape} inputs and {task.num_classes} classes")
    net = genome.build(seed=seed, device=device)
    if state is not None:
        net.load_state_dict(state.model)
    elif weights is not None:
        inherit(net, weights)
    optimizer = _optimizer(config, net)
    if state is not None:
        optimizer.load_state_dict(copy.deepcopy(dict(state.optimizer)))
    cuda = device.type == "cuda"
    if cuda:
        torch.backends.cudnn.benchmark = True
    scaler = torch.amp.GradScaler("cuda") if cuda and config.amp else None
    if scaler is not None and state is not None and state.scaler:
        scaler.load_state_dict(dict(state.scaler))
    autocast = (lambda: torch.autocast("cuda", dtype=torch.float16)) if scaler else nullcontext
    loss_fn = nn.CrossEntropyLoss(label_smoothing=config.label_smoothing)
    started = time.monotonic()
    n = len(task.train)
    for epoch in range(state.epoch if state is not None else 0, until):
        for group in optimizer.param_groups:
            group["lr"] = config.lr_at(epoch)
        order = torch.randperm(n, generator=torch.Generator().manual_seed(_epoch_seed(seed, epoch)))
        net.train()
        tick, total, seen = time.perf_counter(), 0.0, 0
        for start in range(0, n, config.batch_size):
            idx = order[start:start + config.batch_size]
            if len(idx) < 2 and seen:  # batch norm cannot train on a single sample
                break
            x, y = task.train.x[idx].to(device), task.train.y[idx].to(device)
            optimizer.zero_grad(set_to_none=True)
            with autocast():
                loss = loss_fn(net(x), y)
            if not torch.isfinite(loss):
                raise _Stop(f"loss became {loss.item()} in epoch {epoch + 1}")
            if scaler is not None:
                scaler.scale(loss).backward()
                scaler.step(optimizer)
                scaler.update()
            else:
                loss.backward()
                optimizer.step()
            total += loss.item() * len(idx)
            seen += len(idx)
            if config.timeout_s is not None and time.monotonic() - started > config.timeout_s:
                raise _Stop(f"time-out: training exceeded {config.timeout_s} s in epoch {epoch + 1}")
        seconds = time.perf_counter() - tick
        if not all(torch.isfinite(t).all() for t in net.state_dict().values() if t.is_floating_point()):
            raise _Stop(f"weights became NaN or infinite in epoch {epoch + 1}")
        curve.append(EpochStats(epoch + 1, total / seen, accuracy(net, task.val, device=device),
                                seconds))
    new_state = TrainState(
        epoch=until,
        model={k: v.detach().to("cpu", copy=True) for k, v in net.state_dict().items()},
        optimizer=copy.deepcopy(optimizer.state_dict()),
        curve=tuple(curve),
        scaler=scaler.state_dict() if scaler is not None else None,
    )
    return TrainOutcome(new_state, net, None, tuple(curve))


@torch.no_grad()
def accuracy(net: nn.Module, split: Split, *, batch_size: int = 512,
             device: str | torch.device = "cpu") -> float:
    """Top-1 accuracy of ``net`` (in eval mode) on a split."""
    was_training = net.training
    net.eval()
    correct = 0
    for start in range(0, len(split), batch_size):
        x = split.x[start:start + batch_size].to(device)
        correct += int((net(x).argmax(1).cpu() == split.y[start:start + batch_size]).sum())
    net.train(was_training)
    return correct / len(split)


@torch.no_grad()
def inherit(net: nn.Module, weights: Mapping[str, torch.Tensor]) -> list[str]:
    """Copy every tensor of ``weights`` whose name and shape match into ``net``; return their names."""
    own = net.state_dict()
    taken = [k for k, v in weights.items() if k in own and own[k].shape == v.shape]
    for k in taken:
        own[k].copy_(weights[k])
    return taken


def _optimizer(config: TrainConfig, net: nn.Module) -> torch.optim.Optimizer:
    params = net.parameters()
    if config.optimizer == "sgd":
        return torch.optim.SGD(params, lr=config.lr, momentum=config.momentum,
                               weight_decay=config.weight_decay, nesterov=config.momentum > 0)
    cls = torch.optim.Adam if config.optimizer == "adam" else torch.optim.AdamW
    return cls(params, lr=config.lr, weight_decay=config.weight_decay)


def _epoch_seed(seed: int, epoch: int) -> int:
    digest = hashlib.sha256(f"shuffle/{seed}/{epoch}".encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1
