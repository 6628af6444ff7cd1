"""The built-in evaluator: trials become jobs (plain data), jobs are dispatched to devices, and
results come back as they finish. An approximate child is repaired inside its job, so a repair
that fails or hangs is isolated and timed like any evaluation."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import closing
from dataclasses import replace
from typing import Any

from operators.proposer import APPROXIMATE, EXACT

from .dispatch import Dispatcher, make_dispatcher
from .jobs import evaluate_job, make_job

__all__ = ["Evaluator"]


class Evaluator:
    """Evaluates trials of one resolved config on its dispatch settings. ``job`` is what a worker
    runs for one evaluation (a test may pass a faulty one)."""

    def __init__(self, resolved, *, job: Callable[[dict, str], dict] = evaluate_job,
                 notify: Callable[[str], None] | None = None):
        self.r, self.c, self.job, self.notify = resolved, resolved.config, job, notify
        t = self.c.task
        self.task = {"dataset": t.dataset, "seed": self.c.seed, "options": t.options()}
        self.objectives = [(item.name, item.options()) for item, obj in
                           zip(self.c.objectives, resolved.objectives) if obj.cost == "expensive"]
        self.report = [o.key for o in resolved.report] if self.objectives else []
        self.dispatcher: Dispatcher | None = None  # started at the first batch, kept warm

    @property
    def capacity(self) -> int | None:
        """How many evaluations run at once: 1 inline, a local pool's slots; None on a dask
        cluster (its workers come and go)."""
        d = self.c.dispatch
        if d.backend == "inline":
            return 1
        if d.backend == "dask":
            return None
        if self.dispatcher is not None and hasattr(self.dispatcher, "slots"):
            return len(self.dispatcher.slots)
        from .dispatch import slots

        return len(slots(d.devices, d.workers_per_device))

    def jobs(self, trials: Sequence) -> list[dict[str, Any]]:
        return [self._job(t) for t in trials]

    def evaluate(self, trials: Sequence) -> Iterator[tuple[Any, dict[str, Any]]]:
        """(trial, result) pairs in the order they finish; Ctrl-C abandons the rest."""
        if not trials:
            return
        if self.dispatcher is None:
            self.dispatcher = make_dispatcher(self.c.dispatch, notify=self.notify)
        with closing(self.dispatcher.run(self.job, self.jobs(trials))) as results:
            for j, result in results:
                yield trials[j], result

    def run_jobs(self, fn: Callable[[dict, str], dict], jobs: Sequence[dict]) -> list[dict]:
        """A proposer's own jobs (``Request.dispatch``) on the same devices as evaluations."""
        from .proposals import run_dispatched

        if self.dispatcher is None:
            self.dispatcher = make_dispatcher(self.c.dispatch, notify=self.notify)
        return run_dispatched(self.dispatcher, fn, jobs)

    def close(self) -> None:
        if self.dispatcher is not None:
            self.dispatcher.close()
            self.dispatcher = None

    def _job(self, trial) -> dict[str, Any]:
        training = self.r.training
        if trial.treatment == EXACT:  # computes its parent's function: fine-tune gently
            training = replace(training, lr=training.lr * self.c.training.inherited_lr_scale)
        repair = None
        if trial.treatment == APPROXIMATE and trial.state is None and trial.parent is not None \
                and self.c.training.repair_steps:
            parent, weights = trial.parent
            repair = {"parent": parent, "weights": weights, "steps": self.c.training.repair_steps,
                      "seed": trial.seed}
        return make_job(ident=trial.id, genome=trial.genome, objectives=self.objectives,
                        report=self.report, task=self.task, training=training,
                        epochs=trial.fidelity, seed=trial.seed, state=trial.state,
                        weights=trial.weights if trial.state is None else None, repair=repair)
