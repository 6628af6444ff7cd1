"""Checkpoints and exact resume: runs killed at random moments (also mid-write) resume to the
uninterrupted result without redoing finished work; damaged checkpoints are detected and skipped;
pickle payloads are never executed."""

from __future__ import annotations

import json
import os
import pickle
import shutil
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import yaml

from evonas.store import checkpoint
from evonas import engine
from evonas.config import ConfigError
from evonas.progress import Progress

from tests.evonas.runs import SMALL, WORKERS, cli as _cli, lines as _lines, outcome as _outcome, small_run


def _kill_and_resume(root: Path, case: int, moment: dict) -> tuple[dict, str]:
    run = root / f"case{case}"
    marker = root / f"case{case}.marker"
    env = {"EVONAS_TEST_PAUSE": moment.get("pause", ""), "EVONAS_TEST_MARKER": str(marker)}
    workers = WORKERS if case % 2 == 0 else ()  # half the runs on two worker processes
    proc = _cli("run", str(root / "small.yaml"), "--run-dir", str(run), "--quiet", *workers, env=env)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and proc.poll() is None:
        if ("pause" in moment and marker.exists()) or \
                ("lines" in moment and len(_lines(run)) >= moment["lines"]):
            time.sleep(moment.get("delay", 0.0))
            break
        time.sleep(0.01)
    assert proc.poll() is None, f"case {case}: the run ended before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    killed_at = len(_lines(run))
    resumed = _cli("resume", str(run), "--quiet")
    out, _ = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, out
    return _outcome(run), f"killed after {killed_at} journal lines ({moment}): {out[-300:]}"


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    root = tmp_path_factory.mktemp("resume")
    return (root, *small_run(root))


def test_killed_runs_resume_to_the_uninterrupted_result(reference):
    root, _, expected = reference
    total = sum(1 for j in _lines(reference[1]))
    rng = np.random.default_rng(2026)
    moments = [{"lines": int(k), "delay": float(d)}
               for k, d in zip(rng.integers(2, total - 4, size=7), rng.uniform(0, 0.3, size=7))]
    moments += [{"pause": "checkpoint"}, {"pause": "weights"}, {"pause": "journal"}]
    with ThreadPoolExecutor(2) as pool:  # two at a time: each process trains on one thread
        results = list(pool.map(lambda a: _kill_and_resume(root, *a), enumerate(moments)))
    matched = 0
    for outcome, where in results:
        assert outcome["duplicates"] == 0, f"a finished evaluation was redone; {where}"
        assert outcome["evaluations"] == expected["evaluations"], where
        assert outcome["population"] == expected["population"], where
        assert outcome["front"] == expected["front"], where
        assert outcome["generation"] == expected["generation"] == SMALL["search"]["generations"]
        matched += 1
    assert matched == 10


def _damage(path: Path, rng: np.random.Generator) -> str:
    data = bytearray(path.read_bytes())
    if rng.random() < 0.5 or not data:
        cut = int(rng.integers(0, max(len(data), 1)))
        path.write_bytes(bytes(data[:cut]))
        return f"truncated {path.name} at {cut} of {len(data)} bytes"
    at = int(rng.integers(len(data)))
    data[at] ^= int(rng.integers(1, 256))
    path.write_bytes(bytes(data))
    return f"flipped byte {at} of {path.name}"


def test_damaged_checkpoints_are_detected_and_resume_falls_back(reference, tmp_path):
    _, run, expected = reference
    rng = np.random.default_rng(7)
    detected = 0
    for case in range(20):
        copy = tmp_path / f"damaged{case}"
        shutil.copytree(run, copy)
        latest = copy / "checkpoints" / (copy / "LATEST").read_text().strip()
        files = sorted(p for p in latest.rglob("*") if p.is_file())
        what = _damage(files[int(rng.integers(len(files)))], rng)
        logged: list[str] = []
        progress = Progress(quiet=True)
        progress.log = progress.warn = logged.append  # warnings show even when quiet
        result = engine.resume(copy, progress=progress)
        assert any(f"checkpoint {latest.name} is damaged" in line for line in logged), (what, logged)
        assert any("falling back to checkpoint" in line for line in logged), (what, logged)
        outcome = _outcome(copy)
        assert outcome["population"] == expected["population"], what
        assert outcome["front"] == expected["front"], what
        assert not result.stopped
        detected += 1
    assert detected == 20


def test_a_damaged_latest_pointer_is_detected(reference, tmp_path):
    _, run, expected = reference
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    (copy / "LATEST").write_text("gen-00\x00")
    logged: list[str] = []
    progress = Progress(quiet=True)
    progress.log = progress.warn = logged.append  # warnings show even when quiet
    engine.resume(copy, progress=progress)
    assert any("LATEST is damaged" in line for line in logged)
    assert _outcome(copy)["population"] == expected["population"]


