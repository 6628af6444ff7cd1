"""The generation loop: select parents, propose children, screen, estimate, survive, record.

``run(config)`` is the library API; ``evonas run`` calls it. Every random choice draws from a
generator derived from the run seed and what it is for (the individual id, the generation), so a
run is reproducible on the CPU.
"""

from __future__ import annotations

import base64
import hashlib
import math
import random
import time
from contextlib import closing
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

import objectives
import operators
from objectives import Context, EvalState, EvaluationRecord
from operators import NotApplicable
from operators.morphisms.repair import repair

from evonas.store import checkpoint
from .config import ConfigError, RunConfig
from evonas.evaluation.halving import SuccessiveHalving, minimisation_matrix
from .individual import Individual
from evonas.store import journal
from evonas.store.journal import Replay
from evonas.store.lock import RunLock
from .progress import Progress
from .resolve import Resolved, resolve
from evonas.store.rundir import RunDir, RunDirError, inside
from evonas.search.selection import make_selection
from evonas.evaluation.dispatch import Dispatcher, make_dispatcher
from evonas.evaluation.jobs import evaluate_job, make_job
from evonas.store.states import StateFileError, load_state, state_from_bytes, write_atomic

__all__ = ["Resolved", "RunResult", "resolve", "resume", "run"]


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


def run(config: RunConfig | dict, *, run_dir: str | Path | None = None, force: bool = False,
        progress: Progress | None = None) -> RunResult:
    """Run an evolution; write the run directory when ``run_dir`` is given."""
    if isinstance(config, dict):
        from .config import parse

        config = parse(config)
    resolved = resolve(config)
    progress = progress or Progress(quiet=True)
    if run_dir is None:
        return _Loop(resolved, None, progress).run()
    RunDir(run_dir).check_new(force=force)  # before anything is written there
    try:
        Path(run_dir).mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise RunDirError(f"cannot create the run directory {str(run_dir)!r}: "
                          f"{exc.strerror or exc}") from None
    with RunLock(run_dir):
        rundir = RunDir(run_dir).create(config.to_dict(), force=force)
        pre = resolved.task.preprocessing
        rundir.append({"event": "started", "config": config.to_dict(),
                       "preprocessing": pre.to_dict() if pre is not None else None,
                       "time": _now()})
        return _Loop(resolved, rundir, progress).run()


def resume(run_dir: str | Path, *, generations: int | None = None,
           progress: Progress | None = None) -> RunResult:
    """Continue a run from its newest checkpoint that verifies. Evaluations journaled after it
    are taken from the journal; only those that were running when it stopped are redone.
    ``generations`` may extend the run."""
    from .config import diff, load

    path = Path(run_dir)
    progress = progress or Progress(quiet=True)
    if not (path / "config.yaml").is_file():
        raise RunDirError(f"{str(path)!r} holds no run (it has no config.yaml)")
    RunDir(path).check_links()  # never write through a link leading out of the run
    with RunLock(path):
        config = load(path / "config.yaml")
        try:
            record = journal.load(path / "journal.jsonl")
        except OSError as exc:
            raise RunDirError(f"cannot read {path / 'journal.jsonl'}: {exc.strerror or exc}") from None
        record.require(_objective_keys(config))
        lines = record.lines
        start, notes = checkpoint.latest(path)
        ran = start.state.get("config") if start is not None else next(
            (line["config"] for line in lines if line.get("event") == "started"), None)
        if ran is None:
            damaged = "; ".join(record.notes())
            raise RunDirError(f"{str(path)!r} cannot be resumed: neither a checkpoint nor the "
                              f"journal's started line survives, so nothing shows the config the "
                              f"run started with (config.yaml may have been edited since); start "
                              f"a new run instead" + (f" ({damaged})" if damaged else ""))
        for note in record.notes():
            progress.warn(f"{note}; moved to {journal.DAMAGED}, and what it held is taken from "
                          f"a checkpoint or evaluated again")
        if record.legacy:
            progress.warn("journal.jsonl was written by an older evonas without line checksums; "
                          "its lines are read unverified and checksummed from now on")
        for note in notes:
            progress.warn(note)
        if start is not None and notes:
            progress.log(f"falling back to checkpoint {start.path.name}")
        if changed := diff(ran, config.to_dict(), RESUMABLE):
            raise ConfigError([(key, f"differs from the config the run was started with "
                                     f"({before!r} then, {after!r} now); a resumed run keeps its "
                                     f"config") for key, before, after in changed])
        if generations is None:  # a run goes on to what it was last asked for, or to an
            generations = config.search.generations  # edited config.yaml's count
            if start is not None and ran is not None and \
                    ran["search"]["generations"] == config.search.generations:
                generations = int(start.state["generations"])
        if start is not None and generations < start.generation:
            raise ConfigError([("--generations", f"the run already has {start.generation} "
                                                 f"generations; ask for at least that many")])
        resolved = resolve(config)
        journal.quarantine(path / "journal.jsonl", record)  # damaged lines out, a torn tail cut
        rundir = RunDir(path)
        rundir.clear_leftovers()  # temporary files of writes a kill interrupted
        rundir.weights.mkdir(exist_ok=True)
        # newer checkpoints are damaged or about to be rewritten; the start is never pruned
        checkpoint.discard_after(path, start.generation if start is not None else -1)
        if start is not None and notes:
            checkpoint.point(path, start.generation)  # LATEST names a checkpoint that verifies
        rundir.append({"event": "resumed", "checkpoint": start.path.name if start else None,
                       "generations": generations, "damaged": notes + record.notes(),
                       "time": _now()})
        progress.log(f"resuming {path} from " + (f"checkpoint {start.path.name}" if start else
                                                  "the start (no checkpoint verifies)")
                     + f", {generations} generations")
        return _Loop(resolved, rundir, progress, generations=generations, start=start,
                     replay=journal.Replay.of(lines)).run()


