"""Ask and tell from Python: a user evaluates trials themselves, a kill between an ask and its
tell loses nothing told, and a learning proposer is told everything and keeps its tensor state
across a kill."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import operators
from evonas import Search, engine
from evonas.config import parse
from tests.nb201 import synthetic_table

ROOT = Path(__file__).resolve().parents[2]

USER = {  # the user reports val_error themselves; params is screened by the engine
    "name": "asktell", "seed": 5,
    "task": {"dataset": "digits", "fraction": 0.3},
    "space": {"kind": "multibranch", "channels": [4, 8], "max_blocks": 2},
    "search": {"population": 4, "offspring": 3, "generations": 4,
               "operators": {"deepen": 1, "widen": 1, "mutate": 1, "random": 0.5}},
    "objectives": [{"name": "val_error"}, {"name": "params"}],
    "training": {"epochs": 2},
    "dispatch": {"backend": "inline"},
}


def user_objective(genome) -> dict[str, float]:
    """A made-up validation error: deterministic in the architecture, no training."""
    h = int(hashlib.sha256(genome.canonical_hash().encode()).hexdigest()[:8], 16)
    return {"val_error": round(0.05 + 0.5 * (h % 1000) / 1000 + 1e-7 * genome.num_params(), 6)}


def drive(search: Search, kill_at: int | None = None) -> list[tuple[int, int]]:
    told = []
    while trials := search.ask():
        for trial in trials:
            if kill_at is not None and len(told) == kill_at:
                import os
                import signal

                os.kill(os.getpid(), signal.SIGKILL)  # asked, not told
            search.tell(trial.id, user_objective(trial.genome))
            told.append((trial.id, trial.fidelity))
    return told


def front(result) -> list[tuple[int, dict]]:
    return [(f.id, dict(f.record.objectives)) for f in result.front]


def test_a_user_drives_a_search_with_their_own_objective(tmp_path):
    with Search(USER, run_dir=tmp_path / "run") as search:
        first = search.ask()
        assert [t.id for t in first] == [0, 1, 2, 3] and search.ask() == first  # until told
        assert all(t.fidelity == 2 and t.treatment == "fresh" and t.weights is None for t in first)
        with pytest.raises(ValueError, match="no value for objective 'val_error'"):
            search.tell(first[0].id, {"accuracy": 0.5})
        told = drive(search)
        result = search.result()
    assert told[:4] == [(t.id, t.fidelity) for t in first]
    assert len(told) == len(set(told)) == len(result.individuals)
    for ind in result.individuals:
        assert ind.record.objectives["val_error"] == user_objective(ind.genome)["val_error"]
        assert ind.record.objectives["params"] == ind.genome.num_params()
    exact = [i for i in result.individuals if i.operator in ("deepen", "widen")]
    # the user told no training states, so there was nothing to inherit: children start fresh
    assert exact and all(i.treatment == "fresh" and i.weights is None for i in exact)
    lines = [json.loads(x) for x in (tmp_path / "run/journal.jsonl").read_text().splitlines()]
    assert sum(e["event"] == "evaluated" for e in lines) == len(result.individuals)
    assert lines[-1]["event"] == "finished"
    accounts = [e for e in lines if e["event"] == "operators"][-1]["operators"]
    children = [i for i in result.individuals if i.generation > 0]
    assert sum(a["evaluated"] for a in accounts.values()) == len(children)


@pytest.mark.parametrize("kill_at", [5, 13])
def test_a_kill_between_ask_and_tell_loses_nothing_told(tmp_path, kill_at):
    with Search(USER, run_dir=tmp_path / "reference") as search:
        drive(search)
        reference = search.result()
    run = tmp_path / "run"
    script = (f"import json, sys; sys.path.insert(0, {str(ROOT)!r})\n"
              f"from tests.evonas.test_asktell import USER, drive\n"
              f"from evonas import Search\n"
              f"drive(Search(USER, run_dir={str(run)!r}), kill_at={kill_at})\n")
    proc = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == -9, proc.stderr[-2000:]
    lines = [json.loads(x) for x in (run / "journal.jsonl").read_text().splitlines()]
    before = {(e["id"], e["rung_epochs"]) for e in lines if e["event"] == "evaluated"}
    assert len(before) == kill_at
    with Search.resume(run) as search:
        after = drive(search)
        result = search.result()
    assert not before & set(after), "a result told before the kill was asked for again"
    assert front(result) == front(reference)
    assert [i.id for i in result.population] == [i.id for i in reference.population]


# ---------------------------------------------------------------- a learning proposer
@pytest.fixture(scope="module")
def toy():
    if "toy" not in operators.names():
        operators.register("toy", "tests.operators.toy:Toy")
    return "toy"


def _table(path: Path) -> Path:
    return synthetic_table(path, size=True)


def _toy_config(table: Path) -> dict:
    return {"name": "toy", "seed": 11,
            "task": {"dataset": "synthetic", "input_shape": [3, 32, 32], "num_classes": 10,
                     "samples": 100},
            "space": {"kind": "nb201"},
            "search": {"population": 6, "offspring": 4, "generations": 7,
                       "operators": {"toy": {"weight": 2, "decay": 0.25}, "random": 1}},
            "objectives": [{"name": "tabular", "path": str(table), "value_column": "acc"},
                           {"name": "tabular", "path": str(table), "value_column": "size",
                            "direction": "min"}]}


def test_tell_reaches_a_learning_proposer_with_ids_operators_and_directions(toy, tmp_path):
    config = _toy_config(_table(tmp_path / "t.csv"))
    with Search(config, run_dir=tmp_path / "run") as search:
        engine.drive(search)
        learner = search.strategy.proposers["toy"]
        result = search.result()
    assert learner.decay == 0.25  # its option, from the config
    assert learner.directions == {"acc": "max", "size": "min"}
    told = {t[0]: t for t in learner.told if t[2] == "evaluated"}
    assert set(told) == {i.id for i in result.individuals}  # every individual, with its id
    assert {told[i.id][1] for i in result.individuals} == {"initial", "toy", "random"}
    assert all(told[i.id][1] == i.operator and told[i.id][3] == i.generation
               for i in result.individuals)


def test_a_proposer_is_told_of_duplicates_and_of_candidates_lemonade_did_not_train(toy, tmp_path):
    config = _toy_config(_table(tmp_path / "t.csv"))
    config["search"] = {**config["search"], "selection": "lemonade", "candidates": 3,
                        "operators": {"toy": 1, "mutate": 1}}
    with Search(config) as search:
        engine.drive(search)
        told = search.strategy.proposers["toy"].told
        accounts = search.strategy.accounts()
        individuals = {i.id for i in search.result().individuals}
    unchosen = [t for t in told if t[2] == "unchosen"]
    assert unchosen and all(t[0] is None for t in unchosen)  # never became individuals
    assert {t[1] for t in unchosen} <= {"toy", "mutate"}
    assert {t[0] for t in told if t[2] == "evaluated"} == individuals
    proposed = sum(a["proposals"] for a in accounts.values())
    duplicates = sum(a["duplicates"] for a in accounts.values())
    assert proposed == duplicates + len(unchosen) + len(individuals) - 6  # 6: the initial ones
    assert sum(t[2] == "duplicate" for t in told) == duplicates


@pytest.mark.parametrize("where", ["propose:4", "tell:5"])
def test_a_learning_proposers_tensor_state_survives_kill_and_resume(toy, tmp_path, where):
    config = _toy_config(_table(tmp_path / "t.csv"))
    with Search(config, run_dir=tmp_path / "reference") as search:
        engine.drive(search)
        reference = search.strategy.proposers["toy"].state()
    (tmp_path / "c.json").write_text(json.dumps(config))
    run = tmp_path / "run"
    script = (f"import json, sys; sys.path.insert(0, {str(ROOT)!r})\n"
              f"import operators, evonas\n"
              f"operators.register('toy', 'tests.operators.toy:Toy')\n"
              f"evonas.run(json.load(open({str(tmp_path / 'c.json')!r})), run_dir={str(run)!r})\n")
    proc = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True,
                          timeout=300, env={**__import__("os").environ, "EVONAS_TOY_DIE": where})
    assert proc.returncode == -9, proc.stderr[-2000:]
    with Search.resume(run) as search:
        engine.drive(search)
        state = search.strategy.proposers["toy"].state()
    assert state[0] == reference[0]
    assert torch.equal(state[1]["memory"], reference[1]["memory"])
    assert parse(config).search.operator_specs()["toy"] == (2.0, {"decay": 0.25})


# ---------------------------------------------------------------- misuse from Python
def test_told_records_are_checked_before_anything_changes(tmp_path):
    from objectives import EvalState, EvaluationRecord

    with Search(USER, run_dir=tmp_path / "run") as search:
        trials = search.ask()
        t = trials[0]
        other = trials[1].genome.canonical_hash()
        mine = t.genome.canonical_hash()
        for bad, message in [
                (EvaluationRecord(other, EvalState.COMPLETE, {"val_error": 0.1}), "is of genome"),
                (EvaluationRecord(mine, EvalState.PENDING), "complete, pruned or failed"),
                (EvaluationRecord(mine, EvalState.COMPLETE, {"val_error": 0.1}, epochs=10**6),
                 "epochs told"),
                (EvaluationRecord(mine, EvalState.COMPLETE, {}, epochs=2), "no value for objective")]:
            with pytest.raises(ValueError, match=message):
                search.tell(t.id, bad)
        assert search.ask() == trials  # nothing was told: the search goes on as before
        nan = search.tell(t.id, EvaluationRecord(mine, EvalState.COMPLETE,
                                                 {"val_error": float("nan")}, epochs=2))
        assert nan.state is EvalState.FAILED  # as for told values
        with pytest.raises(ValueError, match="was not asked for, or was told already"):
            search.tell(t.id, {"val_error": 0.2})
        drive(search)
    with pytest.raises(RuntimeError, match="closed"):  # the lock is released: no more writes
        search.tell(0, {"val_error": 0.2})


@pytest.mark.parametrize("misbehave", ["raise", "edit"])
def test_a_failing_proposer_never_stops_a_run_nor_changes_a_recorded_genome(toy, tmp_path,
                                                                            misbehave, capsys):
    config = _toy_config(_table(tmp_path / "t.csv"))
    config["search"]["operators"] = {"toy": {"weight": 1, "misbehave": misbehave}, "random": 1}
    with Search(config) as search:
        engine.drive(search)
        result = search.result()
    assert search.finished and len(result.history) == 8
    assert "operator 'toy' failed to propose" in capsys.readouterr().err
    assert all(i.record.genome_hash == i.genome.canonical_hash() for i in result.individuals)
    assert {i.operator for i in result.individuals} == {"initial", "random"}


class _Clock:
    def __init__(self, now: float):
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_time_spent_after_the_last_checkpoint_counts_against_max_seconds(tmp_path):
    """A run stopped mid-generation resumes from the generation's start, but the seconds it
    spent after that checkpoint were spent: they count toward ``search.max_seconds``."""
    from evonas.progress import Progress

    config = {**USER, "search": {**USER["search"], "max_seconds": 1000.0}}
    clock = _Clock(100.0)
    search = Search(config, run_dir=tmp_path / "run", progress=Progress(quiet=True, clock=clock))
    told = 0
    with search:
        while told < 6 and (trials := search.ask()):
            for trial in trials[: 6 - told]:
                search.tell(trial.id, user_objective(trial.genome))
                told += 1
                clock.now += 10.0
        search.stop()  # as Ctrl-C does: generation 0 (4 individuals) checkpointed, 2 children told
    assert search.stopped and search.generation == 0
    stopped = json.loads((tmp_path / "run" / "journal.jsonl").read_text().splitlines()[-1])
    assert stopped["event"] == "stopped" and stopped["seconds"] == 60.0
    resumed = Search.resume(tmp_path / "run", progress=Progress(quiet=True, clock=_Clock(5.0)))
    with resumed:
        assert resumed.budget.seconds == 60.0  # not the checkpoint's 30
        assert resumed.budget.left()["seconds"] == 940.0


def test_a_first_generation_that_all_failed_says_why(tmp_path):
    """The error names the failures' reasons (most frequent first), not just "see the journal"."""
    with Search(USER, run_dir=tmp_path / "run") as search:
        with pytest.raises(RuntimeError, match=r"first generation failed \(TimeoutError: "
                                               r"time-out x 3, MemoryError: oom x 1\)"):
            for k, trial in enumerate(search.ask()):  # the last tell ends the generation
                search.tell(trial.id, TimeoutError("time-out") if k else MemoryError("oom"))
