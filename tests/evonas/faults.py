"""Job functions for dispatch tests, importable by worker processes (they get the module by name).

``EVONAS_FAULTS="1:raise,2:nan,3:sleep,4:exit"`` makes the evaluation of those individual ids
raise, diverge to NaN, hang, or kill its worker; the rest run the real evaluation.
``SlowToUnpack`` in a job makes a worker take that long to receive it (before the job starts).
"""

from __future__ import annotations

import os
import time

from evonas.evaluation.jobs import evaluate_job


def _faults() -> dict[int, str]:
    spec = os.environ.get("EVONAS_FAULTS", "")
    return {int(k): v for k, v in (item.split(":") for item in spec.split(",") if item)}


def faulty(job: dict, device: str) -> dict:
    kind = _faults().get(job["id"])
    if kind == "raise":
        raise RuntimeError("injected failure")
    if kind == "nan":  # a learning rate no network survives: a real NaN/inf loss
        job = {**job, "training": {**job["training"], "lr": 1e30}}
    if kind == "sleep":
        time.sleep(600)
    if kind == "exit":
        os._exit(3)
    return evaluate_job(job, device)


def sleepy(job: dict, device: str) -> dict:
    """Holds its device for ``job['hold']`` seconds and says where it ran."""
    started = time.time()
    time.sleep(job.get("hold", 0.2))
    return {"record": None, "state": None, "pid": os.getpid(), "device": device,
            "visible": os.environ.get("CUDA_VISIBLE_DEVICES"), "started": started, "ended": time.time()}


def sleepy_or_fault(job: dict, device: str) -> dict:
    """``sleepy``, except for the ids EVONAS_FAULTS names ("exit" kills the worker)."""
    if _faults().get(job["id"]) == "exit":
        os._exit(3)
    return sleepy(job, device)



class SlowToUnpack:
    """Ballast for a job: unpickling it takes ``seconds``, as a fresh worker's imports would."""

    def __init__(self, seconds: float):
        self.seconds = seconds

    def __getstate__(self) -> dict:
        return {"seconds": self.seconds}

    def __setstate__(self, state: dict) -> None:
        self.seconds = state["seconds"]
        time.sleep(self.seconds)


def proposal_job(job: dict, device: str) -> dict:
    """A proposer's job (``Request.dispatch``): ``mode`` raise, sleep or exit fails it; else it
    says which process and device ran it."""
    mode = job.get("mode")
    if mode == "raise":
        raise RuntimeError("injected proposal failure")
    if mode == "sleep":
        time.sleep(600)
    if mode == "exit":
        os._exit(3)
    return {"pid": os.getpid(), "device": device, "slot": job["slot"]}