def _objective_keys(config: RunConfig) -> list[str]:
    """The keys the config's objectives are recorded under (checked names: parse did that)."""
    return [objectives.get(item.name, **item.options()).key for item in config.objectives]


# Keys a resumed run may change: how long it goes on, how many checkpoints it keeps, where it runs
# (not threads_per_worker: CPU results depend on the thread count).
RESUMABLE = ("search.generations", "search.max_evaluations", "checkpoints.", "dispatch.devices",
             "dispatch.workers_per_device", "dispatch.backend", "dispatch.scheduler")


class _Loop:
    """One run's state. ``start`` (a checkpoint) and ``replay`` (the journal) make a resumed
    loop continue exactly where the interrupted one was."""

    JOB = staticmethod(evaluate_job)  # what a worker runs for one evaluation

    def __init__(self, r: Resolved, rundir: RunDir | None, progress: Progress, *,
                 generations: int | None = None, start: checkpoint.Checkpoint | None = None,
                 replay: Replay | None = None):
        self.r, self.c, self.rundir, self.progress = r, r.config, rundir, progress
        self.generations = self.c.search.generations if generations is None else generations
        self.replay = replay or Replay()
        self.start = start
        keys = [o.key for o in r.objectives]
        self.cheap = [o for o in r.objectives if o.cost == "cheap"]
        self.expensive = [o for o in r.objectives if o.cost == "expensive"]
        self.report = r.report if self.expensive else []  # no training, no test accuracy
        self.selection = make_selection(
            self.c.search.selection, self.c.search.backend, tournament=self.c.search.tournament,
            cheap=[keys.index(o.key) for o in self.cheap])
        self.ops = {name: operators.get(name) for name in self.c.search.operators}
        self.individuals: list[Individual] = []
        self.seen: set[str] = set()
        self.history: list[dict[str, Any]] = []
        self.evaluations = 0  # individuals whose whole schedule ended (the budget's count)
        self.counted: set[int] = set()  # their ids, in this session
        self.started: set[int] = set()  # ids with an evaluation journaled in this session
        self.next_id = 0
        self.dispatcher: Dispatcher | None = None  # started at the first training, kept warm
        t = self.c.task
        self.task_spec = {"dataset": t.dataset, "seed": self.c.seed, "options": t.options()}
        self.job_objectives = [(item.name, item.options()) for item, obj in
                               zip(self.c.objectives, r.objectives) if obj.cost == "expensive"]

    # ------------------------------------------------------------------ the loop
    def run(self) -> RunResult:
        search = self.c.search
        planned = search.population + self.generations * search.offspring
        if search.max_evaluations is not None:
            planned = min(planned, search.max_evaluations)
        self.progress.start(planned)
        population: list[Individual] = []
        stopped = False
        torch_threads = torch.get_num_threads()
        try:
            torch.set_num_threads(self.c.dispatch.threads_per_worker)
            if self.start is not None:
                population, done = self._restore(self.start), self.start.generation
                self.progress.advance(self.evaluations)
            else:
                initial = [self._new(g, 0) for g in self.r.space.initial(
                    self._rng("initial"), min(search.population, planned))]
                self.individuals.extend(initial)
                initial = [ind for ind in initial if self._screen(ind)]
                self._estimate(initial, rungs=[self.c.training.epochs], keep=1.0)
                self._tell(self.individuals)
                population = self._survive([i for i in self.individuals if i.complete], 0)
                done = 0
            for generation in range(done + 1, self.generations + 1):
                room = planned - self.evaluations
                if room <= 0:
                    break
                children = self._propose(population, generation, min(search.offspring, room))
                er = self.c.training.early_ranking
                self._estimate(children, rungs=er.rungs if er else [self.c.training.epochs],
                               keep=er.keep if er else 1.0)
                self._tell(children)
                population = self._survive(population + [c for c in children if c.complete], generation)
        except KeyboardInterrupt:
            stopped = True  # individuals with a rung journaled count, though their schedule stopped
            partial = len(self.started - self.counted)
            self._event({"event": "stopped", "evaluations": self.evaluations + partial,
                         "complete_schedules": self.evaluations, "time": _now()})
        finally:
            torch.set_num_threads(torch_threads)
            self.progress.stop()
            if self.dispatcher is not None:
                self.dispatcher.close()
                self.dispatcher = None
        if not stopped:
            self._event({"event": "finished", "generations": self.generations,
                         "evaluations": self.evaluations, "time": _now()})
        return RunResult(self.c, self.rundir.path if self.rundir else None, self.individuals,
                         population, self.front(), self.history, stopped)

    # ------------------------------------------------------------------ proposing
    def _propose(self, population: list[Individual], generation: int, n: int) -> list[Individual]:
        lemonade = self.selection.archive
        wanted = n * (self.c.search.candidates if lemonade else 1)
        F = self._matrix(population)
        born = np.array([p.id for p in population])
        picks = self.selection.parents(F, born, 2 * wanted, self._rng("parents", generation))
        proposals: list[Individual] = []
        for slot in range(wanted):
            child = self._child(population, picks[2 * slot], picks[2 * slot + 1], generation, slot)
            if child is None or child.genome.canonical_hash() in self.seen:
                continue  # a duplicate architecture is never evaluated twice
            self.individuals.append(child)
            if self._screen(child):
                proposals.append(child)
        if lemonade and len(proposals) > n:
            cheap = [o.key for o in self.cheap]
            ref = np.array([[p.record.objectives[k] for k in cheap] for p in population])
            pts = np.array([[c.cheap[k] for k in cheap] for c in proposals])
            keep = set(self.selection.choose_children(ref, pts, n, self._rng("lemonade", generation)))
            for i, child in enumerate(proposals):  # the unchosen are never trained
                if i not in keep:
                    self.individuals.remove(child)
            proposals = [c for i, c in enumerate(proposals) if i in keep]
        return proposals[:n]

    def _child(self, population, first: int, second: int, generation: int,
               slot: int) -> Individual | None:
        """One child from the operator mix; operators that cannot apply make way for others."""
        rng = self._rng("child", self.next_id, generation, slot)  # the child's id to be
        names = list(self.c.search.operators)
        weights = np.array([self.c.search.operators[n] for n in names], dtype=float)
        for _ in range(2 * len(names)):
            name = names[int(rng.choice(len(names), p=weights / weights.sum()))]
            op = self.ops[name]
            a = population[int(first)]
            parents = [a, population[int(second)]][: op.arity]
            try:
                child = op.propose([(p.genome, p.trained_weights) for p in parents], rng,
                                   space=self.r.space)
            except NotApplicable:
                continue
            weights_ = child.state_dict
            if op.arity == 1 and name in operators.morphisms.names(exact=False) \
                    and self.c.training.repair_steps:
                weights_ = repair(child.genome, weights_, a.genome, a.trained_weights, self.r.task,
                                  steps=self.c.training.repair_steps, seed=self._seed("repair", a.id),
                                  device=self.r.device)
            return self._new(child.genome, generation, operator=name,
                             parents=tuple(p.id for p in parents), detail=child.provenance.detail,
                             weights=weights_ if parents else None, inherited=child.provenance.exact)
        return None

    def _new(self, genome, generation: int, **fields) -> Individual:
        ind = Individual(id=self.next_id, genome=genome, generation=generation, **fields)
        self.next_id += 1  # ids are never reused, not even a discarded duplicate's
        return ind

    def _screen(self, ind: Individual) -> bool:
        """Cheap objectives before any training; a failure here fails (and journals) the
        individual. Returns whether it goes on to training."""
        genome_hash = ind.genome.canonical_hash()
        self.seen.add(genome_hash)
        if (done := self.replay.first(ind.id, genome_hash)) is not None:  # resumed: as journaled
            if done["event"] == "failed" and done.get("rung_epochs") == 0:
                ind.record, ind.seconds = EvaluationRecord.from_dict(done), done["seconds"]
                self._count(ind)
                return False
            ind.cheap = {o.key: float(done["objectives"][o.key]) for o in self.cheap}
            return True
        start = time.perf_counter()
        ctx = Context(ind.genome, self.r.task, self.r.device, self._seed("train", ind.id))
        for obj in self.cheap:
            try:
                value = float(obj.measure(ctx))
                if not math.isfinite(value):
                    raise ValueError(f"value is {value}")
                ind.cheap[obj.key] = value
            except Exception as exc:  # a failing candidate never stops the run
                ind.record = EvaluationRecord(genome_hash, EvalState.FAILED,
                                              ind.cheap, reason=f"{obj.key}: {exc}")
                break
        ind.seconds += time.perf_counter() - start
        if ind.record is not None:
            self._journal(ind.journal_line(rung_epochs=0))
            self._count(ind)
            return False
        return True

    # ------------------------------------------------------------------ estimating
    def _estimate(self, batch: list[Individual], *, rungs: list[int], keep: float) -> None:
        """Successive halving over screened individuals; each ends complete, pruned or failed."""
        todo = [ind for ind in batch if ind.record is None]
        if todo:
            report = SuccessiveHalving(rungs=rungs, keep=keep).run(
                len(todo), None, self.r.directions,
                batch=lambda indices, epochs: self._advance_many(
                    [todo[i] for i in indices], epochs, final=epochs == rungs[-1]))
            for ind, record in zip(todo, report.records):
                ind.record = record
                if record.state is EvalState.PRUNED and ind.id not in self.replay.pruned:
                    self._event({"event": "pruned", "id": ind.id, "epochs": record.epochs})
                self._count(ind)

    def _advance_many(self, inds: list[Individual], epochs: int, *,
                      final: bool = True) -> list[EvaluationRecord]:
        """Train each of ``inds`` up to ``epochs``, dispatched in parallel; each result is
        journaled the moment it arrives, its weights written first. A resumed run takes results
        from the journal where they are there."""
        records: list[EvaluationRecord | None] = [self._replayed(ind, epochs) for ind in inds]
        todo = [k for k, r in enumerate(records) if r is None]
        if not todo:
            return records
        jobs = [self._job(inds[k], epochs) for k in todo]
        if self.dispatcher is None:
            self.dispatcher = make_dispatcher(self.c.dispatch, notify=self.progress.warn)
        with closing(self.dispatcher.run(type(self).JOB, jobs)) as results:  # Ctrl-C: abandoned
            for j, result in results:
                records[todo[j]] = self._arrived(inds[todo[j]], epochs, final, result)
        return records

    def _job(self, ind: Individual, epochs: int) -> dict[str, Any]:
        training = self.r.training
        if ind.inherited:
            training = replace(training, lr=training.lr * self.c.training.inherited_lr_scale)
        state = ind.state
        if state is None and ind.state_file is not None:  # promoted after a restart
            state = load_state(ind.state_file, ind.state_sha256)[0]
        return make_job(ident=ind.id, genome=ind.genome, objectives=self.job_objectives,
                        report=[o.key for o in self.report], task=self.task_spec,
                        training=training, epochs=epochs, seed=self._seed("train", ind.id),
                        state=state, weights=ind.weights if state is None else None)

    def _arrived(self, ind: Individual, epochs: int, final: bool, result: dict) -> EvaluationRecord:
        rec = EvaluationRecord.from_dict(result["record"])
        if result.get("started") is not None:
            ind.seconds += result["ended"] - result["started"]
        record = EvaluationRecord(rec.genome_hash, rec.state, {**ind.cheap, **rec.objectives},
                                  rec.reported, rec.curve, rec.epochs, rec.reason)
        extra: dict[str, Any] = {"rung_epochs": epochs, "rung_final": final}
        if result.get("device"):
            extra["device"] = result["device"]
        data = result.get("state")
        if data is not None:
            ind.state = state_from_bytes(data)
            if self.rundir is not None and record.ok:
                previous = ind.state_file
                ind.state_file = self.rundir.weights / f"{ind.id}-e{epochs}.safetensors"
                write_atomic(ind.state_file, data)
                ind.state_sha256 = hashlib.sha256(data).hexdigest()
                extra.update(weights=f"weights/{ind.state_file.name}", sha256=ind.state_sha256)
                self._journal(ind.journal_line(record, **extra))
                if previous is not None and previous != ind.state_file:
                    previous.unlink(missing_ok=True)  # the journal now points at the newer state
                return record
        self._journal(ind.journal_line(record, **extra))
        return record

    def _replayed(self, ind: Individual, epochs: int) -> EvaluationRecord | None:
        line = self.replay.get(ind.id, epochs, ind.genome.canonical_hash())
        if line is None:
            return None
        later = self.replay.highest.get(ind.id, epochs) > epochs
        if line["event"] == "evaluated" and "weights" in line and not later:
            path = inside(self.rundir.path, line["weights"])
            try:  # the state this individual goes on from (or is a parent with)
                if path is None:
                    raise StateFileError(f"{line['weights']} leads outside the run")
                ind.state = load_state(path, line.get("sha256"))[0]
            except StateFileError as exc:  # lost or damaged: train it again (deterministically)
                self.progress.warn(f"the journaled training state of individual {ind.id} after "
                                   f"{epochs} epochs cannot be used ({exc}); training it again")
                return None
            ind.state_file, ind.state_sha256 = path, line.get("sha256")
        ind.seconds = float(line.get("seconds", ind.seconds))
        return EvaluationRecord.from_dict(line)

    def _count(self, ind: Individual) -> None:
        self.evaluations += 1
        self.counted.add(ind.id)
        self.progress.advance()

    def _journal(self, line: dict[str, Any]) -> None:
        if line.get("event") in ("evaluated", "failed"):
            self.started.add(line["id"])
        if self.rundir is not None:
            self.rundir.append(line)

    def _tell(self, batch: list[Individual]) -> None:
        """Hand the finished evaluations to every operator; keep their states with the run."""
        results = [(ind.genome, ind.record) for ind in batch if ind.record is not None]
        for op in self.ops.values():
            op.tell(results)
        if self.rundir is not None:
            self.rundir.write_json("operators.json", {n: op.state() for n, op in self.ops.items()})

    # ------------------------------------------------------------------ surviving
    def _survive(self, pool: list[Individual], generation: int) -> list[Individual]:
        if not pool:
            raise RuntimeError("every individual of the first generation failed; see the journal")
        F = self._matrix(pool)
        keep = self.selection.survivors(F, np.array([p.id for p in pool]), self.c.search.population,
                                        self._rng("survive", generation))
        population = [pool[i] for i in keep]
        front = self.front()
        summary = {"event": "generation", "generation": generation, "evaluations": self.evaluations,
                   "population": [p.id for p in population], "front": [f.id for f in front]}
        self.history.append(summary)
        if generation not in self.replay.generations:
            self._event(summary)
        self._write_front(front)
        best = {k: (min if d == "min" else max)(f.record.objectives[k] for f in front)
                for k, d in self.r.directions.items()}
        shown = ", ".join(f"{k} {v:.4g}" for k, v in best.items())
        self.progress.status(f"generation {generation}/{self.generations}: front of "
                             f"{len(front)}, best {shown}")
        self._checkpoint(generation, population)
        return population

    # ------------------------------------------------------------------ checkpoints
    def _checkpoint(self, generation: int, population: list[Individual]) -> None:
        """The generation's end: population, every individual, states and RNGs, weights."""
        if self.rundir is None:
            return
        doc = {"generation": generation, "population": [p.id for p in population],
               "individuals": [ind.to_dict() for ind in self.individuals]}
        state = {
            "format": 1, "generation": generation, "generations": self.generations,
            "next_id": self.next_id, "evaluations": self.evaluations, "seen": sorted(self.seen),
            "history": self.history, "operators": {n: op.state() for n, op in self.ops.items()},
            "random": _random_states(), "config": self.c.to_dict(),
            "preprocessing": self.r.task.preprocessing.to_dict()
            if self.r.task.preprocessing is not None else None,
        }
        weights = {}
        for p in population:  # from memory, or from disk checked against the journaled hash
            if p.state is not None:
                weights[p.id] = p.state
            elif p.state_file is not None:
                weights[p.id] = load_state(p.state_file, p.state_sha256)[0]
        checkpoint.write(self.rundir.path, generation, doc, state, weights,
                         keep=self.c.checkpoints.keep)
        alive = {p.id for p in population}
        for ind in self.individuals:  # on disk now; only parents-to-be stay in memory
            if ind.id not in alive and ind.state_file is not None:
                ind.state = None

    def _restore(self, start: checkpoint.Checkpoint) -> list[Individual]:
        """Take up a run from its checkpoint; returns the population."""
        state, doc = start.state, start.population
        self.individuals = [Individual.from_dict(d, self.rundir.weights) for d in doc["individuals"]]
        by_id = {ind.id: ind for ind in self.individuals}
        population = [by_id[i] for i in doc["population"]]
        for ind in population:
            if ind.id in start.weights:
                ind.state = start.load_weights(ind.id)
        self.next_id, self.evaluations = int(state["next_id"]), int(state["evaluations"])
        self.seen, self.history = set(state["seen"]), list(state["history"])
        for name, op in self.ops.items():
            op.load_state(state["operators"].get(name, {}))
        _set_random_states(state["random"])
        return population

    def front(self) -> list[Individual]:
        done = [i for i in self.individuals if i.complete]
        if not done:
            return []
        F = self._matrix(done)
        first = self.selection.back.fronts(F)[0]
        return [done[i] for i in sorted(first, key=lambda i: F[i].tolist())]

    def _matrix(self, inds: list[Individual]) -> np.ndarray:
        return minimisation_matrix([i.record for i in inds], self.r.directions)

    def _write_front(self, front: list[Individual]) -> None:
        if self.rundir is None:
            return
        keys = list(self.r.directions)
        reported = [o.key for o in self.r.report]
        rows = [{"id": f.id, "generation": f.generation, "operator": f.operator,
                 **{k: f.record.objectives[k] for k in keys},
                 **{k: f.record.reported.get(k) for k in reported},
                 "params": f.genome.num_params(), "epochs": f.record.epochs,
                 "genome_hash": f.record.genome_hash} for f in front]
        columns = ["id", "generation", "operator", *keys, *reported,
                   *(["params"] if "params" not in keys else []), "epochs", "genome_hash"]
        self.rundir.write_front(columns, rows)

    def _event(self, event: dict[str, Any]) -> None:
        if self.rundir is not None:
            self.rundir.append(event)

    # ------------------------------------------------------------------ randomness
    def _rng(self, *purpose: Any) -> np.random.Generator:
        return np.random.default_rng([self.c.seed, *(_key(p) for p in purpose)])

    def _seed(self, *purpose: Any) -> int:
        return int(self._rng(*purpose).integers(2**31))


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S")


def _random_states() -> dict[str, Any]:
    """Python's, NumPy's and torch's global generators (the engine itself draws from
    generators derived from the seed, but library code may use the global ones)."""
    version, internal, gauss = random.getstate()
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    return {"python": [version, list(internal), gauss],
            "numpy": [kind, keys.tolist(), int(pos), int(has_gauss), float(cached)],
            "torch": base64.b64encode(torch.get_rng_state().numpy().tobytes()).decode()}


def _set_random_states(states: dict[str, Any]) -> None:
    version, internal, gauss = states["python"]
    random.setstate((version, tuple(internal), gauss))
    kind, keys, pos, has_gauss, cached = states["numpy"]
    np.random.set_state((kind, np.array(keys, dtype=np.uint32), pos, has_gauss, cached))
    raw = np.frombuffer(base64.b64decode(states["torch"]), dtype=np.uint8).copy()
    torch.set_rng_state(torch.from_numpy(raw))


def _key(value: Any) -> int:
    """A stable non-negative int for a seed component (strings hashed, not Python's hash())."""
    if isinstance(value, (int, np.integer)) and value >= 0:
        return int(value)
    return int.from_bytes(hashlib.sha256(str(value).encode()).digest()[:8], "little")
