"""Evaluation dispatch: every device kept busy, every failure isolated.

One interface, ``Dispatcher.run(fn, jobs)``, yields ``(index, result)`` as evaluations finish
(in any order), so the engine journals each the moment it arrives. Three back-ends:

- ``inline``: in this process, one at a time (debugging, notebooks; no isolation);
- ``local``: a warm worker process per device slot (``devices`` x ``workers_per_device``),
  started by joblib's loky. Each job leases its worker's slot for exactly its duration. A job
  that raises, runs past ``timeout_s`` (its worker is killed) or kills its worker fails alone:
  a dead worker's job is retried ``retries`` times on a fresh worker, then recorded as "worker
  died"; every other result is kept. The scheduling over the workers is ours, not
  ``joblib.Parallel``'s: with joblib 1.6 one dead worker or one time-out ends the whole batch,
  and results not yet returned are lost.
- ``dask``: the same jobs as ``dask.distributed`` futures on a cluster, taken with
  ``as_completed``; a worker that dies is retried by the scheduler, and ``KilledWorker`` fails
  only its own job (with the scheduler's worker saturation at 1.0, no other job waits on a
  worker to die with it).
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from multiprocessing.connection import wait
from typing import Any, Callable, Iterator, Sequence

from .jobs import failure

__all__ = ["Dispatcher", "Inline", "LocalPool", "DaskPool", "Slot", "make_dispatcher", "slots"]

Job = dict[str, Any]
Result = dict[str, Any]


@dataclass(frozen=True)
class Slot:
    """A place an evaluation runs: ``lease`` names the device it holds (e.g. ``cuda:1``, ``cpu``),
    ``device`` is what torch uses inside the worker, ``visible`` its CUDA_VISIBLE_DEVICES."""

    lease: str
    device: str
    visible: str | None = None


def slots(devices: str | Sequence[int], workers_per_device: int, *, cuda: bool | None = None) -> list[Slot]:
    """``auto``: every visible GPU, else the CPU; ``cpu``; or a list of GPU indices."""
    if cuda is None:
        import torch

        cuda = torch.cuda.is_available()
        count = torch.cuda.device_count() if cuda else 0
    else:  # told (tests, fake ids): one GPU where there is "CUDA"
        count = 1 if cuda else 0
    if devices == "cpu" or (devices == "auto" and not count):
        return [Slot("cpu", "cpu")] * workers_per_device
    gpus = list(range(count)) if devices == "auto" else list(devices)
    # each worker sees only its GPU, as cuda:0: one CUDA context per process and device
    return [Slot(f"cuda:{g}", "cuda", str(g)) for g in gpus for _ in range(workers_per_device)]


@dataclass
class Lease:
    """One evaluation's hold on a slot, for the lease log."""

    job: int
    slot: int
    lease: str
    acquired: float
    released: float | None = None
    outcome: str = ""


class Dispatcher:
    """Runs ``fn(job, device)`` for every job; yields (index, result) as they finish."""

    lease_log: list[Lease]

    def run(self, fn: Callable[[Job, str], Result], jobs: Sequence[Job]) -> Iterator[tuple[int, Result]]:
        raise NotImplementedError

    def close(self) -> None:
        """Stop the workers (they stay warm between ``run`` calls until then)."""

    def __enter__(self) -> Dispatcher:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


@dataclass
class Inline(Dispatcher):
    device: str = "cpu"
    lease_log: list[Lease] = field(default_factory=list)

    def run(self, fn, jobs):
        for i, job in enumerate(jobs):
            lease = Lease(i, 0, self.device, time.time())
            self.lease_log.append(lease)
            try:
                result = fn(job, self.device)
                lease.outcome = "done"
            except Exception as exc:  # a failing candidate never stops the run
                result = failure(job, f"{type(exc).__name__}: {str(exc)[:300]}", lease.acquired)
                lease.outcome = "raised"
            finally:
                lease.released = time.time()
            yield i, result


