"""`evonas runs [DIR]`: every run under a folder with its status (running, stopped, finished,
damaged), generations, evaluations, best values, hypervolume and last update, read only."""

from __future__ import annotations

import json
import shutil

import pytest
from click.testing import CliRunner

from evonas.cli import main
from evonas.listing import find_runs, is_running, summarise
from evonas.runview import RunView
from evonas.store.lock import RunLock

from tests.evonas.runs import TINY


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    from evonas.engine import run

    root = tmp_path_factory.mktemp("listing")
    run(TINY, run_dir=root / "runs" / "tiny")
    return root / "runs" / "tiny"


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def copy(run, where):
    shutil.copytree(run, where)
    return where


def test_a_finished_run_is_listed_with_what_its_view_says(finished):
    summary = summarise(finished)
    view = RunView.load(finished)
    assert summary.status == "finished" and summary.reason is None
    assert summary.generations == summary.planned == TINY["search"]["generations"]
    assert summary.evaluations == len(view.entries) > 0
    assert summary.best == {"val_error": min(e.objectives["val_error"] for e in view.complete),
                            "params": min(e.objectives["params"] for e in view.complete)}
    assert summary.hypervolume == pytest.approx(view.hypervolumes()[-1][1])
    assert summary.updated is not None


def test_stopped_running_and_damaged_runs_are_told_apart(finished, tmp_path):
    root = tmp_path / "out"
    root.mkdir()
    stopped = copy(finished, root / "stopped")
    journal = stopped / "journal.jsonl"
    lines = journal.read_bytes().splitlines(keepends=True)
    assert b'"event":"finished"' in lines[-1]
    journal.write_bytes(b"".join(lines[:-1]))  # as if killed before its end
    running = copy(finished, root / "nested" / "running")
    damaged = copy(finished, root / "damaged")
    lines = (damaged / "journal.jsonl").read_bytes().splitlines(keepends=True)
    lines[3] = lines[3].replace(b'"event":"evaluated"', b'"event":"evaluatex"')
    (damaged / "journal.jsonl").write_bytes(b"".join(lines))
    unreadable = root / "unreadable"
    unreadable.mkdir()
    marker = tmp_path / "executed"
    (unreadable / "config.yaml").write_text(f"!!python/object/apply:os.system ['touch {marker}']\n")
    (unreadable / "journal.jsonl").write_text("")  # it looks like a run: listed, as damaged
    (root / "not-a-run").mkdir()
    (root / "not-a-run" / "notes.txt").write_text("hello")

    with RunLock(running):
        assert is_running(running)
        result = invoke("runs", root, "--format", "json")
        table = CliRunner(env={"COLUMNS": "200"}).invoke(main, ["runs", str(root)])
    assert not is_running(running)
    assert result.exit_code == 0, result.output
    rows = {r["name"]: r for r in json.loads(result.output)}
    assert sorted(rows) == ["damaged", "running", "stopped", "unreadable"]
    assert rows["stopped"]["status"] == "stopped"
    assert rows["running"]["status"] == "running" and rows["running"]["path"].endswith("nested/running")
    assert rows["damaged"]["status"] == "damaged" and "line 4" in rows["damaged"]["reason"]
    assert rows["damaged"]["evaluations"] > 0  # what can be read is still listed
    assert rows["unreadable"]["status"] == "damaged" and "config.yaml" in rows["unreadable"]["reason"]
    assert not marker.exists()  # nothing of a run is executed
    RunLock(running).acquire().release()  # the probe left the lock free
    assert (finished / "journal.jsonl").read_bytes().count(b'"event":"finished"') == 1
    assert table.exit_code == 0 and "Traceback" not in table.output, table.output
    for word in ("stopped", "running ", "damaged", "nested/running", "line 4", "config.yaml"):
        assert word in table.output, table.output


def test_a_run_folder_itself_is_listed_alone(finished):
    assert find_runs(finished) == [finished]
    result = invoke("runs", finished, "--format", "json")
    assert result.exit_code == 0, result.output
    (row,) = json.loads(result.output)
    assert row["name"] == "tiny" and row["status"] == "finished"
    assert find_runs(finished.parent) == [finished]


def test_a_missing_folder_exits_2_and_an_empty_one_says_so(tmp_path):
    missing = invoke("runs", tmp_path / "nothing")
    assert missing.exit_code == 2 and "is not a folder" in missing.output
    assert "Traceback" not in missing.output
    empty = invoke("runs", tmp_path)
    assert empty.exit_code == 0 and "no runs under" in empty.output
    assert json.loads(invoke("runs", tmp_path, "--format", "json").output) == []


def test_another_tools_config_yaml_hides_no_runs_below_it(finished, tmp_path):
    """Below the folder asked for, a run is what only evonas writes (a journal, checkpoints):
    a project folder holding its own config.yaml is no run, and the runs under it are found."""
    project = tmp_path / "project"
    project.mkdir()
    (project / "config.yaml").write_text("lr: 0.1\n")
    nested = copy(finished, project / "runs" / "a")
    assert find_runs(tmp_path) == [nested]
    assert find_runs(project) == [project]  # asked for by name: read as a run (damaged)
