"""The built-in quick start, run once through the command line: a Pareto front of at least 3
networks with the best validation accuracy on digits at least 0.95 and test accuracy beside it,
a hypervolume that grows over the generations, and exports that take raw digits images. (How
long it takes is measured in benchmarks/, not asserted here: the suite runs on busy machines.)"""

import csv
import json
import shutil

import numpy as np
import pytest
from click.testing import CliRunner
from pymoo.indicators.hv import HV

from evonas.cli import main

REFERENCE = np.array([1.0, 1.0])  # (validation error, parameters / PARAMS_SCALE), fixed
PARAMS_SCALE = 200_000


@pytest.fixture(scope="module")
def quickstart(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("quickstart") / "run"
    result = CliRunner().invoke(main, ["run", "--run-dir", str(run_dir)])
    return result, run_dir


def test_the_quick_start_finds_a_good_front_with_test_accuracy(quickstart):
    result, run_dir = quickstart
    assert result.exit_code == 0, result.output
    with open(run_dir / "front.csv") as f:
        front = list(csv.DictReader(f))
    assert len(front) >= 3
    assert max(1 - float(row["val_error"]) for row in front) >= 0.95
    assert all(0 <= float(row["test_accuracy"]) <= 1 for row in front)
    assert "Pareto front" in result.output and "test acc" in result.output
    assert "generation 6/6" in result.output  # plain progress lines when not on a terminal


def test_the_quick_starts_hypervolume_grows(quickstart):
    _, run_dir = quickstart
    journal = [json.loads(line) for line in (run_dir / "journal.jsonl").read_text().splitlines()]
    values = {j["id"]: j["objectives"] for j in journal if j["event"] == "evaluated"}
    generations = [j for j in journal if j["event"] == "generation"]

    def hypervolume(ids):
        points = np.array([[values[i]["val_error"], values[i]["params"] / PARAMS_SCALE] for i in ids])
        return HV(ref_point=REFERENCE)(points)

    first, last = hypervolume(generations[0]["front"]), hypervolume(generations[-1]["front"])
    assert generations[-1]["generation"] == 6 and last > first, (first, last)


def test_front_show_and_export_work_on_the_quick_starts_run(quickstart, tmp_path):
    import torch

    from evonas.export import load_model
    from evonas.runview import RunView

    from tests.evonas.test_inspect import not_blank

    _, run_dir = quickstart
    runner = CliRunner()
    front = runner.invoke(main, ["front", str(run_dir), "--format", "json", "--plot",
                                 str(tmp_path / "front.png")])
    assert front.exit_code == 0, front.output
    rows = json.loads(front.output[: front.output.rindex("]") + 1])
    assert len(rows) >= 3 and not_blank(tmp_path / "front.png")
    best = rows[0]["id"]
    graph = ["--graph", str(tmp_path / "g.png")] if shutil.which("dot") else []  # needs Graphviz
    show = runner.invoke(main, ["show", str(run_dir), str(best), *graph])
    assert show.exit_code == 0 and "lineage" in show.output
    assert not graph or not_blank(tmp_path / "g.png")
    view = RunView.load(run_dir)
    entry = view.get(best)
    from objectives import tasks

    task = tasks.get(view.config.task.dataset, seed=view.config.seed, **view.config.task.options())
    with torch.no_grad():  # the model read from the run is the one it trained and tested
        expected = load_model(view, entry)(task.test.x)
    accuracy = int((expected.argmax(1) == task.test.y).sum()) / len(task.test.y)
    assert accuracy == pytest.approx(entry.reported["test_accuracy"], abs=1e-9)
    raw = tasks.get("digits", seed=view.config.seed, standardize=False).test  # pixel values 0..16
    assert float(raw.x.max()) == 16.0
    for suffix in (".pt", ".onnx"):
        target = tmp_path / f"best{suffix}"
        exported = runner.invoke(main, ["export", str(run_dir), str(best), "--to", str(target)])
        assert exported.exit_code == 0, exported.output
        if suffix == ".pt":
            with torch.no_grad():
                logits = torch.jit.load(str(target))(raw.x)
        else:
            ort = pytest.importorskip("onnxruntime")
            session = ort.InferenceSession(str(target), providers=["CPUExecutionProvider"])
            logits = torch.from_numpy(session.run(None, {"input": raw.x.numpy()})[0])
        # raw images in, the journaled test accuracy out, to the last digit
        assert int((logits.argmax(1) == raw.y).sum()) / len(raw.y) == entry.reported["test_accuracy"]
        assert torch.allclose(logits, expected, atol=1e-5), suffix
