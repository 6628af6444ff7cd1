"""Determinism and resume with the learning proposers (``rl``, ``bayesian``) in the operator mix,
whose weights adapt (the operator portfolio).

With a fixed seed on the CPU the journal is the same run to run, once the fields that measure
wall-clock time are left out; a run killed at a random moment (inside a learning proposer's
``tell`` or ``propose``, or from outside after a random delay) and resumed ends with the
uninterrupted run's front, population and proposer states (``rl``'s policy tensors, ``bayesian``'s
observations, the portfolio's weights). Nothing is trained: the objectives are the synthetic NB201 table and ``params``.
"""

from __future__ import annotations

import json
import multiprocessing
import multiprocessing.forkserver
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from evonas import Search, engine
from evonas.store import checkpoint
from tests.nb201 import synthetic_table

ROOT = Path(__file__).resolve().parents[2]
GENERATIONS = 5

# Journal fields that measure wall-clock time, so differ run to run; nothing else is left out.
WALL_CLOCK = ("time",  # started, resumed, finished, stopped: a timestamp
              "seconds",  # evaluated, failed: seconds the evaluation took
              "elapsed",  # generation: the run's wall-clock seconds so far
              "sum")  # every line: the checksum of the line, which holds the two above
ACCOUNT_WALL_CLOCK = "seconds"  # operators: seconds each operator spent proposing


def config(table: Path) -> dict:
    return {"name": "learners", "seed": 7,
            "task": {"dataset": "synthetic", "input_shape": [3, 32, 32], "num_classes": 10,
                     "samples": 100},
            "space": {"kind": "nb201"},
            "search": {"population": 6, "offspring": 4, "generations": GENERATIONS,
                       "operators": {"rl": {"weight": 1, "lr": 0.1},
                                     "bayesian": {"weight": 1, "ensemble": 2, "epochs": 30,
                                                  "candidates": 20, "warmup": 5},
                                     "mutate": 1},
                       "portfolio": {"p_min": 0.1}},
            "objectives": [{"name": "tabular", "path": str(table), "value_column": "acc"},
                           {"name": "params"}]}


# ---------------------------------------------------------------- the child process
def arm(where: str) -> None:
    """Make this process SIGKILL itself on entering ``<operator>.<method>`` for generation N
    (``"bayesian.tell:3"``); run in the child only, before the run starts."""
    from operators.bayesian import Bayesian
    from operators.rl import Reinforce

    target, generation = where.split(":")
    name, method = target.split(".")
    cls = {"rl": Reinforce, "bayesian": Bayesian}[name]
    real = getattr(cls, method)

    def dying(self, arg):
        g = arg.generation if method == "propose" else (arg[0].generation if arg else None)
        if g == int(generation):
            os.kill(os.getpid(), signal.SIGKILL)
        return real(self, arg)

    setattr(cls, method, dying)


