"""Dispatch: device leases are exclusive, failures stay with their own evaluation, and the local,
inline and dask back-ends find the same front."""

from __future__ import annotations

import csv
import time
from collections import Counter
from contextlib import closing

import pytest

import evonas
from evonas import engine
from evonas.dispatch import Inline, LocalPool, Slot, make_dispatcher, slots
from evonas.journal import read
from objectives import EvalState

from tests.evonas import faults
from tests.evonas.runs import SMALL


def _overlaps(intervals: list[tuple[float, float]]) -> int:
    """The most intervals that hold at one moment."""
    events = sorted([(a, 1) for a, _ in intervals] + [(b, -1) for _, b in intervals])
    most = now = 0
    for _, step in events:
        now += step
        most = max(most, now)
    return most


def test_each_device_is_leased_exclusively_and_every_evaluation_gets_one():
    fake = [Slot("cuda:0", "cuda", "0"), Slot("cuda:1", "cuda", "1")]  # fake ids, CPU machine
    jobs = [{"id": i, "genome_hash": f"h{i}", "hold": 0.15 + 0.05 * (i % 3)} for i in range(10)]
    with LocalPool(fake) as pool:
        results = dict(pool.run(faults.sleepy, jobs))
        log = pool.lease_log
    assert sorted(results) == list(range(10))  # every evaluation ran, once
    assert sorted(lease.job for lease in log) == list(range(10))  # and held a device to do it
    for device in ("cuda:0", "cuda:1"):
        held = [(lease.acquired, lease.released) for lease in log if lease.lease == device]
        assert held and _overlaps(held) == 1, device  # never two at once (driver's log)
        ran = [(r["started"], r["ended"]) for i, r in results.items()
               if log[[lease.job for lease in log].index(i)].lease == device]
        assert _overlaps(ran) == 1  # nor inside the workers
    for i, r in results.items():  # a worker sees only its own GPU
        lease = next(lease for lease in log if lease.job == i)
        assert r["visible"] == lease.lease.split(":")[1]
    assert len({r["pid"] for r in results.values()}) == 2  # two warm workers did it all


def test_workers_per_device_bounds_how_many_share_a_device():
    pool = LocalPool(slots([0], 2, cuda=True))  # one fake GPU, two workers on it
    jobs = [{"id": i, "genome_hash": f"h{i}", "hold": 0.3} for i in range(6)]
    with pool:
        results = dict(pool.run(faults.sleepy, jobs))
    held = [(lease.acquired, lease.released) for lease in pool.lease_log]
    assert _overlaps(held) == 2 and {lease.lease for lease in pool.lease_log} == {"cuda:0"}
    assert _overlaps([(r["started"], r["ended"]) for r in results.values()]) == 2


def test_a_generation_with_four_kinds_of_failure_keeps_every_healthy_result(tmp_path, monkeypatch):
    monkeypatch.setenv("EVONAS_FAULTS", "1:raise,2:nan,3:sleep,4:exit")
    monkeypatch.setattr(engine._Loop, "JOB", staticmethod(faults.faulty))
    config = {**SMALL, "search": {**SMALL["search"], "population": 8, "generations": 1},
              "dispatch": {"backend": "local", "workers_per_device": 2, "timeout_s": 10}}
    result = evonas.run(config, run_dir=tmp_path / "run")
    by_id = {i.id: i for i in result.individuals}
    reasons = {i: by_id[i].record.reason for i in (1, 2, 3, 4)}
    assert all(by_id[i].record.state is EvalState.FAILED for i in reasons), reasons
    assert "RuntimeError: injected failure" in reasons[1]
    assert "nan" in reasons[2].lower() or "inf" in reasons[2].lower()
    assert "time-out" in reasons[3] and "dispatch.timeout_s" in reasons[3]
    assert "worker died (exit code 3), 3 times" in reasons[4]  # tried, then retried twice
    healthy = [by_id[i] for i in (0, 5, 6, 7)]
    assert all(i.complete for i in healthy)  # the generation's other results were kept
    assert max(i.generation for i in result.individuals) == 1  # and the run went on
    assert not {1, 2, 3, 4} & {i.id for i in result.front}
    journal = read(tmp_path / "run/journal.jsonl")[0]
    failed = {j["id"]: j["reason"] for j in journal if j["event"] == "failed"}
    assert {1, 2, 3, 4} <= set(failed) and failed[3] == reasons[3]


def test_a_raising_job_inline_fails_alone():
    jobs = [{"id": i, "genome_hash": f"h{i}", "hold": 0.0} for i in range(3)]

    def fn(job, device):
        if job["id"] == 1:
            raise ValueError("broken")
        return faults.sleepy(job, device)

    results = dict(Inline().run(fn, jobs))
    assert results[1]["record"]["state"] == "failed" and "ValueError: broken" in results[1]["record"]["reason"]
    assert results[0]["device"] == results[2]["device"] == "cpu"


def _front(path) -> list[dict]:
    with open(path / "front.csv") as f:
        return list(csv.DictReader(f))


