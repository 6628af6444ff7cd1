"""Ask and tell: a search a caller drives (Optuna's ``Study.ask/tell``, pymoo's ``Algorithm.next``).

``ask()`` gives the trials to evaluate now: each has an id, a genome, the weights it inherits (or
the training state it continues from) and a fidelity (epochs). ``tell(id, values)`` reports one.
When a rung of a generation is told, the search ranks it (successive halving), and when the last
rung is told it lets the strategy survive, records the generation and checkpoints it. The journal
has every told result at once, so a kill between an ask and its tell loses nothing that was told,
and a resumed search asks only for what was not. ``evonas.run`` is this loop with the built-in
evaluator (``evonas.evaluation.evaluator``).
"""

from __future__ import annotations

import hashlib
import math
import os
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from genomes import HASH_SCHEME, Genome
from objectives import EvalState, EvaluationRecord, TrainState
from operators import Child
from operators.proposer import APPROXIMATE, FRESH

from .config import RunConfig, load, parse
from .evaluation.halving import SuccessiveHalving
from .evaluation.screening import screen
from .individual import Individual
from . import __version__
from .progress import Progress
from .runview import hypervolume
from .tensorboard import Scalars
from .resolve import Resolved, resolve
from .search.budget import Budget
from .search.ranking import minimisation_matrix, rank
from .evaluation.proposals import run_inline
from .search.portfolio import Portfolio
from .search.strategy import Strategy
from .store import checkpoint
from .store.journal import Replay
from .store.lock import RunLock
from .store.recorder import Recorder, now
from .store.rundir import RunDir, RunDirError
from .store.states import load_state

__all__ = ["RunResult", "Search", "Trial"]


@dataclass
class RunResult:
    """What a run found: every individual, the last population, and the Pareto front."""

    config: RunConfig
    run_dir: Path | None
    individuals: list[Individual]
    population: list[Individual]
    front: list[Individual]
    history: list[dict[str, Any]] = field(default_factory=list)
    stopped: bool = False
    idle: str | None = None  # why a resumed run had nothing to do (it had finished)


@dataclass(frozen=True)
class Trial:
    """One evaluation to run: train ``genome`` up to ``fidelity`` epochs, starting from ``state``
    (a promoted candidate continues) or else from ``weights`` (inherited; None: a fresh start
    from ``seed``). ``treatment`` says how: exact children fine-tune at a lower rate,
    approximate ones are first repaired against ``parent`` (genome, weights)."""

    id: int
    genome: Genome
    fidelity: int
    treatment: str
    generation: int
    operator: str
    parents: tuple[int, ...]
    seed: int
    final: bool
    weights: dict[str, torch.Tensor] | None = field(default=None, repr=False)
    state: TrainState | None = field(default=None, repr=False)
    parent: tuple[Genome, dict[str, torch.Tensor]] | None = field(default=None, repr=False)


@dataclass
class _Batch:
    """A generation under evaluation: its candidates, its rungs, and who is still training."""

    generation: int
    rungs: list[int]
    alive: list[Individual]
    children: dict[int, Child | None]
    level: int = 0
    told: dict[int, EvaluationRecord] = field(default_factory=dict)
    steps: set[str] = field(default_factory=set)  # what the generation's end has done


