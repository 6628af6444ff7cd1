"""The Python API as a first-class way in (issue 15): ``evonas.run`` writes a run directory and
shows progress as the CLI does, ``evonas.load`` gives the view ``front``/``show`` use, with
``to_dataframe()``, and TensorBoard scalars are written when a config asks for them."""

from __future__ import annotations

import importlib.util
import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import evonas
from evonas.cli import main
from evonas.config import ConfigError, parse
from evonas.runview import RunView, hypervolume
from evonas.tensorboard import Scalars
from tests.evonas.runs import TINY

# cheap objectives only: nothing trains, a run takes a moment
CHEAP = {"name": "cheap", "seed": 2, "task": {"dataset": "digits", "fraction": 0.2},
         "space": {"kind": "chain", "channels": [4, 8], "max_layers": 3},
         "search": {"population": 3, "offspring": 3, "generations": 1, "operators": {"mutate": 1}},
         "objectives": [{"name": "params"}, {"name": "flops"}], "dispatch": {"backend": "inline"}}


def test_run_writes_the_clis_run_directory_by_default_and_shows_progress(tmp_path, monkeypatch,
                                                                         capsys):
    monkeypatch.chdir(tmp_path)
    result = evonas.run(CHEAP)
    assert result.run_dir == Path("runs") / "out" / "cheap"
    assert (tmp_path / "runs" / "out" / "cheap" / "journal.jsonl").is_file()
    out = capsys.readouterr().out
    assert "runs/out/cheap" in out and "generation 1/1" in out
    view = evonas.load(result.run_dir)  # what it wrote is what front/show read
    assert sorted(e.id for e in view.front()) == sorted(f.id for f in result.front)


def test_run_dir_none_keeps_a_run_in_memory_and_quiet_silences_it(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    result = evonas.run(CHEAP, run_dir=None, quiet=True)
    assert result.run_dir is None and result.front
    assert list(tmp_path.iterdir()) == []
    assert capsys.readouterr().out == ""


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny run with training, early ranking (so some are pruned) and test accuracy."""
    run = tmp_path_factory.mktemp("api") / "run"
    evonas.run(TINY, run_dir=run, quiet=True)
    return run


def test_to_dataframe_has_a_row_per_individual_with_the_front_flagged(trained):
    df = evonas.load(trained).to_dataframe()
    out = CliRunner().invoke(main, ["front", str(trained), "--format", "json"])
    assert out.exit_code == 0, out.output
    front = {row["id"]: row for row in json.loads(out.output)}
    journaled = {line["id"] for line in map(json.loads, (trained / "journal.jsonl").read_text()
                                            .splitlines()) if line["event"] in ("evaluated", "failed")}
    assert sorted(df["id"]) == sorted(journaled)
    assert list(df.columns) == ["id", "generation", "operator", "parents", "status", "reason",
                                "val_error", "params", "test_accuracy", "epochs", "seconds",
                                "in_front", "genome_hash"]
    assert set(df.loc[df["in_front"], "id"]) == set(front)
    assert {"complete", "pruned"} <= set(df["status"])
    for row in df[df["in_front"]].itertuples():
        want = front[row.id]
        assert (row.generation, row.operator, row.genome_hash) == (
            want["generation"], want["operator"], want["genome_hash"])
        assert row.val_error == want["objectives"]["val_error"]
        assert row.params == want["params"] == want["objectives"]["params"]
        assert isinstance(row.params, (int, np.integer))  # a count, not 33084.0
        assert row.test_accuracy == want["test_accuracy"] and row.epochs == want["epochs"]
    assert all(set(p) <= set(df["id"]) for p in df["parents"])  # individuals of the run
    assert (df.loc[df["generation"] > 0, "parents"].map(len) > 0).any()
    pruned = df[df["status"] == "pruned"]
    assert (pruned["epochs"] < TINY["training"]["epochs"]).all()


def test_to_dataframe_without_pandas_says_how_to_get_it(trained, monkeypatch):
    view = RunView.load(trained)
    monkeypatch.setitem(sys.modules, "pandas", None)  # import pandas now raises ImportError
    with pytest.raises(ImportError, match="pip install pandas"):
        view.to_dataframe()


def test_tensorboard_scalars_are_read_back_per_generation(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    with Scalars(tmp_path) as scalars:
        scalars.generation(0, hypervolume=0.5, best={"val_error": 0.3, "params": 1200.0},
                           elapsed=4.0)
        scalars.generation(1, hypervolume=0.75, best={"val_error": 0.25, "params": 900.0},
                           elapsed=9.5)
    events = EventAccumulator(str(tmp_path / "tensorboard"))
    events.Reload()
    assert set(events.Tags()["scalars"]) == {"hypervolume", "best/val_error", "best/params",
                                             "elapsed_s"}

    def series(tag):
        return [(e.step, e.value) for e in events.Scalars(tag)]

    assert series("hypervolume") == [(0, 0.5), (1, 0.75)]
    assert series("best/params") == [(0, 1200.0), (1, 900.0)]
    assert [s for s, _ in series("best/val_error")] == [0, 1]
    assert series("best/val_error")[1][1] == pytest.approx(0.25)
    assert series("elapsed_s") == [(0, 4.0), (1, 9.5)]


def test_hypervolume_of_the_last_generation_matches_the_views(trained):
    view = RunView.load(trained)
    last, value = view.hypervolumes()[-1]
    members = [view.entries[i] for i in view.generations[last]["front"]]
    assert hypervolume(members, view.complete, view.directions) == value
    assert 0 < value <= 1.1 ** 2 and math.isfinite(value)
    assert hypervolume([], view.complete, view.directions) == 0.0


def test_the_logging_section_asks_for_tensorboard(monkeypatch):
    plain = parse(CHEAP)
    assert "logging" not in plain.to_dict()  # runs written before it existed compare equal
    asked = parse({**CHEAP, "logging": {"tensorboard": True}})
    assert asked.logging.tensorboard and asked.to_dict()["logging"] == {"tensorboard": True}
    with pytest.raises(ConfigError) as info:
        parse({**CHEAP, "logging": {"tensorbord": True}})
    assert "logging.tensorbord" in dict(info.value.issues)

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "tensorboard" else real(name, *a))
    with pytest.raises(ConfigError) as info:
        parse({**CHEAP, "logging": {"tensorboard": True}})
    assert dict(info.value.issues) == {
        "logging.tensorboard": "TensorBoard scalars need the tensorboard package: "
                               "pip install tensorboard"}
    parse(CHEAP)  # not asked for: no need of it


def test_a_run_that_asks_for_tensorboard_writes_a_point_per_generation(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    config = {**CHEAP, "search": {**CHEAP["search"], "generations": 3},
              "logging": {"tensorboard": True}}
    result = evonas.run(config, run_dir=tmp_path / "run", quiet=True)
    events = EventAccumulator(str(tmp_path / "run" / "tensorboard"))
    events.Reload()
    hv = [(e.step, e.value) for e in events.Scalars("hypervolume")]
    assert [step for step, _ in hv] == [0, 1, 2, 3]
    values = [v for _, v in hv]
    assert values == sorted(values) and values[0] > 0  # the front only improves on gen 0's scale
    best_params = events.Scalars("best/params")[-1].value
    assert best_params == min(f.record.objectives["params"] for f in result.front)
