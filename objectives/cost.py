"""Cost objectives that need no training: parameters, FLOPs, measured latency, and a latency
look-up table (per-op timings measured once per device, cached on disk, then summed)."""

from __future__ import annotations

import contextlib
import json
import os
import platform
import statistics
import tempfile
import time
import warnings
from pathlib import Path
from typing import Callable

import torch
from torch.utils.flop_counter import FlopCounterMode

from genomes import OPS
from genomes.registry import shown

from .base import Context, Objective

__all__ = ["Flops", "LatencyLUT", "Latency", "Params", "time_call"]


class Params(Objective):
    """Trainable parameters of the network, counted from the genome without building it."""

    name, direction, preview = "params", "min", True

    def measure(self, ctx: Context) -> float:
        return float(ctx.genome.num_params())


class Flops(Objective):
    """Floating-point operations of one forward pass of one sample (torch's FLOP counter:
    2 per multiply-add of convolutions and matrix products)."""

    name, direction, preview = "flops", "min", True

    def measure(self, ctx: Context) -> float:
        net = ctx.genome.build(seed=ctx.seed).eval()
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            net(torch.zeros((1, *ctx.genome.input_shape)))
        return float(counter.get_total_flops())


def time_call(fn: Callable[[], object], *, device: torch.device, warmup: int, repeats: int) -> float:
    """Median wall time of ``fn()`` in milliseconds, after ``warmup`` untimed calls."""
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    with torch.no_grad():
        for _ in range(warmup):
            fn()
        sync()
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            fn()
            sync()
            times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3


MAX_BATCH = 65_536  # the largest timed batch
MAX_REPEATS = 10_000  # timed (or warm-up) calls per measurement


def _check_timing(batch_size: int, warmup: int, repeats: int) -> None:
    for key, value, low, high in (("batch_size", batch_size, 1, MAX_BATCH),
                                  ("warmup", warmup, 0, MAX_REPEATS),
                                  ("repeats", repeats, 1, MAX_REPEATS)):
        if type(value) is not int or not low <= value <= high:
            raise ValueError(f"option {key!r} must be an int in [{low}, {high:,}], got {shown(value)}")


class Latency(Objective):
    """Measured forward latency (ms, median of ``repeats`` after ``warmup``) on the device."""

    name, direction = "latency", "min"

    def __init__(self, *, batch_size: int = 1, warmup: int = 5, repeats: int = 30):
        _check_timing(batch_size, warmup, repeats)
        self.batch_size, self.warmup, self.repeats = batch_size, warmup, repeats

    def measure(self, ctx: Context) -> float:
        net = ctx.genome.build(seed=ctx.seed, device=ctx.device).eval()
        x = torch.zeros((self.batch_size, *ctx.genome.input_shape), device=ctx.device)
        return time_call(lambda: net(x), device=ctx.device, warmup=self.warmup, repeats=self.repeats)


class LatencyLUT(Objective):
    """Latency predicted as the sum of per-op latencies from a look-up table (ms).

    Each distinct (op, parameters, input shape, batch size) is timed once per device and stored
    in ``<cache>/latency_lut/<device>.json``; later genomes reuse the table, so the value is
    deterministic and cheap. Merges (add, concat) are not counted.
    """

    name, direction, preview = "latency_lut", "min", True

    def __init__(self, *, batch_size: int = 1, cache: str | None = None, warmup: int = 3,
                 repeats: int = 20):
        _check_timing(batch_size, warmup, repeats)
        self.batch_size, self.cache, self.warmup, self.repeats = batch_size, cache, warmup, repeats

    def measure(self, ctx: Context) -> float:
        path = self.table_path(ctx.device)
        io, needed = ctx.genome.io_shapes(), {}
        for node in ctx.genome:
            op, params = ctx.genome.op(node), ctx.genome.params(node)
            if op not in ("input", "output", "identity"):
                key = json.dumps([op, sorted(params.items()), list(io[node][0]), self.batch_size])
                needed[key] = (op, params, io[node][0])
        table = _read_table(path)
        if any(key not in table for key in needed):
            table = self._extend(path, needed, ctx.device)
        return sum(table[key] for key in needed)

    def _extend(self, path: Path, needed: dict, device: torch.device) -> dict[str, float]:
        """Time the ops the table lacks, under a lock: the first process to time an op wins."""
        path.parent.mkdir(parents=True, exist_ok=True)
        with _locked(path.with_name(path.name + ".lock")):
            table = _read_table(path)  # another process may have timed them meanwhile
            todo = {k: v for k, v in needed.items() if k not in table}
            for key, (op, params, shape) in todo.items():
                table[key] = self._time_op(op, params, shape, device)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
            with os.fdopen(fd, "w") as f:
                json.dump(table, f, indent=0, sort_keys=True)
            os.replace(tmp, path)  # atomic: a reader never sees half a table
        return table

    def table_path(self, device: torch.device) -> Path:
        root = Path(self.cache or os.environ.get("EVONAS_CACHE", "~/.cache/evonas")).expanduser()
        return root / "latency_lut" / f"{_device_tag(device)}.json"

    def _time_op(self, op: str, params: dict, shape: tuple, device: torch.device) -> float:
        spec = OPS[op]
        module = spec.module(shape, params)
        fn = module.to(device).eval() if module is not None else spec.function()
        x = torch.randn((self.batch_size, *shape), device=device)
        return time_call(lambda: fn(x), device=device, warmup=self.warmup, repeats=self.repeats)


def _read_table(path: Path) -> dict[str, float]:
    """The cached table, or an empty one (with a warning) if it is missing or unreadable."""
    if not path.is_file():
        return {}
    try:
        table = json.loads(path.read_text())
        if isinstance(table, dict) and all(isinstance(v, (int, float)) for v in table.values()):
            return table
        problem = "it is not a JSON object of numbers"
    except (OSError, ValueError) as exc:
        problem = str(exc)
    warnings.warn(f"latency table {str(path)!r} is unreadable ({problem}); timing its ops again",
                  RuntimeWarning, stacklevel=3)
    return {}


@contextlib.contextmanager
def _locked(path: Path):
    """An exclusive advisory lock on ``path`` (POSIX ``flock``; no lock where that is missing)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield
        return
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _device_tag(device: torch.device) -> str:
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
    else:
        name = f"{platform.machine()}-{_cpu_model()}-threads{torch.get_num_threads()}"
    tag = f"{device.type}-{name}-torch{torch.__version__}"
    return "".join(c if c.isalnum() or c in "-._" else "_" for c in tag)


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "cpu"