class _Payload:
    """Unpickling this creates a file: proof that code ran."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def _plant(target: Path, marker: Path, folder: Path | None = None) -> None:
    target.write_bytes(pickle.dumps(_Payload(marker)))
    if folder is not None:  # the attacker also fixes the manifest, so hashes cannot save us
        manifest = json.loads((folder / "manifest.json").read_text())
        rel = target.relative_to(folder).as_posix()
        manifest["sha256"][rel] = checkpoint._sha256(target)
        (folder / "manifest.json").write_text(json.dumps(manifest))


@pytest.mark.parametrize("where", ["weights", "state.json", "population.json"])
def test_a_planted_pickle_is_never_executed(reference, tmp_path, where):
    _, run, expected = reference
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    marker = tmp_path / "pwned"
    latest = copy / "checkpoints" / (copy / "LATEST").read_text().strip()
    target = next((latest / "weights").iterdir()) if where == "weights" else latest / where
    _plant(target, marker, latest)
    logged: list[str] = []
    progress = Progress(quiet=True)
    progress.log = progress.warn = logged.append  # warnings show even when quiet
    engine.resume(copy, progress=progress)
    assert not marker.exists()
    reason = "is not a safetensors file" if where == "weights" else "is not valid JSON"
    assert any(reason in line for line in logged), logged
    assert _outcome(copy)["population"] == expected["population"]


def test_a_pickle_in_the_run_weights_is_refused_with_a_clear_error(reference, tmp_path):
    from evonas.store.states import StateFileError, load_state

    _, run, _ = reference
    marker = tmp_path / "pwned"
    target = sorted((run / "weights").iterdir())[0]
    planted = tmp_path / target.name
    _plant(planted, marker)
    with pytest.raises(StateFileError, match="not a safetensors file.*never loads pickled"):
        load_state(planted)
    assert not marker.exists()


def test_no_code_path_can_unpickle():
    """No pickle, dill or torch.load without weights_only anywhere in the packages. (CIFAR's own
    dataset files are pickles: their reader allows NumPy arrays only, tested with the tasks.)"""
    root = Path(__file__).resolve().parents[2]
    offenders = []
    for package in ("genomes", "objectives", "operators", "evonas"):
        for source in (root / package).rglob("*.py"):
            text = source.read_text()
            if source == root / "objectives/tasks/vision.py":
                assert "class _ArrayUnpickler" in text and "def find_class" in text
                text = text.replace("import pickle", "")
            for bad in ("import pickle", "import dill", "from pickle", "cloudpickle", "torch.load("):
                if bad in text and not (bad == "torch.load(" and "weights_only=True" in text):
                    offenders.append(f"{source.relative_to(root)}: {bad}")
    assert not offenders


def test_a_changed_config_is_refused_with_the_keys_that_differ(reference, tmp_path):
    _, run, _ = reference
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    config = yaml.safe_load((copy / "config.yaml").read_text())
    config["seed"] = 4
    config["space"]["channels"] = [4, 16]
    (copy / "config.yaml").write_text(yaml.safe_dump(config))
    with pytest.raises(ConfigError) as info:
        engine.resume(copy)
    assert [where for where, _ in info.value.issues] == ["seed", "space.channels"]


def test_generations_extend_a_finished_run_and_a_second_driver_is_kept_off(reference, tmp_path):
    from evonas.store.lock import RunLock, RunLockedError

    _, run, expected = reference
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    with RunLock(copy):  # another driver holds the run
        with pytest.raises(RunLockedError, match="another process"):
            engine.resume(copy, generations=6)
    result = engine.resume(copy, generations=6)
    outcome = _outcome(copy)
    assert outcome["generation"] == 6 and outcome["duplicates"] == 0
    assert outcome["evaluations"][: len(expected["evaluations"])] != [] and \
        set(expected["evaluations"]) <= set(outcome["evaluations"])
    assert max(i.generation for i in result.individuals) == 6
    with pytest.raises(ConfigError, match="ask for more than"):
        engine.resume(copy, generations=3)


def test_a_lock_left_by_a_killed_driver_is_taken_over(tmp_path):
    from evonas.store.lock import RunLock

    holder = subprocess.Popen([sys.executable, "-c", "import sys, time; from evonas.store.lock import RunLock; "
                               f"RunLock({str(tmp_path)!r}).acquire(); print('held', flush=True); "
                               "time.sleep(600)"], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    holder.kill()
    holder.wait()
    with RunLock(tmp_path):
        assert json.loads((tmp_path / "lock").read_text())["pid"] == os.getpid()


def _fallback_copy(run: Path, tmp_path: Path) -> tuple[Path, Path]:
    """A copy of the run whose newest checkpoint is damaged, and the one resume falls back to."""
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    names = sorted(p.name for p in (copy / "checkpoints").iterdir())
    (copy / "checkpoints" / names[-1] / "state.json").write_text("{}")
    return copy, copy / "checkpoints" / names[-2]


def test_lost_run_weights_of_the_population_do_not_stop_a_resume(reference, tmp_path):
    _, run, expected = reference
    copy, fallback = _fallback_copy(run, tmp_path)
    population = checkpoint.read(fallback).population
    named = {d["id"]: d["state_file"] for d in population["individuals"]}
    lost = [copy / "weights" / named[i] for i in population["population"]]
    lost[0].unlink()  # a file the journal names, gone
    lost[1].write_bytes(lost[1].read_bytes()[:100])  # and one cut short
    engine.resume(copy)
    assert _outcome(copy)["population"] == expected["population"]
    final = checkpoint.read(copy / "checkpoints" / (copy / "LATEST").read_text().strip())
    for ident in final.weights:  # every checkpoint written after the loss verifies
        final.load_weights(ident)


def test_resume_never_prunes_the_checkpoint_it_starts_from(reference, tmp_path):
    _, run, expected = reference
    copy, fallback = _fallback_copy(run, tmp_path)
    config = yaml.safe_load((copy / "config.yaml").read_text())
    config["checkpoints"]["keep"] = 1  # an allowed change
    (copy / "config.yaml").write_text(yaml.safe_dump(config))
    engine.resume(copy)
    assert _outcome(copy)["population"] == expected["population"]
    assert [p.name for p in (copy / "checkpoints").iterdir()] == [(copy / "LATEST").read_text().strip()]


def test_resume_cli_errors_exit_2_without_a_traceback(reference, tmp_path):
    from click.testing import CliRunner

    from evonas.cli import main

    _, run, _ = reference
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    config = yaml.safe_load((copy / "config.yaml").read_text())
    config["objectives"][0]["name"] = "val_accuracy"
    (copy / "config.yaml").write_text(yaml.safe_dump(config))
    cases = {tmp_path / "empty": "holds no run", copy: "objectives"}
    (tmp_path / "empty").mkdir()
    for target, message in cases.items():
        result = CliRunner().invoke(main, ["resume", str(target)])
        assert result.exit_code == 2 and message in result.output, result.output
        assert "Traceback" not in result.output
    with open(run / "journal.jsonl") as f:
        journal = f.read()
    (copy / "journal.jsonl").write_text(journal + '{"event":"evaluated","id":99}\n')
    assert CliRunner().invoke(main, ["front", str(copy)]).exit_code == 0  # an odd line is skipped


def test_resume_from_another_directory_finds_the_runs_relative_paths(tmp_path):
    """A config's relative paths (here the table of a ``tabular`` objective) were written
    against the directory the run started from; ``evonas resume`` from anywhere else moves
    there, so the run goes on instead of failing on a file it cannot find."""
    from tests.nb201 import synthetic_table

    start, elsewhere = tmp_path / "project", tmp_path / "elsewhere"
    (start / "data").mkdir(parents=True)
    elsewhere.mkdir()
    synthetic_table(start / "data" / "table.csv")
    config = {"name": "relative", "seed": 1,
              "task": {"dataset": "synthetic", "input_shape": [3, 32, 32], "num_classes": 10,
                       "samples": 100},
              "space": {"kind": "nb201"},
              "search": {"population": 4, "offspring": 4, "generations": 2,
                         "operators": {"mutate": 1}},
              "objectives": [{"name": "tabular", "path": "data/table.csv",
                              "value_column": "acc", "direction": "max"}]}
    (start / "run.yaml").write_text(yaml.safe_dump(config))
    proc = _cli("run", "run.yaml", "--run-dir", "../out", "--quiet", cwd=start)
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, out
    run = tmp_path / "out"
    assert Path(_lines(run)[0]["cwd"]).resolve() == start.resolve()
    proc = _cli("resume", "../out", "--generations", "3", "--quiet", cwd=elsewhere)
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, out
    assert f"resolve against {start.resolve()}" in out
    assert max(j["generation"] for j in _lines(run) if j["event"] == "generation") == 3
    # where the start directory is gone, relative paths resolve against the current one
    # again, and a missing file is a user's mistake: exit 2, naming it
    start.rename(tmp_path / "moved")
    proc = _cli("resume", str(run), "--generations", "4", "--quiet", cwd=elsewhere)
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 2 and "data/table.csv" in out and "Traceback" not in out, out
