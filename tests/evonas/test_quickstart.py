"""The built-in quick start, run once through the command line: under 5 minutes on this 2-core
machine, a Pareto front of at least 3 networks with the best validation accuracy on digits at
least 0.95 and test accuracy beside it, and a hypervolume that grows over the generations."""

import csv
import json
import time

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
    start = time.perf_counter()
    result = CliRunner().invoke(main, ["run", "--run-dir", str(run_dir)])
    return result, time.perf_counter() - start, run_dir


def test_the_quick_start_finishes_in_time_with_a_good_front(quickstart):
    result, seconds, run_dir = quickstart
    assert result.exit_code == 0, result.output
    assert seconds < 300, f"the quick start took {seconds:.0f} s"
    with open(run_dir / "front.csv") as f:
        front = list(csv.DictReader(f))
    assert len(front) >= 3
    assert max(1 - float(row["val_error"]) for row in front) >= 0.95
    assert all(0 <= float(row["test_accuracy"]) <= 1 for row in front)
    assert "Pareto front" in result.output and "test acc" in result.output
    assert "generation 6/6" in result.output  # plain progress lines when not on a terminal


def test_the_quick_starts_hypervolume_grows(quickstart):
    _, _, run_dir = quickstart
    journal = [json.loads(line) for line in (run_dir / "journal.jsonl").read_text().splitlines()]
    values = {j["id"]: j["objectives"] for j in journal if j["event"] == "evaluated"}
    generations = [j for j in journal if j["event"] == "generation"]

    def hypervolume(ids):
        points = np.array([[values[i]["val_error"], values[i]["params"] / PARAMS_SCALE] for i in ids])
        return HV(ref_point=REFERENCE)(points)

    first, last = hypervolume(generations[0]["front"]), hypervolume(generations[-1]["front"])
    assert generations[-1]["generation"] == 6 and last > first, (first, last)
