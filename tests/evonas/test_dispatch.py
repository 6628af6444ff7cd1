"""Dispatch: device leases are exclusive, failures stay with their own evaluation, and the local,
inline and dask back-ends find the same front.

No test here asserts how fast something is (see ``benchmarks/``): each must pass on a machine
four times slower than usual. Where a time-out is part of the behaviour, the job meant to time
out runs far longer than the limit, and the jobs that must not time out far shorter.
"""

from __future__ import annotations

import csv
import os
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
import warnings
from collections import Counter
from contextlib import closing
from types import SimpleNamespace

import pytest
import yaml
from click.testing import CliRunner

import evonas
from evonas import engine
from evonas.cli import main
from evonas.evaluation.dispatch import (DaskPool, DispatchError, Inline, LocalPool, Slot, dask_security,
                             make_dispatcher, slots)
from evonas.store.journal import read
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


def _warm(pool: LocalPool) -> None:
    """Start every worker (a fresh one imports torch: seconds on a busy machine)."""
    list(pool.run(faults.sleepy, [{"id": -1, "genome_hash": "w", "hold": 0}] * len(pool.slots)))


def test_workers_per_device_bounds_how_many_share_a_device():
    pool = LocalPool(slots([0], 2, cuda=True))  # one fake GPU, two workers on it
    jobs = [{"id": i, "genome_hash": f"h{i}", "hold": 0.3} for i in range(6)]
    with pool:
        _warm(pool)  # else one worker may do every job while the other still starts
        pool.lease_log.clear()
        results = dict(pool.run(faults.sleepy, jobs))
    held = [(lease.acquired, lease.released) for lease in pool.lease_log]
    assert _overlaps(held) == 2 and {lease.lease for lease in pool.lease_log} == {"cuda:0"}
    assert _overlaps([(r["started"], r["ended"]) for r in results.values()]) == 2


def test_a_generation_with_four_kinds_of_failure_keeps_every_healthy_result(tmp_path, monkeypatch):
    monkeypatch.setenv("EVONAS_FAULTS", "1:raise,2:nan,3:sleep,4:exit")
    # a real evaluation here takes up to ~5 s from a fresh worker's start (20 s when four times
    # slower): far from 30 s, which the sleeper (600 s) passes for certain
    config = {**SMALL, "search": {**SMALL["search"], "population": 8, "generations": 1},
              "dispatch": {"backend": "local", "workers_per_device": 2, "timeout_s": 30}}
    result = engine.run(config, run_dir=tmp_path / "run", job=faults.faulty)
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


def test_a_dask_worker_that_dies_fails_only_its_own_job(monkeypatch, one_at_a_time):
    distributed = pytest.importorskip("distributed")

    monkeypatch.setenv("EVONAS_FAULTS", "1:exit")
    jobs = [{"id": i, "genome_hash": f"h{i}", "hold": 0.2} for i in range(4)]
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  host="127.0.0.1", dashboard_address=None) as cluster:
        with DaskPool(cluster.scheduler_address, retries=1) as pool:
            results = dict(pool.run(faults.sleepy_or_fault, jobs))
    assert sorted(results) == [0, 1, 2, 3]
    assert "worker died" in results[1]["record"]["reason"]
    assert all(results[i]["record"] is None and results[i]["device"] == "auto" for i in (0, 2, 3)), results


def test_a_time_out_counts_from_when_the_worker_takes_the_job_up():
    # the worker needs 4 s to receive the job (as a fresh one importing torch would), then runs
    # it in 0.1 s: timed from the send it would be late, timed from "started" it is not
    job = {"id": 0, "genome_hash": "h0", "hold": 0.1, "ballast": faults.SlowToUnpack(4.0)}
    with LocalPool([Slot("cpu", "cpu")], timeout_s=2.0) as pool:
        results = dict(pool.run(faults.sleepy, [job]))
    assert results[0]["record"] is None, results


