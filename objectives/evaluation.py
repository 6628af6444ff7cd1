"""One evaluation of one genome: cheap objectives, then training, then the expensive ones.

This is the unit of work the engine dispatches. It never raises for a failing candidate: any
failure becomes a FAILED record with its reason.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Mapping, Sequence

import torch

from genomes import Genome

from .base import Context, Objective
from .records import EvalState, EvaluationRecord
from .tasks import Task
from .training import TrainConfig, TrainState, train

__all__ = ["Evaluation", "evaluate"]


@dataclass(frozen=True)
class Evaluation:
    """The record, plus the training state needed to continue training (None if none/failed)."""

    record: EvaluationRecord
    state: TrainState | None = None


def evaluate(genome: Genome, objectives: Sequence[Objective], *, task: Task | None,
             training: TrainConfig | None = None, epochs: int | None = None, seed: int = 0,
             state: TrainState | None = None, weights: Mapping[str, torch.Tensor] | None = None,
             report: Sequence[Objective] = (), device: str | torch.device = "cpu") -> Evaluation:
    """Measure ``objectives`` (and the report-only ``report``) of ``genome``.

    Training happens only when an expensive measure is asked for: to ``epochs`` (default
    ``training.epochs``), continuing from ``state`` or starting from ``weights``/fresh ones.
    A failing candidate gives a FAILED record; a wrong call (a report-only objective among
    ``objectives``, two objectives with one key, training objectives without a task or config,
    epochs beyond the horizon, an unknown device) raises ``ValueError``.
    """
    if type(seed) is not int or seed < 0:
        raise ValueError(f"seed must be an int >= 0, got {seed!r}")
    keys = [o.key for o in (*objectives, *report)]
    if len(set(keys)) != len(keys):
        raise ValueError(f"two objectives share the key {next(k for k in keys if keys.count(k) > 1)!r}")
    for obj in objectives:
        if not obj.selectable:
            raise ValueError(f"{obj.key!r} is reported only; pass it in report=, not objectives=")
    try:
        device = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(f"unknown device {device!r}: {exc}") from None
    needs_training = any(o.cost == "expensive" for o in (*objectives, *report))
    until = None
    if needs_training:
        if task is None or training is None:
            raise ValueError("objectives that need training need a task and a training config")
        until = training.epochs if epochs is None else epochs
        training.check_call(until=until, seed=seed, state=state)
    ctx = Context(genome, task, device, seed)
    values: dict[str, float] = {}
    reported: dict[str, float] = {}
    new_state, where = state, "genome"
    try:
        digest = genome.canonical_hash()
        genome.validate()
        for obj in objectives:
            if obj.cost == "cheap":
                where = obj.key
                values[obj.key] = obj.measure(ctx)
        if needs_training:
            where = "training"
            outcome = train(genome, task, training, until=until, seed=seed, state=state,
                            weights=weights, device=device)
            if outcome.failed:
                return Evaluation(_failed(genome, values, outcome.reason, outcome.curve))
            new_state = outcome.state
            ctx = replace(ctx, model=outcome.model, curve=outcome.state.curve)
        for obj in objectives:
            if obj.cost == "expensive":
                where = obj.key
                values[obj.key] = obj.measure(ctx)
        for obj in report:
            where = obj.key
            reported[obj.key] = obj.measure(ctx)
    except Exception as exc:  # a failing candidate must never stop the run
        reason = f"{where}: {type(exc).__name__}: {str(exc)[:300]}"
        return Evaluation(_failed(genome, values, reason, new_state.curve if new_state else ()))
    bad = [k for k, v in values.items() if not math.isfinite(v)]
    if bad:
        return Evaluation(_failed(genome, values, f"objective {bad[0]} is {values[bad[0]]}",
                                  new_state.curve if new_state else ()))
    record = EvaluationRecord(digest, EvalState.COMPLETE, values, reported,
                              new_state.curve if new_state else (),
                              new_state.epoch if new_state else 0)
    return Evaluation(record, new_state)


def _failed(genome: Genome, values, reason: str, curve) -> EvaluationRecord:
    try:
        digest = genome.canonical_hash()
    except Exception:  # a genome too broken to hash still gets a record
        digest = "unhashable"
    return EvaluationRecord(digest, EvalState.FAILED, values, {}, tuple(curve),
                            curve[-1].epoch if curve else 0, reason)