def test_a_dask_cluster_finds_the_same_front_as_the_local_back_end(tmp_path):
    distributed = pytest.importorskip("distributed")
    config = {**SMALL, "search": {**SMALL["search"], "generations": 2}}
    evonas.run({**config, "dispatch": {"backend": "local", "workers_per_device": 2}},
               run_dir=tmp_path / "local")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  host="127.0.0.1", dashboard_address=None) as cluster:
        dask_config = {**config, "dispatch": {"backend": "dask",
                                              "scheduler": cluster.scheduler_address}}
        evonas.run(dask_config, run_dir=tmp_path / "dask")
        with distributed.Client(cluster) as client:
            workers = client.run(lambda: __import__("os").getpid())
    assert len(workers) == 2
    assert _front(tmp_path / "dask") == _front(tmp_path / "local")
    devices = Counter(j.get("device") for j in read(tmp_path / "dask/journal.jsonl")[0]
                      if j["event"] == "evaluated")
    assert set(devices) == {"cpu"}


def test_a_dask_worker_that_dies_fails_only_its_own_job(monkeypatch):
    distributed = pytest.importorskip("distributed")
    from evonas.dispatch import DaskPool

    import dask

    monkeypatch.setenv("EVONAS_FAULTS", "1:exit")
    jobs = [{"id": i, "genome_hash": f"h{i}", "hold": 0.2} for i in range(4)]
    # as the README says to start a scheduler: one task per worker thread, none queued on a
    # worker, so a dying worker takes no innocent task down with it
    with dask.config.set({"distributed.scheduler.worker-saturation": 1.0}), \
            distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                     host="127.0.0.1", dashboard_address=None) as cluster:
        with DaskPool(cluster.scheduler_address, retries=1) as pool:
            results = dict(pool.run(faults.sleepy_or_fault, jobs))
    assert sorted(results) == [0, 1, 2, 3]
    assert "worker died" in results[1]["record"]["reason"]
    assert all(results[i]["record"] is None and results[i]["device"] == "auto" for i in (0, 2, 3)), results


def test_a_time_out_counts_from_when_the_worker_takes_the_job_up():
    jobs = [{"id": i, "genome_hash": f"h{i}", "hold": 0.1} for i in range(2)]
    with LocalPool([Slot("cpu", "cpu")], timeout_s=1.0) as pool:  # a fresh worker needs > 1 s
        results = dict(pool.run(faults.sleepy, jobs))
    assert all(r["record"] is None for r in results.values()), results


def test_a_result_that_arrives_while_the_caller_is_busy_is_not_timed_out():
    jobs = [{"id": 0, "genome_hash": "h0", "hold": 0.1}, {"id": 1, "genome_hash": "h1", "hold": 1.2}]
    with LocalPool([Slot("cpu", "cpu")] * 2, timeout_s=2.0) as pool:
        list(pool.run(faults.sleepy, [{"id": 9, "genome_hash": "w", "hold": 0}] * 2))  # warm
        results = {}
        for i, result in pool.run(faults.sleepy, jobs):
            results[i] = result
            time.sleep(2.0)  # journaling a big state, say: job 1 finishes meanwhile
    assert all(r["record"] is None for r in results.values()), results


def test_a_worker_that_died_idle_is_not_charged_to_the_next_job():
    import os
    import signal

    jobs = [{"id": i, "genome_hash": f"h{i}", "hold": 0.1} for i in range(2)]
    with LocalPool([Slot("cpu", "cpu")], retries=0) as pool:
        first = dict(pool.run(faults.sleepy, jobs[:1]))
        os.kill(first[0]["pid"], signal.SIGKILL)  # dies between jobs
        time.sleep(0.2)
        results = dict(pool.run(faults.sleepy, jobs))
    assert all(r["record"] is None for r in results.values()), results
    assert first[0]["pid"] not in {r["pid"] for r in results.values()}


def test_a_caller_that_stops_early_frees_the_busy_workers_at_once():
    jobs = [{"id": i, "genome_hash": f"h{i}", "hold": 0.2 if i == 0 else 30} for i in range(3)]
    pool = LocalPool([Slot("cpu", "cpu")] * 2)
    with closing(pool.run(faults.sleepy, jobs)) as results:
        next(results)  # then Ctrl-C, say
    start = time.monotonic()
    pool.close()
    assert time.monotonic() - start < 2
    assert [lease.outcome for lease in pool.lease_log if lease.job == 1] == ["abandoned"]
    assert all(lease.released is not None for lease in pool.lease_log)


def test_a_dask_job_past_its_time_out_fails_and_the_rest_are_kept():
    distributed = pytest.importorskip("distributed")
    from evonas.dispatch import DaskPool

    jobs = [{"id": i, "genome_hash": f"h{i}", "hold": 60 if i == 1 else 0.2} for i in range(3)]
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  host="127.0.0.1", dashboard_address=None) as cluster:
        with DaskPool(cluster.scheduler_address, timeout_s=3) as pool:
            start = time.monotonic()
            results = dict(pool.run(faults.sleepy, jobs))
            took = time.monotonic() - start
    assert "time-out" in results[1]["record"]["reason"] and took < 30
    assert results[0]["record"] is None and results[2]["record"] is None


def test_make_dispatcher_follows_the_config():
    from evonas.config import DispatchConfig

    assert isinstance(make_dispatcher(DispatchConfig(backend="inline")), Inline)
    pool = make_dispatcher(DispatchConfig(workers_per_device=2, timeout_s=5, retries=1), cuda=False)
    assert isinstance(pool, LocalPool) and len(pool.slots) == 2 and pool.retries == 1
    assert [s.lease for s in slots([0, 1], 2, cuda=True)] == ["cuda:0", "cuda:0", "cuda:1", "cuda:1"]
    assert [s.lease for s in slots("auto", 1, cuda=False)] == ["cpu"]
