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
  ``distributed.wait``; a worker that dies is retried by the scheduler, and ``KilledWorker`` fails
  only its own job (with the scheduler's worker saturation at 1.0, no other job waits on a
  worker to die with it).

Without ``timeout_s`` nothing is ever failed for taking long, so a hung worker (stopped, deadlocked)
would hold the run forever in silence: both pools therefore say once, through ``notify``, when an
evaluation has run far longer than the finished ones (``slow_factor`` x their median, at least
``slow_floor_s``), naming the individual and ``dispatch.timeout_s``.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import statistics
import time
import uuid
import warnings
from collections import deque
from dataclasses import dataclass, field
from multiprocessing.connection import wait
from typing import Any, Callable, Iterator, Sequence

from evonas.evaluation.devices import gpu_count
from evonas.evaluation.jobs import failure

__all__ = ["Dispatcher", "DispatchError", "Inline", "LocalPool", "DaskPool", "SlowEvaluationWarning",
           "Slot", "dask_security", "make_dispatcher", "slots"]

Job = dict[str, Any]
Result = dict[str, Any]
Notify = Callable[[str], None]


class DispatchError(RuntimeError):
    """Evaluations cannot be dispatched at all: e.g. the dask scheduler cannot be reached."""


class SlowEvaluationWarning(RuntimeWarning):
    """An evaluation runs far longer than the finished ones (a hung worker, say); what a pool
    warns with when it was given no ``notify``."""


def _warn(message: str) -> None:
    warnings.warn(message, SlowEvaluationWarning, stacklevel=2)


class _Stragglers:
    """Says once per lease when a running evaluation exceeds max(``floor_s``, ``factor`` x the
    median duration of the evaluations this pool has finished)."""

    def __init__(self, notify: Notify | None, factor: float, floor_s: float, timeout_s: float | None):
        self.notify = notify or _warn
        self.factor, self.floor_s, self.timeout_s = factor, floor_s, timeout_s
        self.durations: deque[float] = deque(maxlen=500)  # the recent ones: rungs grow longer
        self.warned: set[int] = set()

    def finished(self, seconds: float) -> None:
        self.durations.append(seconds)

    def check(self, lease: object, job: Job, index: int, seconds: float) -> None:
        if not self.durations or id(lease) in self.warned:
            return
        median = statistics.median(self.durations)
        if seconds <= max(self.floor_s, self.factor * median):
            return
        self.warned.add(id(lease))
        ident = job.get("id", f"#{index}") if isinstance(job, dict) else f"#{index}"
        then = (f"it will be failed at dispatch.timeout_s = {self.timeout_s:g} s" if self.timeout_s
                else "set dispatch.timeout_s to fail an evaluation that runs too long (its worker "
                     "is then killed and replaced) instead of waiting for it")
        self.notify(f"individual {ident} has been evaluating for {seconds:.0f} s, while the "
                    f"{len(self.durations)} finished evaluations took {median:.1f} s (median); its "
                    f"worker may be hung (stopped, deadlocked, swapping); {then}")

    def forget(self, lease: object) -> None:
        self.warned.discard(id(lease))


@dataclass(frozen=True)
class Slot:
    """A place an evaluation runs: ``lease`` names the device it holds (e.g. ``cuda:1``, ``cpu``),
    ``device`` is what torch uses inside the worker, ``visible`` its CUDA_VISIBLE_DEVICES."""

    lease: str
    device: str
    visible: str | None = None


def slots(devices: str | Sequence[int], workers_per_device: int, *, cuda: bool | None = None) -> list[Slot]:
    """``auto``: every visible GPU, else the CPU; ``cpu``; or a list of GPU indices."""
    count = gpu_count(cuda)  # told (tests, fake ids): one GPU where there is "CUDA"
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
        self.took = 0.0  # seconds the last job ran, from "started" (else the send) to its result

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
                self.took = time.monotonic() - (self.started or self.sent)
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

    def running_for(self) -> float:
        """Seconds since the worker took its job up (since the send, if it has not said so yet)."""
        return time.monotonic() - (self.started or self.sent)


