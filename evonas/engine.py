"""The engine drives a search: ask for trials, evaluate them, tell their results, until the
budget or the generations are spent.

``run(config)`` and ``resume(run_dir)`` are the library API that ``evonas run``/``resume`` call.
Who owns what: ``evonas.search`` (the strategy: parents, the operator mix, LEMONADE's candidates,
survival, ranking), ``evonas.evaluation`` (screening, successive halving, jobs dispatched to
devices, repair), ``evonas.store`` (journal, weights, checkpoints, replay), and
``evonas.asktell.Search``, the ask-and-tell state that ties them together and that users may drive
themselves. Every random choice draws from a generator derived from the run seed and what it is
for, so a run is reproducible on the CPU.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

import torch

from .asktell import RunResult, Search, Trial
from .config import RunConfig
from .evaluation.evaluator import Evaluator
from .evaluation.jobs import evaluate_job
from .progress import Progress
from .resolve import Resolved, resolve
from .store.reopen import RESUMABLE

__all__ = ["RESUMABLE", "Resolved", "RunResult", "Search", "Trial", "drive", "resolve", "resume",
           "run"]

Job = Callable[[dict, str], dict]


def run(config: RunConfig | Mapping, *, run_dir: str | Path | None = None, force: bool = False,
        progress: Progress | None = None, job: Job = evaluate_job) -> RunResult:
    """Run a search from ``config``; write ``run_dir`` when given. ``job`` is what a worker runs
    for one evaluation (``evaluation.jobs.evaluate_job``)."""
    return drive(Search(config, run_dir, force=force, progress=progress or Progress(quiet=True)),
                 job=job)


def resume(run_dir: str | Path, *, generations: int | None = None,
           progress: Progress | None = None, job: Job = evaluate_job) -> RunResult:
    """Continue a run from its newest checkpoint that verifies. Evaluations journaled after it
    are taken from the journal; only those that were running when it stopped are redone.
    ``generations`` may extend the run."""
    search = Search.resume(run_dir, generations=generations,
                           progress=progress or Progress(quiet=True))
    return drive(search, job=job)


def drive(search: Search, *, job: Job = evaluate_job) -> RunResult:
    """Ask, evaluate (dispatched), tell, until the search ends; Ctrl-C stops it cleanly, with
    everything told kept."""
    evaluator = None
    threads = torch.get_num_threads()
    try:  # starting the workers is inside: a Ctrl-C then still journals the stop
        evaluator = Evaluator(search.r, job=job, notify=search.progress.warn)
        search.progress.capacity = evaluator.capacity  # how many asked trials run at once
        if search.strategy.dispatch is not None:  # proposers' own jobs go to the devices too
            search.strategy.dispatch = evaluator.run_jobs
        torch.set_num_threads(search.config.dispatch.threads_per_worker)
        while trials := search.ask():
            for trial, result in evaluator.evaluate(trials):
                search.tell(trial.id, _record(result), state=result.get("state"),
                            seconds=_seconds(result), device=result.get("device"))
    except KeyboardInterrupt:
        search.stop()
    finally:
        torch.set_num_threads(threads)
        if evaluator is not None:
            evaluator.close()
        search.close()
    return search.result()


def _record(result: dict):
    from objectives import EvaluationRecord

    return EvaluationRecord.from_dict(result["record"])


def _seconds(result: dict) -> float | None:
    started = result.get("started")
    return result["ended"] - started if started is not None else None