def test_a_result_that_arrives_while_the_caller_is_busy_is_not_timed_out():
    jobs = [{"id": 0, "genome_hash": "h0", "hold": 0.1}, {"id": 1, "genome_hash": "h1", "hold": 0.5}]
    with LocalPool([Slot("cpu", "cpu")] * 2, timeout_s=4.0) as pool:
        _warm(pool)
        results = {}
        for i, result in pool.run(faults.sleepy, jobs):
            if not results:  # journaling a big state, say: the other job finishes meanwhile,
                time.sleep(6.0)  # and by the time the pool looks, it started > timeout_s ago
            results[i] = result
    assert all(r["record"] is None for r in results.values()), results


def test_a_worker_that_died_idle_is_not_charged_to_the_next_job():
    jobs = [{"id": i, "genome_hash": f"h{i}", "hold": 0.1} for i in range(2)]
    with LocalPool([Slot("cpu", "cpu")], retries=0) as pool:
        first = dict(pool.run(faults.sleepy, jobs[:1]))
        os.kill(first[0]["pid"], signal.SIGKILL)  # dies between jobs
        pool.workers[0].process.join()  # dead before the next job is sent
        results = dict(pool.run(faults.sleepy, jobs))
    assert all(r["record"] is None for r in results.values()), results
    assert first[0]["pid"] not in {r["pid"] for r in results.values()}


def test_a_caller_that_stops_early_kills_the_busy_workers_instead_of_waiting():
    jobs = [{"id": i, "genome_hash": f"h{i}", "hold": 0.2 if i == 0 else 600} for i in range(3)]
    pool = LocalPool([Slot("cpu", "cpu")] * 2)
    with closing(pool.run(faults.sleepy, jobs)) as results:
        next(results)  # then Ctrl-C, say
        busy = [w for w in pool.workers if w is not None and w.job is not None]
    pool.close()
    # killed, not waited for (its job would hold it 600 s), and its lease closed as abandoned
    assert [w.process.exitcode for w in busy] == [-signal.SIGKILL]
    assert [lease.outcome for lease in pool.lease_log if lease.job == 1] == ["abandoned"]
    assert all(lease.released is not None for lease in pool.lease_log)
    assert pool.workers == [None, None]


def test_an_evaluation_far_beyond_the_others_is_reported_once_by_name():
    # a worker stopped (SIGSTOP) and no dispatch.timeout_s: the run must not wait in silence
    heard: list[str] = []
    stopped: dict[str, int] = {}

    def notify(message: str) -> None:
        heard.append(message)
        if len(heard) == 1:  # let the pool look at it a few more times, then let it go on
            threading.Timer(3.0, os.kill, (stopped["pid"], signal.SIGCONT)).start()

    jobs = [{"id": 10 + i, "genome_hash": f"h{i}", "hold": 5.0 if i == 1 else 0.2} for i in range(6)]
    pool = LocalPool([Slot("cpu", "cpu")] * 2, notify=notify, slow_factor=5, slow_floor_s=1)
    with pool:
        _warm(pool)
        results, rescue = {}, None
        for i, result in pool.run(faults.sleepy, jobs):
            results[i] = result
            if not stopped:
                holder = next(w for w in pool.workers if w is not None and w.job == 1)
                stopped["pid"] = holder.process.pid
                os.kill(stopped["pid"], signal.SIGSTOP)
                rescue = threading.Timer(300.0, os.kill, (stopped["pid"], signal.SIGCONT))
                rescue.start()  # should no note come, the test fails rather than hangs
        rescue.cancel()
    assert len(heard) == 1, heard
    assert heard[0].startswith("individual 11 has been evaluating for ")
    assert "median" in heard[0] and "set dispatch.timeout_s" in heard[0]
    assert all(r["record"] is None for r in results.values()), results  # it went on after SIGCONT


def test_slow_evaluations_warn_by_default_and_not_before_any_has_finished():
    with LocalPool([Slot("cpu", "cpu")], slow_factor=1, slow_floor_s=0.5) as pool:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            list(pool.run(faults.sleepy, [{"id": 0, "genome_hash": "h0", "hold": 1.0}]))
            assert not caught  # nothing to compare with yet
            list(pool.run(faults.sleepy, [{"id": 1, "genome_hash": "h1", "hold": 4.0}]))
    assert [type(w.message).__name__ for w in caught] == ["SlowEvaluationWarning"]
    assert "individual 1 " in str(caught[0].message)