class _Worker:
    """A warm worker process bound to one slot, fed jobs through a pipe.

    Protocol: the driver sends ``(fn, job, device)``; the worker answers ``("started", pid)`` at
    once, then ``("result", result)``. A time-out runs from "started" (not from the send, which
    may wait for a fresh worker to import torch), and a worker that dies before "started" has
    not begun the job, so the job is not charged with the death.
    """

    def __init__(self, context, slot: Slot):
        self.slot = slot
        self.conn, child = context.Pipe()
        saved = os.environ.get("CUDA_VISIBLE_DEVICES")
        if slot.visible is not None:
            os.environ["CUDA_VISIBLE_DEVICES"] = slot.visible  # inherited by the new process
        try:
            self.process = context.Process(target=_serve, args=(child, os.getpid()), daemon=True,
                                           name=f"evonas-worker-{slot.lease}")
            self.process.start()
        finally:
            if slot.visible is not None:
                if saved is None:
                    os.environ.pop("CUDA_VISIBLE_DEVICES", None)
                else:
                    os.environ["CUDA_VISIBLE_DEVICES"] = saved
        child.close()
        self.job: int | None = None  # the job it holds, from send to result
        self.started: float | None = None  # monotonic time the worker took the job up
        self.sent = 0.0

    def send(self, index: int, fn, job: Job) -> None:
        self.job, self.started, self.sent = index, None, time.monotonic()
        self.conn.send((fn, job, self.slot.device))

    def receive(self) -> Result | None:
        """Read what the worker said; the result once it is there, else None."""
        while self.conn.poll():
            kind, payload = self.conn.recv()
            if kind == "started":
                self.started = time.monotonic()
            else:
                self.job, self.started = None, None
                return payload
        return None

    def stop(self, *, kill: bool = False) -> None:
        if self.process.is_alive():
            if kill:
                self._kill()
            else:
                try:
                    self.conn.send(None)
                except OSError:
                    self._kill()
        self.process.join(timeout=5)
        if self.process.is_alive():
            self._kill()
            self.process.join()
        self.conn.close()

    def _kill(self) -> None:
        try:  # loky's processes have no kill(); a signal works for both kinds
            os.kill(self.process.pid, getattr(signal, "SIGKILL", signal.SIGTERM))
        except ProcessLookupError:
            pass


def _serve(conn, parent: int) -> None:
    """A worker's loop: run jobs until told to stop or the driver goes away."""
    _die_with(parent)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the driver's to handle
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            return
        if message is None:
            return
        fn, job, device = message
        try:
            conn.send(("started", os.getpid()))
            try:
                result = fn(job, device)
            except Exception as exc:  # reported as this job's failure; the worker stays
                result = failure(job, f"{type(exc).__name__}: {str(exc)[:300]}")
            conn.send(("result", result))
        except (EOFError, OSError):
            return


def _die_with(parent: int) -> None:
    """Linux: this worker gets SIGKILL when the driver dies, however it dies."""
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
    if os.getppid() != parent:  # the driver died before prctl took effect
        os._exit(0)


