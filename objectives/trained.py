"""Objectives read off a trained network: validation accuracy or error (optionally penalised by
training time), test accuracy (reported only), and training time per epoch."""

from __future__ import annotations

import math

from genomes.registry import shown

from .base import Context, Objective, ObjectiveError
from .training import accuracy

__all__ = ["TestAccuracy", "TrainTime", "ValAccuracy", "ValError"]


def _curve(ctx: Context):
    if not ctx.curve:
        raise ObjectiveError("needs a trained network, but no epoch was trained")
    return ctx.curve


def _seconds_per_epoch(ctx: Context) -> float:
    curve = _curve(ctx)
    return sum(e.seconds for e in curve) / len(curve)


def _penalty(value) -> float:
    if type(value) not in (int, float) or not 0 <= value < math.inf:  # NaN fails both
        raise ValueError(f"option 'time_penalty' must be a finite number >= 0, got {shown(value)}")
    return float(value)


class ValAccuracy(Objective):
    """Validation accuracy after the last epoch; with ``time_penalty`` = λ it becomes
    ``accuracy − λ · seconds per epoch`` (training-time regularisation, Strauch & Grundy 2021)."""

    name, direction, cost = "val_accuracy", "max", "expensive"

    def __init__(self, *, time_penalty: float = 0.0):
        self.time_penalty = _penalty(time_penalty)

    def measure(self, ctx: Context) -> float:
        value = _curve(ctx)[-1].val_accuracy
        return value - self.time_penalty * _seconds_per_epoch(ctx) if self.time_penalty else value


class ValError(ValAccuracy):
    """``1 − validation accuracy`` (+ λ · seconds per epoch with ``time_penalty``)."""

    name, direction = "val_error", "min"

    def measure(self, ctx: Context) -> float:
        value = 1.0 - _curve(ctx)[-1].val_accuracy
        return value + self.time_penalty * _seconds_per_epoch(ctx) if self.time_penalty else value


class TestAccuracy(Objective):
    """Accuracy on the test split. Shown to the user, never used to select: NaN without a test
    split."""

    name, direction, cost, selectable = "test_accuracy", "max", "expensive", False

    def measure(self, ctx: Context) -> float:
        if ctx.model is None:
            raise ObjectiveError("needs a trained network")
        if ctx.task is None or ctx.task.test is None:
            return math.nan
        return accuracy(ctx.model, ctx.task.test, device=ctx.device)


class TrainTime(Objective):
    """Seconds per training epoch on the evaluation device (mean over the epochs trained)."""

    name, direction, cost = "train_time", "min", "expensive"

    def measure(self, ctx: Context) -> float:
        return _seconds_per_epoch(ctx)
