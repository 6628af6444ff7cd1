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
    """
    device = torch.device(device)
    ctx = Context(genome, task, device, seed)
    values: dict[str, float] = {}
    reported: dict[str, float] = {}
    new_state, where = state, "screening"
    try:
        where = "genome"
        digest = genome.canonical_hash()
        genome.validate()
        for obj in objectives:
            if obj.cost == "cheap":
                where = obj.key
                values[obj.key] = obj.measure(ctx)
        expensive = [o for o in (*objectives, *report) if o.cost == "expensive"]
        if expensive:
            if task is None or training is None:
                raise ValueError("training-based objectives need a task and a training config")
            until = training.epochs if epochs is None else epochs
            where = "training"
            outcome = train(genome, task, training, until=until, seed=seed, state=state,
                            weights=weights, device=device)
            if outcome.failed:
                return Evaluation(_failed(genome, values, outcome.reason, state))
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
        return Evaluation(_failed(genome, values, reason, state))
    bad = [k for k, v in values.items() if not math.isfinite(v)]
    if bad:
        return Evaluation(_failed(genome, values, f"objective {bad[0]} is {values[bad[0]]}", state))
    curve = new_state.curve if new_state is not None else ()
    record = EvaluationRecord(digest, EvalState.COMPLETE, values, reported, curve,
                              new_state.epoch if new_state is not None else 0)
    return Evaluation(record, new_state)


def _failed(genome: Genome, values, reason: str, state: TrainState | None) -> EvaluationRecord:
    try:
        digest = genome.canonical_hash()
    except Exception:  # a genome too broken to hash still gets a record
        digest = "unhashable"
    return EvaluationRecord(digest, EvalState.FAILED, values, {}, state.curve if state else (),
                            state.epoch if state else 0, reason)