class LocalPool(Dispatcher):
    """Worker processes on this machine, one per slot, kept warm across ``run`` calls."""

    START_S = 300.0  # a fresh worker that has not taken up its job by then is broken

    def __init__(self, slots_: Sequence[Slot], *, timeout_s: float | None = None, retries: int = 2,
                 start_method: str = "loky"):
        if not slots_:
            raise ValueError("a local pool needs at least one slot")
        self.slots = list(slots_)
        self.timeout_s, self.retries = timeout_s, retries
        self.context = _context(start_method)
        self.workers: list[_Worker | None] = [None] * len(self.slots)
        self.lease_log: list[Lease] = []

    def run(self, fn, jobs):
        self._abandon()  # a worker still holding a job of an earlier, unfinished run
        pending = deque(range(len(jobs)))
        deaths: dict[int, int] = {}
        leases: dict[int, Lease] = {}
        lost_starts = 0
        try:
            while pending or leases:
                for s in range(len(self.slots)):  # lease every free slot to a waiting job
                    if s in leases or not pending:
                        continue
                    worker = self.workers[s]
                    if worker is None or not worker.process.is_alive():
                        if worker is not None:
                            worker.stop(kill=True)
                        worker = self.workers[s] = _Worker(self.context, self.slots[s])
                    index = pending.popleft()
                    lease = Lease(index, s, self.slots[s].lease, time.time())
                    self.lease_log.append(lease)
                    try:
                        worker.send(index, fn, jobs[index])
                    except OSError:  # the worker went away while idle: a fresh one next round
                        self._drop(s)
                        lease.released, lease.outcome = time.time(), "not sent"
                        pending.appendleft(index)
                        continue
                    leases[s] = lease
                if not leases:
                    continue
                busy = {s: self.workers[s] for s in leases}
                wait([w.conn for w in busy.values()] + [w.process.sentinel for w in busy.values()],
                     timeout=self._wait(busy))
                for s, worker in busy.items():
                    index, lease = worker.job, leases[s]
                    try:
                        result = worker.receive()
                    except (EOFError, OSError):
                        result = None
                    if result is not None:
                        outcome = ("done", result)
                    elif not worker.process.is_alive():
                        began = worker.started is not None
                        code = worker.process.exitcode
                        self._drop(s)
                        if not began:  # it died before taking the job up: not the job's fault
                            lost_starts += 1
                            if lost_starts > 3 * len(self.slots) + 3:
                                raise RuntimeError(f"worker processes keep dying before they start "
                                                   f"({_exit(code)}); see their output above")
                            outcome = ("retry", None)
                        else:
                            deaths[index] = deaths.get(index, 0) + 1
                            outcome = ("retry", None) if deaths[index] <= self.retries else (
                                "died", failure(jobs[index], f"worker died ({_exit(code)}), "
                                                             f"{deaths[index]} times", lease.acquired))
                    elif self._late(worker):
                        self._drop(s)
                        outcome = ("timed out", failure(
                            jobs[index], f"time-out: the evaluation ran past dispatch.timeout_s = "
                                         f"{self.timeout_s} s", lease.acquired))
                    elif worker.started is None and time.monotonic() - worker.sent > self.START_S:
                        self._drop(s)
                        raise RuntimeError(f"a worker process did not start within {self.START_S:.0f} s")
                    else:
                        continue
                    lease.released, lease.outcome = time.time(), outcome[0]
                    del leases[s]
                    if outcome[0] == "retry":
                        pending.appendleft(index)  # on a fresh worker
                    else:
                        yield index, outcome[1]
                        break  # the caller took its time: look at every worker afresh
        finally:
            for s, lease in leases.items():  # stopped (Ctrl-C, an error, the caller gave up)
                self._drop(s)
                lease.released, lease.outcome = time.time(), "abandoned"

    def _late(self, worker: _Worker) -> bool:
        return self.timeout_s is not None and worker.started is not None and \
            time.monotonic() - worker.started > self.timeout_s

    def _drop(self, s: int) -> None:
        if self.workers[s] is not None:
            self.workers[s].stop(kill=True)
            self.workers[s] = None

    def _abandon(self) -> None:
        for s, worker in enumerate(self.workers):
            if worker is not None and worker.job is not None:
                self._drop(s)

    def _wait(self, busy: dict[int, _Worker]) -> float:
        if self.timeout_s is None:
            return 1.0
        left = [self.timeout_s - (time.monotonic() - w.started) for w in busy.values()
                if w.started is not None]
        return max(0.01, min([1.0, *left]))

    def close(self) -> None:
        for s, worker in enumerate(self.workers):
            if worker is not None:
                worker.stop(kill=worker.job is not None)  # busy ones are not waited for
                self.workers[s] = None