@pytest.fixture
def one_at_a_time():
    """As the README says to start a scheduler: one task per worker thread, none queued on a
    worker, so a dying worker takes no innocent task down with it."""
    pytest.importorskip("distributed")  # first: its config must exist before we set a key in it
    import dask

    with dask.config.set({"distributed.scheduler.worker-saturation": 1.0}):
        yield


def test_a_dask_job_past_its_time_out_fails_and_the_rest_are_kept(one_at_a_time):
    distributed = pytest.importorskip("distributed")
    jobs = [{"id": i, "genome_hash": f"h{i}", "hold": 600 if i == 1 else 0.2} for i in range(3)]
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  host="127.0.0.1", dashboard_address=None) as cluster:
        with DaskPool(cluster.scheduler_address, timeout_s=3) as pool:
            results = dict(pool.run(faults.sleepy, jobs))  # not 600 s: the sleeper is let go
            log = {lease.job: lease.outcome for lease in pool.lease_log}
    assert "time-out" in results[1]["record"]["reason"] and log[1] == "timed out"
    assert results[0]["record"] is None and results[2]["record"] is None


def test_a_dask_time_out_counts_from_when_the_job_starts_on_its_worker():
    # The scheduler lists a task as "processing" on a worker from the moment it assigns it:
    # while that worker still imports the job's module (torch: 2 s idle, 7-12 s on a busy
    # machine) and while the task waits behind another on that worker. Neither is running time.
    distributed = pytest.importorskip("distributed")
    import dask

    from tests.evonas import slow_import

    jobs = [{"id": i, "genome_hash": f"h{i}", "hold": 0.5} for i in range(4)]
    with dask.config.set({"distributed.scheduler.worker-saturation": float("inf")}), \
            distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=True,
                                     host="127.0.0.1", dashboard_address=None,
                                     env={"EVONAS_TEST_IMPORT_S": "4"}) as cluster:
        with DaskPool(cluster.scheduler_address, timeout_s=2) as pool:
            results = dict(pool.run(slow_import.sleepy, jobs))  # 4 s to import, then 4 x 0.5 s
    assert all(r["record"] is None for r in results.values()), results


def test_a_slow_dask_evaluation_is_reported_once_by_name(one_at_a_time):
    distributed = pytest.importorskip("distributed")
    heard: list[str] = []
    jobs = [{"id": i, "genome_hash": f"h{i}", "hold": 6.0 if i == 1 else 0.2} for i in range(4)]
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                                  dashboard_address=None) as cluster:  # in-process: inproc://
        with DaskPool(cluster.scheduler_address, notify=heard.append, slow_factor=5,
                      slow_floor_s=1) as pool:
            results = dict(pool.run(faults.sleepy, jobs))
    assert all(r["record"] is None for r in results.values()), results
    assert len(heard) == 1 and heard[0].startswith("individual 1 has been evaluating for "), heard


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_an_unreachable_dask_scheduler_is_named_with_the_reason():
    pytest.importorskip("distributed")
    address = f"tcp://127.0.0.1:{_free_port()}"  # nothing listens there
    with pytest.raises(DispatchError, match=re.escape(
            f"cannot reach the dask scheduler at {address} (timed out after 1 s); is it running")):
        DaskPool(address, connect_timeout_s=1)


