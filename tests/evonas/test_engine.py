"""The generation loop on a tiny synthetic task: every back-end and selection mode runs, the run
directory holds what it should, and failures and interruptions never lose finished work."""

import csv
import json

import pytest
import yaml

import evonas
from evonas import engine
from evonas.config import parse
from objectives import EvalState, EvaluationRecord


def tiny(**search) -> dict:
    return {
        "name": "tiny", "seed": 0,
        "task": {"dataset": "synthetic", "input_shape": [1, 8, 8], "num_classes": 3, "samples": 120},
        "space": {"kind": "multibranch", "channels": [4, 8], "max_blocks": 2},
        "search": {"population": 4, "offspring": 3, "generations": 2,
                   "operators": {"deepen": 1, "widen": 1, "mutate": 1, "random": 1}, **search},
        "objectives": [{"name": "val_error"}, {"name": "params"}],
        "training": {"epochs": 2, "batch_size": 32, "early_ranking": {"rungs": [1, 2], "keep": 0.5},
                     "repair_steps": 5},
        "dispatch": {"backend": "inline"},  # in-process: fast, and monkeypatches reach it
    }


MODES = ["nsga2", "nsga3", "spea2", "sms-emoa", "lemonade", "aging"]


@pytest.mark.parametrize("backend", ["deap", "pymoo"])
@pytest.mark.parametrize("selection", MODES)
def test_every_backend_and_selection_mode_runs(backend, selection, tmp_path):
    result = evonas.run(tiny(backend=backend, selection=selection), run_dir=tmp_path / "run")
    assert result.front and all(i.complete for i in result.front)
    assert all(i.complete for i in result.population)
    if selection != "lemonade":
        assert len(result.population) <= 4
    journal = [json.loads(line) for line in (tmp_path / "run/journal.jsonl").read_text().splitlines()]
    evaluations = [j for j in journal if j["event"] in ("evaluated", "failed")]
    keys = [(j["id"], j["rung_epochs"]) for j in evaluations]
    assert len(keys) == len(set(keys))  # one line per finished rung of training or failure
    ends = {j["id"] for j in evaluations if j["rung_final"] or j["event"] == "failed"}
    ends |= {j["id"] for j in journal if j["event"] == "pruned"}
    assert ends == {i.id for i in result.individuals}  # every individual's schedule ended
    assert [j["generation"] for j in journal if j["event"] == "generation"] == [0, 1, 2]
    trained = [j for j in evaluations if j["event"] == "evaluated"]
    # seconds: the individual's evaluation time so far, this rung included (it never lags)
    assert all(j["seconds"] > 0 for j in trained), [(j["id"], j["rung_epochs"]) for j in trained
                                                    if not j["seconds"] > 0]
    by_id: dict[int, list[float]] = {}
    for j in trained:
        by_id.setdefault(j["id"], []).append(j["seconds"])
    assert all(s == sorted(s) for s in by_id.values())


def test_the_run_directory_holds_config_journal_and_front(tmp_path):
    config = parse(tiny())
    result = evonas.run(config, run_dir=tmp_path / "run")
    assert yaml.safe_load((tmp_path / "run/config.yaml").read_text()) == config.to_dict()
    lines = [json.loads(line) for line in (tmp_path / "run/journal.jsonl").read_text().splitlines()]
    evaluated = [j for j in lines if j["event"] == "evaluated"]
    for field in ("id", "generation", "genome_hash", "objectives", "epochs", "parents", "operator",
                  "seconds", "state", "genome"):
        assert all(field in j for j in evaluated), field
    assert {j["state"] for j in evaluated} <= {"complete", "pruned"}
    assert all(j["operator"] == "initial" and j["epochs"] == 2 for j in evaluated if j["generation"] == 0)
    children = [j for j in evaluated if j["generation"] > 0]
    assert children and all(j["operator"] in ("deepen", "widen", "mutate", "random") for j in children)
    assert all(j["parents"] for j in children if j["operator"] != "random")
    with open(tmp_path / "run/front.csv") as f:
        rows = list(csv.DictReader(f))
    assert sorted(int(r["id"]) for r in rows) == sorted(i.id for i in result.front)
    assert {"val_error", "params", "test_accuracy", "genome_hash"} <= set(rows[0])