class Search:
    """A search over one config; ``run_dir`` keeps it (journal, weights, checkpoints).

    Use it as a context manager, or call ``close()``: it holds the run directory's lock.
    """

    def __init__(self, config: RunConfig | Mapping | str | Path | None, run_dir: str | Path | None = None,
                 *, force: bool = False, progress: Progress | None = None):
        if config is None or isinstance(config, (str, Path)):  # a YAML file, or the quick start
            config = load(config)
        config = config if isinstance(config, RunConfig) else parse(dict(config))
        resolved = resolve(config)
        rundir, lock = None, None
        if run_dir is not None:
            RunDir(run_dir).check_new(force=force)  # before anything is written there
            try:
                Path(run_dir).mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise RunDirError(f"cannot create the run directory {str(run_dir)!r}: "
                                  f"{exc.strerror or exc}") from None
            lock = RunLock(run_dir).acquire()
            try:
                rundir = RunDir(run_dir).create(config.to_dict(), force=force)
            except BaseException:
                lock.release()
                raise
            pre = resolved.task.preprocessing
            rundir.append({"event": "started", "config": config.to_dict(),
                           "preprocessing": pre.to_dict() if pre is not None else None,
                           "hash_scheme": HASH_SCHEME, "directions": dict(resolved.directions),
                           "evonas": __version__, "cwd": os.getcwd(),
                           "time": now()})
        self._open(resolved, rundir, lock, progress)

    @classmethod
    def resume(cls, run_dir: str | Path, *, generations: int | None = None,
               progress: Progress | None = None) -> Search:
        """Continue the run in ``run_dir`` from its newest checkpoint that verifies; results
        journaled after it are taken from the journal."""
        from .store.reopen import reopen

        progress = progress or Progress(quiet=True)
        opened = reopen(Path(run_dir), generations, progress)
        self = cls.__new__(cls)
        try:
            self._open(opened.resolved, opened.rundir, opened.lock, progress,
                       generations=opened.generations, start=opened.start, replay=opened.replay)
        except BaseException:
            opened.lock.release()
            raise
        self.idle = self._idle(run_dir) if opened.start is not None else None
        if self.idle is not None:
            self.progress.log(self.idle)
        return self

    def _idle(self, run_dir: str | Path) -> str | None:
        """Why a resumed run has nothing to do (its generations or a budget are spent), or None."""
        spent = self.budget.exhausted()
        if spent is None:
            return None
        g = self.generation
        if spent == "generations":
            more = g + max(self.config.search.generations, 1)
            return (f"nothing to do: the run finished at generation {g}; extend it with "
                    f"--generations {more} (any number above {g})")
        key = {"evaluations": "max_evaluations", "seconds": "max_seconds",
               "epochs": "max_epochs"}[spent]
        return (f"nothing to do: the run finished at generation {g}, its search.{key} "
                f"({getattr(self.config.search, key):g}) spent; raise it in "
                f"{Path(run_dir) / 'config.yaml'} to go on")

    def _open(self, r: Resolved, rundir: RunDir | None, lock: RunLock | None,
              progress: Progress | None, *, generations: int | None = None,
              start: checkpoint.Checkpoint | None = None, replay: Replay | None = None) -> None:
        self.r, self.config, self._lock = r, r.config, lock
        self.progress = progress or Progress(quiet=True)
        c = self.config
        self.generations = c.search.generations if generations is None else generations
        self.recorder = Recorder(rundir, keep=c.checkpoints.keep, replay=replay,
                                 warn=self.progress.warn)
        self._scalars = Scalars(rundir.path) if rundir is not None and c.logging.tensorboard \
            else None
        self.cheap = [o for o in r.objectives if o.cost == "cheap"]
        self.expensive = [o for o in r.objectives if o.cost == "expensive"]
        self.trains = bool(self.expensive)  # all objectives cheap: nothing trains, nothing is built
        specs = c.search.operator_specs(r.space, trains=self.trains)
        adaptive = c.search.adaptive
        portfolio = None if adaptive is None else Portfolio(
            {name: weight for name, (weight, _) in specs.items()}, p_min=adaptive.p_min,
            alpha=adaptive.alpha, beta=adaptive.beta)
        self.strategy = Strategy(
            space=r.space, directions=r.directions, cheap=[o.key for o in self.cheap],
            selection=c.search.selection, backend=c.search.backend,
            tournament=c.search.tournament, candidates=c.search.candidates,
            operators_=specs, rng=self._rng, warn=self.progress.warn,
            preview=self._preview, previewed=[o.key for o in self.cheap if o.preview],
            portfolio=portfolio)
        if self.trains:  # what a proposer's own jobs train on; run in-process unless driven
            t = c.task
            self.strategy.task = {"dataset": t.dataset, "seed": c.seed, **t.options()}
            self.strategy.training = asdict(r.training)
            self.strategy.dispatch = run_inline
        self.individuals: list[Individual] = []
        self.population: list[Individual] = []
        self.front: list[Individual] = []
        self.seen: set[str] = set()
        self._seen_order: list[str] = []  # the same hashes, in the order they were seen
        self.history: list[dict[str, Any]] = []
        self._by_id: dict[int, Individual] = {}
        self.next_id, self.generation = 0, -1  # the last generation that ended
        self.evaluations = 0  # individuals whose whole schedule ended (max_evaluations counts them)
        self.counted: set[int] = set()  # ids whose schedule ended in this session
        self.stopped = self.finished = False
        self._batch: _Batch | None = None
        self.idle: str | None = None
        self._pending: dict[int, Trial] = {}
        used = None
        if start is not None:
            self._restore(start)
            used = {"evaluations": self.evaluations, "generations": start.generation,
                    **start.state.get("budget", {})}
        if replay is not None and replay.seconds:  # a session stopped after its last checkpoint
            used = used or {}  # spent time the checkpoint does not know of (max_seconds)
            if type(used.get("seconds", 0.0)) in (int, float):  # else refused by Budget, named
                used["seconds"] = max(used.get("seconds", 0.0), replay.seconds)
        self.budget = Budget.of(c, generations=self.generations, used=used, expensive=self.trains,
                                clock=self.progress.clock)
        self.progress.start(self.budget.planned.evaluations, budget=self.budget)
        if start is not None:  # the whole run's counts, as the uninterrupted run shows them
            states = [i.record.state for i in self.individuals if i.record is not None]
            self.progress.advance(self.evaluations, pruned=states.count(EvalState.PRUNED),
                                  failed=states.count(EvalState.FAILED))

    # ------------------------------------------------------------------ the public loop
    @property
    def done(self) -> bool:
        return self.finished or self.stopped

    def ask(self) -> list[Trial]:
        """The trials to evaluate now (the same ones again until they are told); empty when the
        search has ended."""
        self._check_open()
        while not self._pending and not self.done:
            if self._batch is None:
                if not self._next_batch():
                    self._finish()
                    break
            elif not self._ask_rung():
                self._end_rung()
        self.progress.asked((t.id, max(t.fidelity - self._reached(self._by_id[t.id]), 0)
                             if self.trains else 1) for t in self._pending.values())
        return list(self._pending.values())

    def tell(self, ident: int, value: Mapping[str, float] | EvaluationRecord | BaseException, *,
             state: TrainState | bytes | None = None, seconds: float | None = None,
             device: str | None = None) -> EvaluationRecord:
        """Report trial ``ident``: its expensive objectives' values (a mapping), a whole
        ``EvaluationRecord``, or an exception (it failed). ``state`` is where its training
        stopped (kept with the run, so a promoted trial can continue from it)."""
        self._check_open()
        if self.done:
            raise RuntimeError("this search has ended; nothing more can be told")
        if ident not in self._pending:
            raise ValueError(f"trial {ident} was not asked for, or was told already")
        trial = self._pending[ident]
        ind = self._by_id[ident]
        record = self._record(ind, trial, value)  # checked before anything changes
        if isinstance(state, bytes):
            from .store.states import state_from_bytes

            state = state_from_bytes(state)
        spent = ind.seconds + (float(seconds) if seconds is not None else 0.0)
        self.recorder.result(ind, record, epochs=trial.fidelity, final=trial.final,
                             state=state if record.ok else None, device=device, seconds=spent)
        del self._pending[ident]  # journaled: from here on it is told
        if state is not None and record.ok:
            ind.state = state
        ind.seconds = spent  # journaled with this rung: a retried tell does not count it twice
        self._batch.told[ident] = record
        self.budget.spend(epochs=max(record.epochs - self._reached(ind), 0))
        self.progress.told(ident, seconds=seconds, failed=record.state == EvalState.FAILED,
                           final=trial.final)
        if not self._pending and not self._ask_rung():
            self._end_rung()
        return record

    def _check_open(self) -> None:
        if self.recorder.rundir is not None and self._lock is None:
            raise RuntimeError("this search is closed (its run directory's lock was released); "
                               "continue it with Search.resume")

    def stop(self) -> None:
        """Journal that the run stopped here (Ctrl-C); what was told stays."""
        if self.done:
            return
        self.stopped = True
        partial = len(self.recorder.started - self.counted)
        self.recorder.event({"event": "stopped", "evaluations": self.evaluations + partial,
                             "complete_schedules": self.evaluations,
                             "seconds": round(self.budget.seconds, 3), "time": now()})

    def result(self) -> RunResult:
        return RunResult(self.config, self.recorder.path, self.individuals, self.population,
                         self.front, self.history, self.stopped, self.idle)

    def close(self) -> None:
        self.progress.stop()
        if getattr(self, "_scalars", None) is not None:
            self._scalars.close()
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    def __enter__(self) -> Search:
        return self

    def __exit__(self, kind, *exc) -> None:
        if kind is KeyboardInterrupt:
            self.stop()
        self.close()

    # ------------------------------------------------------------------ batches
    def _next_batch(self) -> bool:
        """Start the next generation (the initial population first); False when the budget or
        the generations are spent."""
        g = self.generation + 1
        search = self.config.search
        if g > 0 and (g > self.generations or self.budget.exhausted()):
            return False
        if g == 0:
            n = min(search.population, self.budget.planned.evaluations)
            genomes = self.r.space.initial(self._rng("initial"), n)
            batch = [(self._new(genome, 0), None) for genome in genomes]
        else:
            room = self.budget.left().get("evaluations")
            n = min(search.offspring, room) if room is not None else search.offspring
            proposals = self.strategy.propose(self.population, g, self.strategy.wanted(n),
                                              seen=self.seen, budget=self.budget.left(),
                                              weights=self.trains)
            batch = [(self._new(p.child.genome, g, operator=p.operator, parents=p.parents,
                                detail=p.child.provenance.detail, weights=p.child.state_dict,
                                treatment=p.child.treatment, proposal=dict(p.child.cost),
                                inherited=p.child.treatment == "exact"), p) for p in proposals]
        alive, children = [], {}
        room = self.budget.left().get("evaluations") if g > 0 else None
        failed = 0
        for ind, proposal in batch:
            if room is not None and failed >= room:  # screening failures used up the budget:
                self.strategy.discarded.append(  # the remaining candidates are not screened
                    self.strategy.result(proposal, None, "unchosen", g))
                continue
            self.seen.add(ind.genome.canonical_hash())
            self._seen_order.append(ind.genome.canonical_hash())
            self.individuals.append(ind)
            self._by_id[ind.id] = ind
            children[ind.id] = proposal.child if proposal is not None else None
            if self._screen(ind):
                alive.append(ind)
            else:
                failed += 1  # counted as an evaluation
        if g > 0:
            n = n if room is None else max(min(n, room - failed), 0)
            keep = set(self.strategy.choose(self.population, alive, n, g))
            for i, ind in enumerate(alive):
                if i not in keep:  # an unchosen candidate is never trained
                    self.individuals.remove(ind)
                    proposal = next(p for j, p in batch if j is ind)
                    self.strategy.discarded.append(
                        self.strategy.result(proposal, None, "unchosen", g))
                    children.pop(ind.id)
            alive = [ind for i, ind in enumerate(alive) if i in keep]
        er = self.config.training.early_ranking
        rungs = [self.config.training.epochs] if g == 0 or er is None else list(er.rungs)
        self._batch = _Batch(g, rungs if self.trains else [0], alive, children)
        self.progress.label(f"generation {g}/{self.generations}")
        self._halving = SuccessiveHalving(rungs=self._batch.rungs or [1], keep=er.keep if
                                          er is not None and g > 0 else 1.0) if self.trains else None
        return True

    def _preview(self, genomes: Sequence[Genome]) -> list[dict[str, float] | None]:
        """The previewable cheap objectives of candidates, as screening measures them."""
        objs = [o for o in self.cheap if o.preview]
        out: list[dict[str, float] | None] = []
        for g in genomes:
            done = screen(g, objs, task=self.r.task, device=self.r.device, seed=0)
            out.append(None if done.reason is not None else done.values)
        return out

    def _screen(self, ind: Individual) -> bool:
        """Cheap objectives before any training; a failure fails (and journals) the individual.
        Without training, screening completes it."""
        line = self.recorder.screened(ind)
        if line is not None:  # resumed: as journaled
            if line["event"] == "failed" and line.get("rung_epochs") == 0:
                ind.record, ind.seconds = EvaluationRecord.from_dict(line), line["seconds"]
                self._count(ind)
                return False
            ind.cheap = {o.key: float(line["objectives"][o.key]) for o in self.cheap}
            return True
        done = screen(ind.genome, self.cheap, task=self.r.task, device=self.r.device,
                      seed=self._seed("train", ind.id))
        ind.cheap, ind.seconds = done.values, ind.seconds + done.seconds
        if done.reason is not None:
            ind.record = EvaluationRecord(ind.genome.canonical_hash(), EvalState.FAILED,
                                          done.values, reason=done.reason)
            self.recorder.event(ind.journal_line(rung_epochs=0))
            self._count(ind)
            return False
        if not self.trains:  # every objective measured: complete, journaled as rung 0
            record = EvaluationRecord(ind.genome.canonical_hash(), EvalState.COMPLETE, done.values)
            self.recorder.result(ind, record, epochs=0, final=True)
        return True

    def _ask_rung(self) -> bool:
        """Make the current rung's trials (replayed results are taken from the journal); False
        when none is left to evaluate."""
        b = self._batch
        epochs, final = b.rungs[b.level], b.level == len(b.rungs) - 1
        for ind in b.alive:
            if ind.id in b.told or ind.id in self._pending:
                continue
            record = self.recorder.replayed(ind, epochs)
            if record is None and not self.trains:
                record = EvaluationRecord(ind.genome.canonical_hash(), EvalState.COMPLETE, ind.cheap)
            if record is not None:
                b.told[ind.id] = self._merged(ind, record)
                self.budget.spend(epochs=max(record.epochs - self._reached(ind), 0))
                continue
            self._pending[ind.id] = self._trial(ind, epochs, final)
        return bool(self._pending)

    def _trial(self, ind: Individual, epochs: int, final: bool) -> Trial:
        state = ind.state
        if state is None and ind.state_file is not None:  # promoted after a restart
            state = load_state(ind.state_file, ind.state_sha256)[0]
        parent = None
        if state is None and ind.treatment == APPROXIMATE and ind.parents:
            first = self._by_id.get(ind.parents[0])
            if first is not None:
                parent = (first.genome, first.trained_weights)
        return Trial(ind.id, ind.genome, epochs, ind.treatment if ind.weights is not None else FRESH,
                     ind.generation, ind.operator, ind.parents, self._seed("train", ind.id), final,
                     weights=ind.weights if state is None else None, state=state, parent=parent)

    def _end_rung(self) -> None:
        """Rank the rung just told; promote the best (successive halving) or end the batch."""
        b = self._batch
        ok = [ind for ind in b.alive if b.told[ind.id].ok]
        for ind in b.alive:
            if not b.told[ind.id].ok:
                ind.record = b.told[ind.id]
                self._count(ind)
        order = [ok[i] for i in rank(minimisation_matrix([b.told[i.id] for i in ok],
                                                         self.r.directions))] if ok else []
        promoted = self._halving.promote(b.level, order) if self._halving else order
        for ind in order[len(promoted):]:
            ind.record = b.told[ind.id].with_state(EvalState.PRUNED)
            if ind.id not in self.recorder.replay.pruned:
                self.recorder.event({"event": "pruned", "id": ind.id, "epochs": ind.record.epochs})
            self._count(ind)
        if b.level == len(b.rungs) - 1:
            for ind in promoted:
                ind.record = b.told[ind.id]
                self._count(ind)
            self._end_batch()
        else:
            b.alive, b.level, b.told = promoted, b.level + 1, {}

    def _end_batch(self) -> None:
        """Tell, survive, record and checkpoint a generation. Each step is done once: the batch
        keeps what is done and is cleared last, so a step that raised (a full disk) is retried
        by the next ask, and nothing before it is redone."""
        b = self._batch
        g = b.generation
        members = [self._by_id[i] for i in b.children]
        done = [m for m in members if m.complete]
        if g == 0 and not done:
            raise RuntimeError(f"every individual of the first generation failed "
                               f"({_reasons(members)}); see the journal")
        if "told" not in b.steps:
            before = self.front
            known = {f.id: f for f in self.front + done}
            self.front = self.strategy.front(list(known.values()))
            self.strategy.tell([(m, b.children[m.id]) for m in members],
                               {f.id for f in self.front}, g, warn=self.progress.warn,
                               previous_front=before)
            pool = done if g == 0 else self.population + done
            self.population = self.strategy.survive(pool, self.config.search.population, g)
            b.steps.add("told")
        summary = {"event": "generation", "generation": g, "evaluations": self.evaluations,
                   "population": [p.id for p in self.population],
                   "front": sorted(f.id for f in self.front)}
        if "journaled" not in b.steps:
            if g not in self.recorder.replay.generations:
                accounts = {"event": "operators", "generation": g,
                            "operators": self.strategy.accounts()}
                if self.strategy.portfolio is not None:  # the mix the next generation draws from
                    accounts["weights"] = {k: round(v, 6) for k, v in self.strategy.mix().items()}
                adapts = self.strategy.portfolio is not None
                # elapsed: the run's wall-clock seconds so far (all sessions), for progress in time
                self.recorder.event({**summary, "elapsed": round(self.budget.seconds, 3)},
                                    *([accounts] if g > 0 or adapts else []))
                if self._scalars is not None:  # on the scale of generation 0: the curve only rises
                    best = {k: (min if d == "min" else max)(f.record.objectives[k] for f in self.front)
                            for k, d in self.r.directions.items()}
                    first = [i.record for i in self.individuals if i.complete and i.generation == 0]
                    self._scalars.generation(
                        g, hypervolume=hypervolume([f.record for f in self.front], first,
                                                   self.r.directions),
                        best=best, elapsed=self.budget.seconds)
            self.history.append(summary)
            b.steps.add("journaled")
        self.recorder.front(self.front, list(self.r.directions), [o.key for o in self._report])
        self.progress.status(f"generation {g}/{self.generations}: front of {len(self.front)}, "
                             f"best: {_best(self.front, self.r.directions)}")
        self.budget.generation_done(g)
        self._checkpoint(g)
        self.generation, self._batch = g, None

    def _finish(self) -> None:
        self.finished = True
        self.recorder.event({"event": "finished", "generations": self.generations,
                             "evaluations": self.evaluations, "time": now()})

    # ------------------------------------------------------------------ records
    def _record(self, ind: Individual, trial: Trial, value: Any) -> EvaluationRecord:
        genome_hash = ind.genome.canonical_hash()
        if isinstance(value, EvaluationRecord):
            record = self._checked(ind, trial, value)
        elif isinstance(value, BaseException):
            record = EvaluationRecord(genome_hash, EvalState.FAILED, epochs=trial.fidelity,
                                      reason=f"{type(value).__name__}: {value}")
        elif isinstance(value, Mapping):
            keys = [o.key for o in self.expensive]
            if missing := [k for k in keys if k not in value]:
                raise ValueError(f"trial {ind.id}: no value for objective {missing[0]!r} "
                                 f"(expected {keys})")
            values = {k: float(value[k]) for k in keys}
            if not all(math.isfinite(v) for v in values.values()):
                record = EvaluationRecord(genome_hash, EvalState.FAILED, values,
                                          epochs=trial.fidelity, reason=f"not finite: {values}")
            else:
                record = EvaluationRecord(genome_hash, EvalState.COMPLETE, values,
                                          epochs=trial.fidelity)
        else:
            raise TypeError(f"tell() takes objective values, an EvaluationRecord or an "
                            f"exception, not {type(value).__name__}")
        return self._merged(ind, record)

    def _checked(self, ind: Individual, trial: Trial, rec: EvaluationRecord) -> EvaluationRecord:
        """A told record, refused where it does not belong to this trial; non-finite values
        make it a failure, as they do for told values."""
        if rec.genome_hash != ind.genome.canonical_hash():
            raise ValueError(f"trial {ind.id}: the record is of genome {rec.genome_hash[:12]}, "
                             f"not of this trial's {ind.genome.canonical_hash()[:12]}")
        if rec.state not in (EvalState.COMPLETE, EvalState.PRUNED, EvalState.FAILED):
            raise ValueError(f"trial {ind.id}: a told record must be complete, pruned or "
                             f"failed, not {rec.state.value}")
        if not 0 <= rec.epochs <= trial.fidelity:
            raise ValueError(f"trial {ind.id}: {rec.epochs} epochs told for a trial of "
                             f"{trial.fidelity}")
        if rec.ok:
            keys = [o.key for o in self.expensive]
            if missing := [k for k in keys if k not in rec.objectives]:
                raise ValueError(f"trial {ind.id}: no value for objective {missing[0]!r} "
                                 f"(expected {keys})")
            if not all(math.isfinite(float(rec.objectives[k])) for k in keys):
                return rec.with_state(EvalState.FAILED, f"not finite: "
                                      f"{ {k: rec.objectives[k] for k in keys} }")
        return rec

    @staticmethod
    def _merged(ind: Individual, rec: EvaluationRecord) -> EvaluationRecord:
        return EvaluationRecord(rec.genome_hash, rec.state, {**ind.cheap, **rec.objectives},
                                rec.reported, rec.curve, rec.epochs, rec.reason)

    def _reached(self, ind: Individual) -> int:
        """Epochs ``ind`` had trained before the rung now told (the budget counts the rest)."""
        b = self._batch
        return b.rungs[b.level - 1] if b is not None and b.level > 0 else 0

    @property
    def _report(self):
        return self.r.report if self.expensive else []

    def _new(self, genome: Genome, generation: int, **fields) -> Individual:
        ind = Individual(id=self.next_id, genome=genome, generation=generation, **fields)
        self.next_id += 1  # ids are never reused, not even a discarded candidate's
        return ind

    def _count(self, ind: Individual) -> None:
        if ind.id in self.counted:  # a retried rung end counts nobody twice
            return
        self.counted.add(ind.id)
        self.evaluations += 1
        self.budget.spend(evaluations=1)
        self.progress.ended(ind.id, ind.record.state.value if ind.record is not None else "complete")

    # ------------------------------------------------------------------ checkpoints
    def _checkpoint(self, generation: int) -> None:
        data, tensors = self.strategy.state()
        pre = self.r.task.preprocessing
        state = {"format": 1, "generation": generation, "generations": self.generations,
                 "next_id": self.next_id, "evaluations": self.evaluations, "operators": data,
                 "budget": self.budget.to_dict(), "config": self.config.to_dict(),
                 "hash_scheme": HASH_SCHEME,
                 "preprocessing": pre.to_dict() if pre is not None else None}
        self.recorder.checkpoint(generation, self.population, self.individuals,
                                 self._seen_order, self.history, state, tensors)

    def _restore(self, start: checkpoint.Checkpoint) -> None:
        self.individuals, self.population = self.recorder.restore(start)
        self._by_id = {ind.id: ind for ind in self.individuals}
        state = start.state
        self.next_id, self.generation = int(state["next_id"]), start.generation
        self.evaluations = int(state["evaluations"])
        self._seen_order, self.history = list(state["seen"]), list(state["history"])
        if state.get("hash_scheme") != HASH_SCHEME:  # hashed by an older scheme: hash anew,
            rehashed = [i.genome.canonical_hash() for i in self.individuals]  # keeping the old
            self._seen_order = list(dict.fromkeys(self._seen_order + rehashed))
            self.recorder.restart_chain()  # the next checkpoint holds every list whole
        self.seen = set(self._seen_order)
        self.strategy.load_state(state["operators"], start.load_tensors())
        self.front = self.strategy.front(self.individuals)

    # ------------------------------------------------------------------ randomness
    def _rng(self, *purpose: Any) -> np.random.Generator:
        return np.random.default_rng([self.config.seed, *(_key(p) for p in purpose)])

    def _seed(self, *purpose: Any) -> int:
        return int(self._rng(*purpose).integers(2**31))


