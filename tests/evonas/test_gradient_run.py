"""``gradient`` and the adaptive portfolio in a run that trains: the relaxation runs as a job on
the run's workers (never in the driver) and is journaled with its seconds; a relaxation that
diverges is a failed candidate, not a stopped run; and a run with both in the mix is
deterministic on the CPU and resumes, after a kill at a random moment, to the uninterrupted
result (population, front, every evaluation and the portfolio's weights)."""

from __future__ import annotations

import signal
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import yaml

from evonas.store import checkpoint
from evonas.store.journal import load
from tests.evonas.runs import TINY, WORKERS, cli, lines, outcome

CONFIG = {**TINY, "name": "gradient",
          "search": {**TINY["search"], "generations": 3,
                     "operators": {"gradient": {"weight": 2, "epochs": 0.5}, "deepen": 1,
                                   "mutate": 1},
                     "portfolio": {"p_min": 0.1}}}


def _portfolio(run: Path) -> dict:
    latest = checkpoint.read(run / "checkpoints" / (run / "LATEST").read_text().strip())
    return latest.state["operators"]["portfolio"]


def _made(run: Path) -> list[dict]:
    return [j for j in load(run / "journal.jsonl").lines
            if j["event"] in ("evaluated", "failed") and j["operator"] == "gradient"]


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    root = tmp_path_factory.mktemp("gradient")
    (root / "gradient.yaml").write_text(yaml.safe_dump(CONFIG))
    run = root / "reference"
    proc = cli("run", str(root / "gradient.yaml"), "--run-dir", str(run), "--quiet")
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, out
    return root, run, outcome(run)


def test_gradient_children_come_from_jobs_and_are_journaled_with_their_seconds(reference):
    _, run, _ = reference
    made = _made(run)
    assert made, "no gradient child was evaluated"
    assert all(j["detail"].startswith("relaxed ") and j["parents"] for j in made)
    assert all(j["proposal"]["device"] == "cpu" and j["proposal"]["seconds"] > 0 for j in made)
    weights = [j["weights"] for j in load(run / "journal.jsonl").lines if j["event"] == "operators"]
    assert weights and weights[-1] != weights[0]  # the portfolio adapted


def test_the_same_seed_gives_the_same_run_on_worker_processes(reference, tmp_path):
    root, _, expected = reference
    run = tmp_path / "again"
    proc = cli("run", str(root / "gradient.yaml"), "--run-dir", str(run), "--quiet", *WORKERS)
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, out
    assert outcome(run) == expected
    assert _portfolio(run) == _portfolio(reference[1])


def _kill_and_resume(root: Path, case: int, at: tuple[int, float]) -> tuple[dict, dict, str]:
    run = root / f"case{case}"
    workers = WORKERS if case % 2 else ()
    proc = cli("run", str(root / "gradient.yaml"), "--run-dir", str(run), "--quiet", *workers)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and proc.poll() is None:
        if len(lines(run)) >= at[0]:
            time.sleep(at[1])
            break
        time.sleep(0.01)
    assert proc.poll() is None, f"case {case}: the run ended before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    where = f"killed after {len(lines(run))} journal lines (+{at[1]:.2f} s)"
    resumed = cli("resume", str(run), "--quiet")
    out, _ = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, out
    return outcome(run), _portfolio(run), where


def test_a_kill_at_a_random_moment_then_resume_gives_the_uninterrupted_run(reference):
    root, run, expected = reference
    total = len(lines(run))
    rng = np.random.default_rng(14)
    moments = [(int(k), float(d)) for k, d in zip(rng.integers(2, total - 4, size=2),
                                                 rng.uniform(0, 0.3, size=2))]
    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(lambda a: _kill_and_resume(root, *a), enumerate(moments)))
    for got, weights, where in results:
        assert got["duplicates"] == 0, where
        assert got == expected, where
        assert weights == _portfolio(run), where


def test_a_relaxation_that_diverges_fails_its_child_and_the_run_goes_on(tmp_path, monkeypatch):
    import operators.gradient as gradient_module
    from evonas import Search, engine

    real, calls = gradient_module.relax, []

    def diverging(*args, **kwargs):  # every other relaxation's loss turns NaN
        calls.append(1)
        if len(calls) % 2:
            raise gradient_module.Diverged("the loss became nan at step 3")
        return real(*args, **kwargs)

    monkeypatch.setattr(gradient_module, "relax", diverging)  # the run is inline: jobs see it
    with Search(CONFIG, run_dir=tmp_path / "run") as search:
        engine.drive(search)
        gradient = search.strategy.proposers["gradient"]
        result = search.result()
    assert gradient.counts["diverged"] == (len(calls) + 1) // 2 > 0, gradient.counts
    made = {j["id"] for j in _made(tmp_path / "run")}
    assert len(made) <= gradient.counts["jobs"] - gradient.counts["failed"]  # no child of those
    assert max(i.generation for i in result.individuals) == 3  # and the run went on