def fresh(conf: Path, run: Path) -> subprocess.Popen:
    """``evonas.run`` of the config in ``conf`` into ``run`` in a fresh interpreter."""
    script = (f"import json, sys; sys.path.insert(0, {str(ROOT)!r})\n"
              f"import evonas\n"
              f"evonas.run(json.load(open({str(conf)!r})), run_dir={str(run)!r})\n")
    return subprocess.Popen([sys.executable, "-c", script], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def _child(conf: dict, run: str, where: str) -> None:
    if where:
        arm(where)
    engine.run(conf, run_dir=run)


def _forkserver():
    """The fork server's context; the server is started (importing what a run needs) at once,
    so that it gets ready while the reference run goes on."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["torch", "torch._dynamo", "evonas", "operators.bayesian",
                                    "operators.rl", "objectives.tabular", __name__])
    multiprocessing.forkserver.ensure_running()
    return context


def forked(conf: Path, run: Path, where: str = ""):
    """``evonas.run`` into ``run`` in a child process forked from a fork server that has
    everything imported already (so it starts at once, and never inherits this process's
    threads); ``where`` arms a kill inside a learning proposer (see ``arm``)."""
    proc = _forkserver().Process(target=_child, args=(json.loads(conf.read_text()), str(run), where),
                           daemon=True)
    proc.start()
    return proc


# ---------------------------------------------------------------- what must match
def journal(run: Path) -> list[bytes]:
    """The journal's lines, each re-encoded (same key order, compact) without ``WALL_CLOCK``;
    a stripped field must be where it is expected, so a new one is noticed."""
    out = []
    for raw in (run / "journal.jsonl").read_bytes().splitlines():
        line = json.loads(raw)
        assert line.pop("sum"), raw
        if line["event"] in ("started", "resumed", "finished", "stopped"):
            assert isinstance(line.pop("time"), str), raw
        if line["event"] in ("evaluated", "failed"):
            assert isinstance(line.pop("seconds"), float), raw
        if line["event"] == "generation":
            assert isinstance(line.pop("elapsed"), (int, float)), raw
        if line["event"] == "operators":
            for account in line["operators"].values():
                assert isinstance(account.pop(ACCOUNT_WALL_CLOCK), float), raw
        assert not set(WALL_CLOCK) & set(line), raw
        out.append(json.dumps(line, separators=(",", ":")).encode())
    return out


def individuals(members) -> list[tuple]:
    return [(i.id, i.genome.canonical_hash(), i.operator, i.generation,
             None if i.record is None else json.dumps(dict(i.record.objectives), sort_keys=True))
            for i in members]


def proposers(strategy) -> tuple[str, dict[str, torch.Tensor]]:
    """The learning proposers' and the portfolio's saved state (the accounts' ``seconds`` are
    wall clock: left out)."""
    data, tensors = strategy.state()
    return _learnt(data), tensors


def _learnt(data: dict) -> str:
    return json.dumps({"proposers": data["proposers"], "portfolio": data["portfolio"]},
                      sort_keys=True)


def saved(run: Path) -> tuple[str, dict[str, torch.Tensor]]:
    """The proposers' state in the run's newest checkpoint."""
    latest = checkpoint.read(run / "checkpoints" / (run / "LATEST").read_text().strip())
    return _learnt(latest.state["operators"]), latest.load_tensors()


def same_tensors(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def outcome(search: Search) -> dict:
    result = search.result()
    return {"front": individuals(result.front), "population": individuals(result.population),
            "individuals": individuals(result.individuals),
            "proposers": proposers(search.strategy), "generation": search.generation}


def assert_same_outcome(got: dict, want: dict, where: str) -> None:
    assert got["generation"] == want["generation"] == GENERATIONS, where
    assert got["front"] == want["front"], where
    assert got["population"] == want["population"], where
    assert got["individuals"] == want["individuals"], where
    data, tensors = got["proposers"]
    assert data == want["proposers"][0], where  # bayesian's observations, rl's baseline, counts
    assert same_tensors(tensors, want["proposers"][1]), where  # rl's policy and Adam moments


def story(run: Path) -> list[bytes]:
    """``journal`` less what resuming adds: its ``resumed`` lines, and the repeated ``finished``
    line of a run resumed after it had finished."""
    lines = [line for line in journal(run) if json.loads(line)["event"] != "resumed"]
    while len(lines) > 1 and lines[-1] == lines[-2] and b'"event":"finished"' in lines[-1]:
        lines.pop()
    return lines


def _resume(run: Path) -> dict:
    with Search.resume(run) as search:
        engine.drive(search)
        return outcome(search)


# ---------------------------------------------------------------- the uninterrupted run
@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    _forkserver()
    root = tmp_path_factory.mktemp("learners")
    conf = root / "config.json"
    conf.write_text(json.dumps(config(synthetic_table(root / "table.csv"))))
    run = root / "reference"
    with Search(json.loads(conf.read_text()), run_dir=run) as search:
        engine.drive(search)
        want = outcome(search)
    data = json.loads(want["proposers"][0])
    # the learners learnt something, so a state that was not restored would show
    proposers_, portfolio = data["proposers"], data["portfolio"]
    assert len(proposers_["bayesian"]["observations"]) > 20 and proposers_["rl"]["counts"]["updates"] > 20
    assert sum(portfolio["credited"]) > 10 and len(set(portfolio["p"])) == 3
    assert "rl/logits" in want["proposers"][1]  # the policy, compared tensor by tensor
    assert {"rl", "bayesian"} <= {i[2] for i in want["individuals"]}
    return root, conf, run, want


def test_the_same_seed_gives_the_same_journal_front_and_proposer_states(reference):
    root, conf, run, want = reference
    other = root / "again"
    proc = fresh(conf, other)  # a fresh interpreter: nothing shared with the first run
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, out[-2000:]
    a, b = journal(run), journal(other)
    assert len(a) > 30 and a == b
    assert (run / "front.csv").read_bytes() == (other / "front.csv").read_bytes()
    data, tensors = saved(other)
    assert data == saved(run)[0] == want["proposers"][0]
    assert same_tensors(tensors, saved(run)[1]) and same_tensors(tensors, want["proposers"][1])
    assert_same_outcome(_resume(other), want, "resumed after it finished")  # changes nothing
    assert story(other) == a


def _inside_cases() -> list[str]:
    """A kill inside each learning proposer's ``tell`` and ``propose``, at a generation drawn
    from a seeded generator (``tell`` is told the initial population in generation 0)."""
    rng = np.random.default_rng(2026)
    return [f"{name}.{method}:{int(rng.integers(0 if method == 'tell' else 1, GENERATIONS + 1))}"
            for name in ("rl", "bayesian") for method in ("tell", "propose")]


@pytest.mark.parametrize("where", _inside_cases())
def test_a_kill_inside_a_learning_proposer_then_resume_gives_the_same_run(reference, tmp_path,
                                                                          where):
    _, conf, ref_run, want = reference
    run = tmp_path / "run"
    proc = forked(conf, run, where)
    proc.join(300)
    assert proc.exitcode == -signal.SIGKILL, f"{where}: exit code {proc.exitcode}"
    before = journal(run)  # what was journaled before the kill is the reference's start
    assert before == journal(ref_run)[:len(before)], where
    assert_same_outcome(_resume(run), want, where)
    assert story(run) == journal(ref_run), where  # nothing evaluated twice, nor differently
    data, tensors = saved(run)
    assert data == want["proposers"][0] and same_tensors(tensors, want["proposers"][1]), where


def _kill_from_outside(conf: Path, run: Path, lines: int, delay: float) -> str:
    """Start the run, wait until its journal has ``lines`` lines, wait ``delay`` seconds more,
    SIGKILL it; the run may have ended by then (fine: resuming it is then a no-op)."""
    proc = forked(conf, run)
    path = run / "journal.jsonl"
    deadline = time.monotonic() + 300
    while proc.is_alive() and time.monotonic() < deadline:
        if path.exists() and path.read_bytes().count(b"\n") >= lines:
            time.sleep(delay)
            break
        time.sleep(0.002)
    proc.kill()  # only if it was still running when last looked at (then it is not reaped yet)
    proc.join(60)
    assert proc.exitcode in (0, -signal.SIGKILL), f"exit code {proc.exitcode}"
    state = "killed" if proc.exitcode else "had finished"
    return f"{state} after {lines} journal lines + {delay:.3f}s"


@pytest.mark.parametrize("seed", [1, 2])
def test_a_kill_at_a_random_moment_then_resume_gives_the_same_run(reference, tmp_path, seed):
    """From outside: at a random journal line (at least the ``started`` line: before it there
    is no run to resume), after a further random delay."""
    _, conf, ref_run, want = reference
    total = len(journal(ref_run))
    rng = np.random.default_rng(seed)
    lines, delay = int(rng.integers(1, total)), float(rng.uniform(0.0, 0.3))
    run = tmp_path / "run"
    where = _kill_from_outside(conf, run, lines, delay)
    assert_same_outcome(_resume(run), want, where)
    assert story(run) == journal(ref_run), where  # nothing evaluated twice, nor differently
    data, tensors = saved(run)
    assert data == want["proposers"][0] and same_tensors(tensors, want["proposers"][1]), where