def _best(front: Sequence[Individual], directions: Mapping[str, str]) -> str:
    """Each objective's best value on the front and the individual it comes from (they are
    often different networks): "val_error 0.02 (#12), flops 1.2e+05 (#40)", or "#12 (...)"
    where one network is best in all."""
    picks = {key: (min if d == "min" else max)(front, key=lambda f: f.record.objectives[key])
             for key, d in directions.items()}
    ids = {pick.id for pick in picks.values()}
    if len(ids) == 1:  # one network is best in every objective
        pick = next(iter(picks.values()))
        return f"#{pick.id} (" + ", ".join(f"{k} {pick.record.objectives[k]:.4g}"
                                           for k in picks) + ")"
    return ", ".join(f"{k} {p.record.objectives[k]:.4g} (#{p.id})" for k, p in picks.items())


def _key(value: Any) -> int:
    """A stable non-negative int for a seed component (strings hashed, not Python's hash())."""
    if isinstance(value, (int, np.integer)) and value >= 0:
        return int(value)
    return int.from_bytes(hashlib.sha256(str(value).encode()).digest()[:8], "little")


def _reasons(members: Sequence[Individual]) -> str:
    """The failures' reasons, most frequent first: "time-out x 3, OSError: ... x 1"."""
    counts = Counter(_short(m.record.reason if m.record is not None and m.record.reason
                            else "no reason recorded") for m in members)
    words = [f"{reason} x {n}" for reason, n in counts.most_common(3)]
    if len(counts) > 3:
        words.append(f"{len(counts) - 3} other reasons")
    return ", ".join(words)


def _short(text: str, limit: int = 120) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."