def test_runs_are_reproducible_for_a_seed(tmp_path):
    a = evonas.run(tiny(), run_dir=tmp_path / "a")
    b = evonas.run(tiny(), run_dir=tmp_path / "b")
    key = lambda r: [(i.id, i.genome.canonical_hash(), None if i.record is None else dict(i.record.objectives))  # noqa: E731
                     for i in r.individuals]
    assert key(a) == key(b)


def test_max_evaluations_caps_the_run():
    result = evonas.run(tiny(max_evaluations=6, generations=10), run_dir=None)
    assert sum(i.record is not None for i in result.individuals) == 6


def test_a_failing_candidate_never_stops_the_run(tmp_path, monkeypatch):
    import objectives

    real = objectives.evaluate

    def flaky(genome, *args, **kwargs):
        if kwargs["seed"] % 3 == 0:  # about a third of the evaluations break
            ev = real(genome, *args, **kwargs)
            return type(ev)(EvaluationRecord(ev.record.genome_hash, EvalState.FAILED,
                                             reason="injected failure"), None)
        return real(genome, *args, **kwargs)

    monkeypatch.setattr(objectives, "evaluate", flaky)
    result = evonas.run(tiny(), run_dir=tmp_path / "run")
    failed = [i for i in result.individuals if i.record is not None and i.record.state is EvalState.FAILED]
    assert failed and result.front and not {i.id for i in failed} & {i.id for i in result.front}
    journal = (tmp_path / "run/journal.jsonl").read_text()
    assert journal.count('"event":"failed"') == len(failed) and "injected failure" in journal


def test_ctrl_c_stops_cleanly_keeping_what_is_done(tmp_path, monkeypatch):
    from evonas.evaluation.jobs import evaluate_job

    calls = {"n": 0}

    def interrupted(job, device):  # the 7th evaluation is interrupted (one worker: in-process)
        calls["n"] += 1
        if calls["n"] == 7:
            raise KeyboardInterrupt
        return evaluate_job(job, device)

    result = engine.run(parse(tiny()), run_dir=tmp_path / "run", job=interrupted)
    assert result.stopped and result.front
    lines = (tmp_path / "run/journal.jsonl").read_text().splitlines()
    assert json.loads(lines[-1])["event"] == "stopped"
    assert (tmp_path / "run/front.csv").exists()


def test_an_existing_run_is_not_overwritten(tmp_path):
    from evonas.store.rundir import RunDirError

    evonas.run(tiny(max_evaluations=4), run_dir=tmp_path / "run")
    with pytest.raises(RunDirError, match="already holds a run"):
        evonas.run(tiny(max_evaluations=4), run_dir=tmp_path / "run")
    evonas.run(tiny(max_evaluations=4), run_dir=tmp_path / "run", force=True)


def test_tabular_only_runs_need_no_training(tmp_path):
    from tests.nb201 import synthetic_table

    table = synthetic_table(tmp_path / "nb201.csv", size=True)
    config = {"name": "tab", "task": {"dataset": "synthetic", "input_shape": [3, 32, 32],
                                      "num_classes": 10, "samples": 100},
              "space": {"kind": "nb201"},
              "search": {"population": 10, "offspring": 10, "generations": 3, "operators": {"random": 1}},
              "objectives": [{"name": "tabular", "path": str(table), "value_column": "acc"},
                             {"name": "tabular", "path": str(table), "value_column": "size",
                              "direction": "min"}]}
    result = evonas.run(config, run_dir=None)
    assert len(result.individuals) == 40 and all(i.record.epochs == 0 for i in result.individuals)
    assert result.front


