"""Durable file writes: a reader sees the old file or the new one, never half of either.

Kept apart from ``states`` (which needs torch) so that commands that only read a run directory
start without importing torch.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["fsync_dir", "write_atomic", "write_synced"]


def write_atomic(path: str | Path, data: bytes, *, sync: bool = True) -> None:
    """Write to a temporary name, fsync, rename, fsync the folder: a reader sees the old file or
    the new one, and after a power loss the rename is not lost. ``sync=False`` skips both
    fsyncs, for files that are checked before use or rebuilt from the journal."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        write_synced(tmp, data, sync=sync)
        os.replace(tmp, path)
    except OSError as exc:  # a full disk, say: name the file, leave no temporary behind
        try:
            tmp.unlink(missing_ok=True)
        except OSError:
            pass
        raise OSError(exc.errno, exc.strerror or str(exc), str(path)) from exc
    if sync:
        fsync_dir(path.parent)


def write_synced(path: str | Path, data: bytes, *, sync: bool = True) -> None:
    """Write ``data`` in place and (``sync``) fsync it, for files in a folder that is renamed
    into place once whole (a checkpoint); an ``OSError`` names the file."""
    try:
        with open(path, "wb") as f:
            f.write(data)
            f.flush()
            if sync:
                os.fsync(f.fileno())
    except OSError as exc:  # a full disk, say: name the file
        raise OSError(exc.errno, exc.strerror or str(exc), str(path)) from exc


def fsync_dir(path: str | Path) -> None:
    """Make a folder's entries (a new or renamed file) durable."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # e.g. platforms without directory handles
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