def _serve(conn, parent: int) -> None:
    """A worker's loop: run jobs until told to stop or the driver goes away."""
    _die_with(parent)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the driver's to handle, and so is
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a SIGTERM sent to the whole process group
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
    """Worker processes on this machine, one per slot, kept warm across ``run`` calls.

    ``notify`` (default: a ``SlowEvaluationWarning``) hears once about each evaluation running
    longer than max(``slow_floor_s``, ``slow_factor`` x the median of those finished so far).
    """

    START_S = 300.0  # a fresh worker that has not taken up its job by then is broken

    def __init__(self, slots_: Sequence[Slot], *, timeout_s: float | None = None, retries: int = 2,
                 start_method: str = "loky", notify: Notify | None = None, slow_factor: float = 10.0,
                 slow_floor_s: float = 60.0):
        if not slots_:
            raise ValueError("a local pool needs at least one slot")
        self.slots = list(slots_)
        self.timeout_s, self.retries = timeout_s, retries
        self.context = _context(start_method)
        self.workers: list[_Worker | None] = [None] * len(self.slots)
        self.lease_log: list[Lease] = []
        self.slow = _Stragglers(notify, slow_factor, slow_floor_s, timeout_s)

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
                        self.slow.finished(worker.took)
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
                    else:  # still at it
                        self.slow.check(lease, jobs[index], index, worker.running_for())
                        continue
                    lease.released, lease.outcome = time.time(), outcome[0]
                    self.slow.forget(lease)
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
                self.slow.forget(lease)

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
    """The jobs as futures on a ``dask.distributed`` cluster (``tcp://host:port``, ``tls://...``).

    A worker that dies is retried by the scheduler (its ``allowed-failures``), then the job fails
    as "worker died". Time-outs (and slow-evaluation notes) count from when the job's function
    starts on a worker, which the worker reports as a scheduler event: the scheduler's
    "processing" state starts earlier, while the task still waits on its worker (behind another
    task, or while the worker unpacks it and imports torch). A job past ``timeout_s`` is failed
    and its future cancelled (dask cannot interrupt the running task itself). ``security`` is a
    ``distributed.security.Security`` (see ``dask_security``). A scheduler that cannot be reached
    raises ``DispatchError``, naming its address and why.
    """

    CONNECT_S = 30.0  # how long to try to reach the scheduler

    def __init__(self, scheduler: str, *, timeout_s: float | None = None, retries: int = 2,
                 security=None, notify: Notify | None = None, slow_factor: float = 10.0,
                 slow_floor_s: float = 60.0, connect_timeout_s: float | None = None):
        try:
            from distributed import Client
        except ImportError as exc:
            raise DispatchError(f"the dask back-end needs dask.distributed ({exc}): "
                                f"pip install 'evonas[dask]'") from exc

        self.scheduler = scheduler
        self.timeout_s, self.retries = timeout_s, retries
        self.lease_log: list[Lease] = []
        self.slow = _Stragglers(notify, slow_factor, slow_floor_s, timeout_s)
        self._started: dict[str, tuple[float, float]] = {}  # key -> (monotonic, wall) start, as heard
        self.client = None
        seconds = connect_timeout_s or self.CONNECT_S
        if getattr(security, "require_encryption", False) and not scheduler.startswith("tls://"):
            # refused before dask is asked: its client would start an IO loop only to say this
            raise DispatchError(f"cannot reach the dask scheduler at {scheduler} (dispatch.security "
                                f"requires encryption, but the address is not tls://)")
        try:
            self.client = Client(scheduler, timeout=f"{seconds:g}s",
                                 **({"security": security} if security is not None else {}))
        except Exception as exc:  # OSError, TimeoutError, TLS and protocol errors alike
            raise DispatchError(f"cannot reach the dask scheduler at {scheduler} "
                                f"({_connect_reason(exc, seconds)}); is it running, and can this "
                                f"machine reach it?") from exc
        self._topic = f"evonas-started-{uuid.uuid4().hex}"
        self.client.subscribe_topic(self._topic, self._on_start)

    def _on_start(self, event: tuple[float, str]) -> None:
        # in the client's event-loop thread; the driver's own clocks, so no skew between machines
        self._started[event[1]] = (time.monotonic(), time.time())

    def run(self, fn, jobs):
        from distributed import wait as dask_wait

        futures = {}
        for i, job in enumerate(jobs):
            key = f"evonas-{job.get('id')}-{job.get('epochs')}-{uuid.uuid4().hex}"
            futures[self.client.submit(_reporting_start, fn, job, "auto", self._topic, key,
                                       key=key, pure=False)] = i
        submitted = time.time()
        pending = set(futures)
        try:
            while pending:
                try:
                    done, pending = dask_wait(pending, timeout=self._poll(pending),
                                              return_when="FIRST_COMPLETED")
                except TimeoutError:  # nothing finished meanwhile: look at the running ones
                    done = set()
                for future in done:
                    i = futures[future]
                    began = self._started.pop(future.key, None)
                    lease = Lease(i, -1, "dask", began[1] if began else submitted, time.time())
                    try:
                        result, lease.outcome = future.result(), "done"
                        if began is not None:
                            self.slow.finished(time.monotonic() - began[0])
                    except Exception as exc:  # KilledWorker, an error inside fn
                        result, lease.outcome = failure(jobs[i], _dask_reason(exc), lease.acquired), "failed"
                    self.slow.forget(future)
                    self.lease_log.append(lease)
                    yield i, result
                now = time.monotonic()
                for future in list(pending):
                    began = self._started.get(future.key)
                    if began is None or future.done():  # not started, or finished meanwhile
                        continue
                    i = futures[future]
                    if self.timeout_s is None or now - began[0] <= self.timeout_s:
                        self.slow.check(future, jobs[i], i, now - began[0])
                        continue
                    future.cancel()
                    pending.discard(future)
                    self._started.pop(future.key, None)
                    self.slow.forget(future)
                    self.lease_log.append(Lease(i, -1, "dask", began[1], time.time(), "timed out"))
                    yield i, failure(jobs[i], f"time-out: the evaluation ran past "
                                              f"dispatch.timeout_s = {self.timeout_s} s", began[1])
        finally:
            for future in pending:
                future.cancel()
            for future in futures:
                self._started.pop(future.key, None)
                self.slow.forget(future)

    def _poll(self, pending) -> float:
        """Seconds to wait for a result before looking at the running jobs' times again."""
        if self.timeout_s is None:
            return 1.0
        now = time.monotonic()
        left = [self.timeout_s - (now - self._started[f.key][0]) for f in pending if f.key in self._started]
        return max(0.01, min([1.0, *left]))

    def close(self) -> None:
        if self.client is not None:
            try:
                self.client.unsubscribe_topic(self._topic)
            except Exception:  # the scheduler went away: nothing to unsubscribe from
                pass
            self.client.close()
            self.client = None


