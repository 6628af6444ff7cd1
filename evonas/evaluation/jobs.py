"""One evaluation as it crosses a process boundary: plain data in, plain data out.

A job holds the genome as JSON, the names and options of the objectives, the task's name and
options, the training settings, and its starting weights or training state as safetensors
bytes; the result holds the record as a dict and the new training state as safetensors bytes.
Nothing else travels, so a worker on another machine needs only this package and the data.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict
from functools import lru_cache
from typing import Any

import torch

import objectives
from genomes import Genome
from objectives import EvalState, EvaluationRecord, TrainConfig, tasks
from operators.morphisms.repair import repair

from .devices import resolve_worker

from evonas.store.states import state_from_bytes, state_to_bytes, weights_from_bytes, weights_to_bytes

__all__ = ["evaluate_job", "failure", "make_job"]


def make_job(*, ident: int, genome: Genome, objectives: list[tuple[str, dict]], report: list[str],
             task: dict[str, Any], training: TrainConfig, epochs: int, seed: int,
             state=None, weights=None, repair: dict[str, Any] | None = None) -> dict[str, Any]:
    """``repair``: {parent, weights, steps, seed} to distil the child from its parent first."""
    return {
        "repair": None if repair is None else {
            "parent": repair["parent"].to_json(), "weights": weights_to_bytes(repair["weights"]),
            "steps": repair["steps"], "seed": repair["seed"]},
        "id": ident, "genome": genome.to_json(), "genome_hash": genome.canonical_hash(),
        "objectives": objectives, "report": report, "task": task, "training": asdict(training),
        "epochs": epochs, "seed": seed,
        "state": state_to_bytes(state) if state is not None else None,
        "weights": weights_to_bytes(weights) if weights is not None and state is None else None,
    }


def evaluate_job(job: dict[str, Any], device: str = "cpu") -> dict[str, Any]:
    """Run one evaluation (in a worker); a failing network gives a failed record, not an error."""
    started = time.time()
    training = TrainConfig(**job["training"])
    torch.set_num_threads(training.threads)
    task = _task(json.dumps(job["task"], sort_keys=True))
    chosen = [objectives.get(name, **options) for name, options in job["objectives"]]
    report = [objectives.get(name) for name in job["report"]]
    target = resolve_worker(device)  # fake GPU ids run on the CPU
    genome = Genome.from_json(job["genome"])
    weights = weights_from_bytes(job["weights"]) if job["weights"] is not None else None
    if job.get("repair") is not None and weights is not None:
        spec = job["repair"]
        try:  # an approximate child: distilled from its parent before it trains
            weights = repair(genome, weights, Genome.from_json(spec["parent"]),
                             weights_from_bytes(spec["weights"]), task, steps=spec["steps"],
                             seed=spec["seed"], device=target)
        except Exception as exc:  # noqa: BLE001 - a failing candidate never stops the run
            return failure(job, f"repair: {type(exc).__name__}: {exc}", started)
    result = objectives.evaluate(
        genome, chosen, task=task, training=training,
        epochs=job["epochs"], seed=job["seed"], report=report, device=target,
        state=state_from_bytes(job["state"]) if job["state"] is not None else None,
        weights=weights)
    if target.type == "cuda" and result.record.state is EvalState.FAILED:
        torch.cuda.empty_cache()  # after an out-of-memory, free the cache for the next one
    return {
        "record": result.record.to_dict(),
        "state": state_to_bytes(result.state) if result.state is not None else None,
        "pid": os.getpid(), "device": str(target), "started": started, "ended": time.time(),
    }


def failure(job: dict[str, Any], reason: str, started: float | None = None) -> dict[str, Any]:
    """The result of a job that ended without one (an error, a time-out, a dead worker);
    ``started`` (wall-clock) counts the time it held its device."""
    record = EvaluationRecord(job["genome_hash"], EvalState.FAILED, reason=reason)
    return {"record": record.to_dict(), "state": None, "pid": None, "device": None,
            "started": started, "ended": time.time()}


@lru_cache(maxsize=4)
def _task(spec: str) -> objectives.Task:
    """Each worker loads a task once and keeps it while it stays warm."""
    spec_ = json.loads(spec)
    return tasks.get(spec_["dataset"], seed=spec_["seed"], **spec_["options"])
