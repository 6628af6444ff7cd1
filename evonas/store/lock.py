"""One driver per run directory.

The lock is an advisory ``flock`` on ``<run>/lock``: the kernel releases it when its process dies
however it dies, so a lock left by a killed driver is taken over without guessing from pids. The
file holds the holder's pid and host, for the message a second driver gets.
"""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path

__all__ = ["RunLock", "RunLockedError"]

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None


class RunLockedError(Exception):
    """Another live process drives this run directory."""


class RunLock:
    """``with RunLock(run_dir): ...`` holds the run directory for this process."""

    def __init__(self, run: str | Path):
        self.path = Path(run) / "lock"
        self._fd: int | None = None

    def acquire(self) -> RunLock:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        if fcntl is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                holder = _holder(fd)
                os.close(fd)
                raise RunLockedError(f"{self.path.parent} is being run by another process "
                                     f"({holder}); wait for it or stop it first") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                                  "since": time.strftime("%Y-%m-%dT%H:%M:%S")}).encode(), 0)
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing drops the flock; the file stays for the next driver
            self._fd = None

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


def _holder(fd: int) -> str:
    try:
        info = json.loads(os.pread(fd, 4096, 0) or b"{}")
        return f"pid {info['pid']} on {info['host']} since {info['since']}"
    except (OSError, ValueError, KeyError, TypeError):
        return "pid unknown"