def _reporting_start(fn, job: Job, device: str, topic: str, key: str) -> Result:
    """On a dask worker: say that the job starts (its function and data are unpacked by now, their
    imports done), then run it."""
    try:
        from distributed import get_worker

        get_worker().log_event(topic, key)
    except ValueError:  # not on a worker (dask's synchronous scheduler): nobody to tell
        pass
    return fn(job, device)


def _connect_reason(exc: Exception, seconds: float) -> str:
    text = str(exc)
    if isinstance(exc, OSError) and text.startswith("Timed out trying to connect"):
        return f"timed out after {seconds:g} s"
    if "TLS expects" in text:  # a tls:// address, and no certificates (nor any in dask's config)
        return "a tls:// scheduler needs certificates: set dispatch.security (ca_file, client_cert, client_key)"
    if "encryption required" in text:
        return "dispatch.security requires encryption, but the address is not tls://"
    if "certificate" in text.lower():
        return f"TLS refused: {text[:200]}"
    return f"{type(exc).__name__}: {text[:300]}" if text else type(exc).__name__


def _dask_reason(exc: Exception) -> str:
    name = type(exc).__name__
    if name == "KilledWorker":
        return "worker died (dask KilledWorker: the task killed its workers repeatedly)"
    return f"{name}: {str(exc)[:300]}"


def dask_security(section):
    """A ``distributed.security.Security`` for a ``dispatch.security`` section: the CA that signed
    the cluster's certificates, this client's certificate and key, and ``require_encryption``."""
    from distributed.security import Security

    paths = {}
    for name in ("ca_file", "client_cert", "client_key"):
        path = getattr(section, name, None)
        if path is not None:
            path = os.path.expanduser(str(path))
            if not os.path.isfile(path):
                raise DispatchError(f"dispatch.security.{name}: no such file: {path}")
        paths[name] = path
    return Security(tls_ca_file=paths["ca_file"], tls_client_cert=paths["client_cert"],
                    tls_client_key=paths["client_key"],
                    require_encryption=bool(getattr(section, "require_encryption", True)))


def make_dispatcher(dispatch, *, cuda: bool | None = None, notify: Notify | None = None) -> Dispatcher:
    """The dispatcher a ``dispatch`` config section asks for. ``notify`` hears about evaluations
    running far longer than the others (default: a ``SlowEvaluationWarning``)."""
    if dispatch.backend == "inline":
        chosen = slots(dispatch.devices, 1, cuda=cuda)[0]
        return Inline(f"cuda:{chosen.visible}" if chosen.visible is not None else "cpu")
    if dispatch.backend == "dask":
        section = getattr(dispatch, "security", None)
        return DaskPool(dispatch.scheduler, timeout_s=dispatch.timeout_s, retries=dispatch.retries,
                        security=dask_security(section) if section is not None else None,
                        notify=notify)
    return LocalPool(slots(dispatch.devices, dispatch.workers_per_device, cuda=cuda),
                     timeout_s=dispatch.timeout_s, retries=dispatch.retries, notify=notify)
