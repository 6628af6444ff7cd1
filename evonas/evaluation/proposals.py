"""Jobs that proposers hand the engine (``Request.dispatch``): a proposer that trains to propose
(``gradient``) runs its work as plain-data jobs, on the run's devices when the engine drives the
run, with the same lease, time-out and failure isolation as evaluations.

Every result is the job function's dict plus ``seconds`` (wall clock from the job's start) and
``device``; a job that raised, timed out or lost its worker gives ``{"failed": reason,
"seconds": s, "device": d}``, so one bad job costs its child, never the run."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

__all__ = ["run_dispatched", "run_inline"]

JobFn = Callable[[dict, str], dict]


def run_inline(fn: JobFn, jobs: Sequence[dict]) -> list[dict[str, Any]]:
    """Run the jobs one by one in this process, on the CPU (ask-and-tell without the engine)."""
    out = []
    for job in jobs:
        start = time.time()
        try:
            result = dict(fn(job, "cpu"))
        except Exception as exc:  # noqa: BLE001 - a failing job fails its child only
            result = {"failed": f"{type(exc).__name__}: {str(exc)[:300]}"}
        out.append(_timed(result, start, "cpu"))
    return out


def run_dispatched(dispatcher, fn: JobFn, jobs: Sequence[dict]) -> list[dict[str, Any]]:
    """Run the jobs through ``dispatcher`` (``evaluation.dispatch``); results in job order."""
    from .jobs import failure

    named = [{"genome_hash": "proposal", **job} for job in jobs]  # failure() names a hash
    got: dict[int, dict] = {}
    start = time.time()
    for i, result in dispatcher.run(_Wrapped(fn), named):
        got[i] = result
    out = []
    for i, job in enumerate(named):
        result = got.get(i) or failure(job, "the job gave no result")
        if "proposal" in result:
            result = dict(result["proposal"])
        else:  # the dispatcher's own failure: a time-out, a dead worker
            began, ended = result.get("started") or start, result.get("ended") or time.time()
            result = {"failed": result["record"].get("reason") or "failed",
                      "seconds": round(max(0.0, ended - began), 3), "device": result.get("device")}
        out.append(result)
    return out


class _Wrapped:
    """``fn`` as a dispatched job: its dict comes back under ``proposal``, with its timing; a
    module-level class, so it pickles for worker processes and dask."""

    def __init__(self, fn: JobFn):
        self.fn = fn

    def __call__(self, job: dict, device: str = "cpu") -> dict:
        start = time.time()
        try:
            result = dict(self.fn(job, device))
        except Exception as exc:  # noqa: BLE001 - a failing job fails its child only
            result = {"failed": f"{type(exc).__name__}: {str(exc)[:300]}"}
        return {"proposal": _timed(result, start, device), "device": device, "started": start,
                "ended": time.time()}


def _timed(result: dict, start: float, device: str | None) -> dict:
    result.setdefault("seconds", round(time.time() - start, 3))
    result.setdefault("device", device)
    return result