def test_the_command_line_names_an_unreachable_scheduler(tmp_path, monkeypatch):
    pytest.importorskip("distributed")
    monkeypatch.setattr(DaskPool, "CONNECT_S", 1.0)
    address = f"tcp://127.0.0.1:{_free_port()}"
    (tmp_path / "run.yaml").write_text(yaml.safe_dump({**SMALL, "dispatch": {
        "backend": "dask", "scheduler": address}}))
    result = CliRunner().invoke(main, ["run", str(tmp_path / "run.yaml"), "--run-dir",
                                       str(tmp_path / "run"), "--quiet"])
    assert result.exit_code == 1, result.output
    assert f"cannot reach the dask scheduler at {address} (timed out after 1 s)" in result.output
    assert "the run directory" not in result.output and "Traceback" not in result.output


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory):
    """A self-signed certificate and its key (the cluster's and the client's), made by openssl."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("making a test certificate needs the openssl command")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    made = subprocess.run([openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt",
                           "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", str(key), "-out",
                           str(cert), "-days", "2", "-subj", "/CN=evonas-test", "-addext",
                           "subjectAltName=IP:127.0.0.1"], capture_output=True, text=True)
    if made.returncode != 0:
        pytest.skip(f"openssl could not make a test certificate: {made.stderr[-300:]}")
    return str(cert), str(key)


def _dask_section(scheduler: str, security: dict | None = None):
    """A ``dispatch`` section for dask, with ``security`` where the schema has it (else the same
    fields as a plain object: ``make_dispatcher`` reads them by name)."""
    from evonas.config import DispatchConfig

    fields = {"backend": "dask", "scheduler": scheduler, "retries": 1}
    if security is None:
        return DispatchConfig(**fields)
    if "security" in DispatchConfig.model_fields:
        return DispatchConfig(**fields, security=security)
    return SimpleNamespace(**DispatchConfig(**fields).model_dump(), security=SimpleNamespace(**security))


def test_a_tls_scheduler_is_reached_with_dispatch_security_and_refused_without(tls_files):
    distributed = pytest.importorskip("distributed")
    from distributed.security import Security

    cert, key = tls_files
    cluster_security = Security(tls_ca_file=cert, tls_scheduler_cert=cert, tls_scheduler_key=key,
                                tls_worker_cert=cert, tls_worker_key=key, tls_client_cert=cert,
                                tls_client_key=key, require_encryption=True)
    security = {"ca_file": cert, "client_cert": cert, "client_key": key, "require_encryption": True}
    jobs = [{"id": i, "genome_hash": f"h{i}", "hold": 0.1} for i in range(2)]
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False,
                                  protocol="tls://", host="127.0.0.1", security=cluster_security,
                                  dashboard_address=None) as cluster:
        address = cluster.scheduler_address
        assert address.startswith("tls://127.0.0.1:")
        with make_dispatcher(_dask_section(address, security)) as pool:
            results = dict(pool.run(faults.sleepy, jobs))
        assert all(r["record"] is None for r in results.values()), results
        with pytest.raises(DispatchError, match=re.escape(f"cannot reach the dask scheduler at {address} "
                                                          f"(a tls:// scheduler needs certificates")):
            make_dispatcher(_dask_section(address))
        plain = address.replace("tls://", "tcp://")
        with pytest.raises(DispatchError, match="requires encryption, but the address is not tls://"):
            make_dispatcher(_dask_section(plain, security))


def test_dask_security_names_a_missing_file(tmp_path):
    pytest.importorskip("distributed")
    missing = tmp_path / "ca.pem"
    with pytest.raises(DispatchError, match=re.escape(f"dispatch.security.ca_file: no such file: {missing}")):
        dask_security(SimpleNamespace(ca_file=str(missing), client_cert=None, client_key=None))


def test_make_dispatcher_follows_the_config():
    from evonas.config import DispatchConfig

    assert isinstance(make_dispatcher(DispatchConfig(backend="inline")), Inline)
    heard: list[str] = []
    pool = make_dispatcher(DispatchConfig(workers_per_device=2, timeout_s=5, retries=1), cuda=False,
                           notify=heard.append)
    assert isinstance(pool, LocalPool) and len(pool.slots) == 2 and pool.retries == 1
    assert pool.slow.notify == heard.append and pool.slow.timeout_s == 5
    assert [s.lease for s in slots([0, 1], 2, cuda=True)] == ["cuda:0", "cuda:0", "cuda:1", "cuda:1"]
    assert [s.lease for s in slots("auto", 1, cuda=False)] == ["cpu"]
