"""A proposer that trains to propose (``gradient``) runs its work as jobs through
``Request.dispatch``: on the run's devices when the engine drives the run (a lease, the
time-out, a failure isolated to its child), in-process under plain ask-and-tell; what a job
took is journaled with the child it made."""

from __future__ import annotations

import os

import numpy as np
import pytest

import evonas
import operators
from evonas.evaluation.dispatch import LocalPool, Slot
from evonas.evaluation.proposals import run_dispatched, run_inline
from evonas.store.journal import load
from operators import Child, Proposer, Provenance

from tests.evonas import faults
from tests.evonas.runs import SMALL


class Jobby(Proposer):
    """Makes each child by a dispatched job; the job of every ``fail_every``-th slot raises."""

    name = "jobby"

    def __init__(self, fail_every: int = 3):
        self.fail_every = fail_every

    def propose(self, request):
        jobs = [{"slot": k, "mode": "raise" if (k + 1) % self.fail_every == 0 else None,
                 "task": dict(request.task), "training": dict(request.training)}
                for k in range(request.n)]
        children = []
        for job, result in zip(jobs, request.dispatch(faults.proposal_job, jobs)):
            if "failed" in result:
                assert "injected proposal failure" in result["failed"]
                continue
            genome = request.space.sample(np.random.default_rng(request.rng.integers(2**32)))
            children.append(Child(genome, None, Provenance(self.name, (), (), f"slot {job['slot']}",
                                                           False),
                                  cost={"seconds": result["seconds"], "device": result["device"],
                                        "pid": result["pid"]}))
        return children


@pytest.fixture(scope="module", autouse=True)
def _registered():
    if "jobby" not in operators.names():
        operators.register("jobby", "tests.evonas.test_proposal_jobs:Jobby")


def _config(**dispatch) -> dict:
    conf = {**SMALL, "search": {**SMALL["search"], "generations": 2, "operators": {"jobby": 1}}}
    conf["dispatch"] = {**SMALL.get("dispatch", {}), **dispatch}
    return conf


def test_an_engine_run_sends_proposal_jobs_to_its_workers_and_journals_what_they_took(tmp_path):
    run = tmp_path / "run"
    evonas.run(_config(backend="local", workers_per_device=2), run_dir=run)
    lines = [line for line in load(run / "journal.jsonl").lines
             if line["event"] in ("evaluated", "failed") and line["operator"] == "jobby"]
    assert lines, "no child of the job-made proposer was evaluated"
    pids = {line["proposal"]["pid"] for line in lines}
    assert os.getpid() not in pids  # not computed in the driver
    assert all(line["proposal"]["device"] == "cpu" and line["proposal"]["seconds"] >= 0
               for line in lines)
    slots = {int(line["detail"].split()[1]) for line in lines}
    assert not {s for s in slots if (s + 1) % 3 == 0}  # the failed jobs made no child...
    generations = {line["generation"] for line in lines}
    assert max(generations) == 2  # ...and the run went on


def test_plain_ask_and_tell_runs_proposal_jobs_in_process():
    results = run_inline(faults.proposal_job, [{"slot": 0}, {"slot": 1, "mode": "raise"}])
    assert results[0]["pid"] == os.getpid() and results[0]["device"] == "cpu"
    assert "injected proposal failure" in results[1]["failed"] and results[1]["seconds"] >= 0


def test_a_proposal_job_that_hangs_or_kills_its_worker_fails_alone():
    jobs = [{"slot": 0}, {"slot": 1, "mode": "sleep"}, {"slot": 2, "mode": "exit"}, {"slot": 3}]
    with LocalPool([Slot("cpu", "cpu", None)] * 2, timeout_s=5, retries=0) as pool:
        results = run_dispatched(pool, faults.proposal_job, jobs)
    assert [r.get("slot") for r in results] == [0, None, None, 3]
    assert results[0]["pid"] != os.getpid() and results[3]["device"] == "cpu"
    assert "time" in results[1]["failed"] and "died" in results[2]["failed"], results
