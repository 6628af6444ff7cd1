"""Screening: the cheap objectives (parameters, FLOPs, a latency table, a zero-cost proxy, a
benchmark table) measured in the driver before anything trains. A failure here fails the
candidate, never the run."""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from genomes import Genome
from objectives import Context, Objective, Task

__all__ = ["Screened", "screen"]


@dataclass(frozen=True)
class Screened:
    """The cheap values measured (all of them, unless ``reason`` says which one failed)."""

    values: dict[str, float]
    reason: str | None
    seconds: float


def screen(genome: Genome, cheap: Sequence[Objective], *, task: Task, device: torch.device,
           seed: int) -> Screened:
    start = time.perf_counter()
    ctx = Context(genome, task, device, seed)
    values: dict[str, float] = {}
    for obj in cheap:
        try:
            value = float(obj.measure(ctx))
            if not math.isfinite(value):
                raise ValueError(f"value is {value}")
            values[obj.key] = value
        except Exception as exc:  # noqa: BLE001 - a failing candidate never stops the run
            return Screened(values, f"{obj.key}: {exc}", time.perf_counter() - start)
    return Screened(values, None, time.perf_counter() - start)
