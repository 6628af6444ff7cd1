"""Budgets beside generations and evaluations (wall clock, training epochs, kept across a
resume), the cheap path (nothing built, nothing dispatched when nothing trains), and
checkpoints that write only what changed."""

from __future__ import annotations

import json

import numpy as np

import evonas
from evonas import engine
from genomes import Genome, spaces
from tests.evonas.runs import TINY
from tests.nb201 import synthetic_table


def _epochs(run) -> int:
    """Training epochs spent, from the journal: each rung adds what it trained beyond the last."""
    reached, spent = {}, 0
    for line in (run / "journal.jsonl").read_text().splitlines():
        e = json.loads(line)
        if e["event"] == "evaluated" and e.get("rung_epochs"):
            spent += e["rung_epochs"] - reached.get(e["id"], 0)
            reached[e["id"]] = e["rung_epochs"]
    return spent


def test_the_epoch_budget_stops_a_run_and_a_resume_stays_within_it(tmp_path):
    config = {**TINY, "search": {**TINY["search"], "generations": 20, "max_epochs": 12}}
    result = evonas.run(config, run_dir=tmp_path / "run")
    spent = _epochs(tmp_path / "run")
    # generation 0 trains 3 x 2 epochs; each later one at most 3 + 2 (rungs 1, 2, keep 0.5)
    assert 12 <= spent <= 12 + 5 and len(result.history) < 21
    before = len(result.individuals)
    again = evonas.resume(tmp_path / "run", generations=25)  # the epochs are spent already
    assert len(again.individuals) == before and _epochs(tmp_path / "run") == spent


def test_the_wall_clock_budget_stops_after_the_initial_population(tmp_path):
    config = {**TINY, "search": {**TINY["search"], "generations": 50, "max_seconds": 0.001}}
    result = evonas.run(config, run_dir=tmp_path / "run")
    assert [h["generation"] for h in result.history] == [0]  # generation 0 is always made
    assert not result.stopped and result.front


def _table(path):
    return synthetic_table(path, seed=1)


def test_a_run_with_only_cheap_objectives_builds_nothing_and_dispatches_nothing(tmp_path, monkeypatch):
    config = {"name": "tab", "seed": 2,
              "task": {"dataset": "synthetic", "input_shape": [3, 32, 32], "num_classes": 10,
                       "samples": 100},
              "space": {"kind": "nb201"},
              "search": {"population": 6, "offspring": 2, "generations": 10, "selection": "aging",
                         "tournament": 3, "operators": {"mutate": 1, "random": 0.5}},
              "objectives": [{"name": "tabular", "path": str(_table(tmp_path / "t.csv")),
                              "value_column": "acc"}]}
    built = []
    real = Genome.build
    monkeypatch.setattr(Genome, "build", lambda self, **kw: built.append(1) or real(self, **kw))

    def never(job, device):
        raise AssertionError("a job was dispatched in a run that trains nothing")

    result = engine.run(config, run_dir=tmp_path / "run", job=never)
    assert len(result.individuals) == 26 and not built
    assert {i.operator for i in result.individuals} == {"initial", "mutate", "random"}
    assert all(i.record.epochs == 0 and i.treatment == "fresh" for i in result.individuals)
    # REA's mutation changes one edge op of its parent
    space = spaces.get("nb201", input_shape=(3, 32, 32), num_outputs=10)
    by_id = {i.id: i for i in result.individuals}
    for child in (i for i in result.individuals if i.operator == "mutate"):
        a, b = (space.decode(g) for g in (child.genome, by_id[child.parents[0]].genome))
        assert sum(x != y for x, y in zip(a, b)) == 1
    # incremental checkpoints: each individual is written once, in the chunk of its generation
    chunks = sorted((tmp_path / "run/individuals").glob("gen-*.json"))
    ids = [d["id"] for c in chunks for d in json.loads(c.read_text())["individuals"]]
    assert sorted(ids) == sorted(by_id) and len(ids) == len(set(ids))
    generation = {i.id: i.generation for i in result.individuals}
    for c in chunks:
        doc = json.loads(c.read_text())
        assert {generation[d["id"]] for d in doc["individuals"]} <= {doc["generation"]}


def test_lemonade_keeps_to_max_evaluations_when_candidates_fail_screening(tmp_path):
    space = spaces.get("nb201", input_shape=(3, 32, 32), num_outputs=10)
    rng = np.random.default_rng(3)
    cells = [s for s in space.arch_strings() if rng.random() < 0.6]  # the rest fail their lookup
    table = tmp_path / "t.csv"
    table.write_text("arch,acc,size\n" + "".join(
        f"{s},{rng.uniform(50, 95):.2f},{rng.uniform(0.1, 1.5):.3f}\n" for s in cells))
    for cap in (9, 17, 22):
        config = {"name": "lem", "seed": 4,
                  "task": {"dataset": "synthetic", "input_shape": [3, 32, 32], "num_classes": 10,
                           "samples": 100},
                  "space": {"kind": "nb201"},
                  "search": {"population": 6, "offspring": 4, "generations": 20,
                             "selection": "lemonade", "candidates": 4, "max_evaluations": cap,
                             "operators": {"mutate": 1, "random": 1}},
                  "objectives": [{"name": "tabular", "path": str(table), "value_column": "acc"},
                                 {"name": "tabular", "path": str(table), "value_column": "size",
                                  "direction": "min"}]}
        result = evonas.run(config, run_dir=None)
        assert len(result.individuals) == cap, cap
        assert any(i.record.state.value == "failed" for i in result.individuals)