def _context(method: str):
    """joblib's loky processes (spawned cleanly, never forked from a process holding threads),
    or a plain ``multiprocessing`` start method."""
    if method == "loky":
        from joblib.externals.loky.backend import get_context

        return get_context("loky")
    return multiprocessing.get_context(method)


def _exit(code: int | None) -> str:
    if code is not None and code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"signal {-code}"
    return f"exit code {code}"


class DaskPool(Dispatcher):
    """The jobs as futures on a ``dask.distributed`` cluster (``tcp://host:port``).

    A worker that dies is retried by the scheduler (its ``allowed-failures``), then the job
    fails as "worker died". A job processing for longer than ``timeout_s`` is failed and its
    future cancelled (dask cannot interrupt the running task itself).
    """

    def __init__(self, scheduler: str, *, timeout_s: float | None = None, retries: int = 2):
        from distributed import Client

        self.client = Client(scheduler, timeout="30s")
        self.timeout_s, self.retries = timeout_s, retries
        self.lease_log: list[Lease] = []

    def run(self, fn, jobs):
        from distributed import wait as dask_wait

        futures = {self.client.submit(fn, job, "auto", pure=False,
                                      key=f"evonas-{job.get('id')}-{job.get('epochs')}-{uuid.uuid4().hex}"): i
                   for i, job in enumerate(jobs)}
        submitted = time.time()
        running: dict[str, float] = {}  # key -> when it was first seen processing on a worker
        pending = set(futures)
        try:
            while pending:
                try:
                    done, pending = dask_wait(pending, timeout=1.0, return_when="FIRST_COMPLETED")
                except TimeoutError:  # nothing finished this second: look at the time-outs
                    done = set()
                for future in done:
                    i = futures[future]
                    lease = Lease(i, -1, "dask", running.get(future.key, submitted), time.time())
                    try:
                        result, lease.outcome = future.result(), "done"
                    except Exception as exc:  # KilledWorker, an error inside fn
                        result, lease.outcome = failure(jobs[i], _dask_reason(exc), lease.acquired), "failed"
                    self.lease_log.append(lease)
                    yield i, result
                if self.timeout_s is not None and pending:
                    now = time.time()
                    for keys in self.client.processing().values():
                        for key in keys:
                            running.setdefault(key, now)
                    for future in list(pending):
                        began = running.get(future.key)
                        if began is not None and now - began > self.timeout_s:
                            future.cancel()
                            pending.discard(future)
                            i = futures[future]
                            self.lease_log.append(Lease(i, -1, "dask", began, now, "timed out"))
                            yield i, failure(jobs[i], f"time-out: the evaluation ran past "
                                                      f"dispatch.timeout_s = {self.timeout_s} s", began)
        finally:
            for future in pending:
                future.cancel()

    def close(self) -> None:
        self.client.close()


def _dask_reason(exc: Exception) -> str:
    name = type(exc).__name__
    if name == "KilledWorker":
        return "worker died (dask KilledWorker: the task killed its workers repeatedly)"
    return f"{name}: {str(exc)[:300]}"


def make_dispatcher(dispatch, *, cuda: bool | None = None) -> Dispatcher:
    """The dispatcher a ``dispatch`` config section asks for."""
    if dispatch.backend == "inline":
        chosen = slots(dispatch.devices, 1, cuda=cuda)[0]
        return Inline(f"cuda:{chosen.visible}" if chosen.visible is not None else "cpu")
    if dispatch.backend == "dask":
        return DaskPool(dispatch.scheduler, timeout_s=dispatch.timeout_s, retries=dispatch.retries)
    return LocalPool(slots(dispatch.devices, dispatch.workers_per_device, cuda=cuda),
                     timeout_s=dispatch.timeout_s, retries=dispatch.retries)
