"""``npz``: a user's NumPy archive with ``x``, ``y`` and optional ``x_val``/``y_val`` and
``x_test``/``y_test``. ``x`` of shape ``(N, L)`` is a 1-channel signal, ``(N, C, L)`` a C-channel
signal, ``(N, C, H, W)`` an image; ``layout`` (e.g. ``NHWC``, ``NLC``) overrides the guess.
``source`` is free text saying how to get the file (``run python runs/make_signals.py``); a
missing file's ``DataError`` shows it.

An archive is untrusted input: it can hold arrays, never code (no pickle), and nothing is
allocated from a header before it is checked. Each member's ``.npy`` header is read first; a
declared shape whose size differs from the member's, an object dtype, or arrays larger than
``MAX_BYTES`` (as the float64 values ``prepare`` makes of them) are refused with a
``DataError`` naming the array and the file.
"""

from __future__ import annotations

import math
import os
import zipfile
from pathlib import Path

import numpy as np

from genomes.registry import shown

from .base import DataError, Task, prepare

__all__ = ["MAX_BYTES", "how_to_get", "npz"]

KEYS = ("x", "y", "x_val", "y_val", "x_test", "y_test")
_GIB = 2**30


def _memory_cap() -> int:
    """Half of this machine's memory, at most 16 GiB."""
    try:
        physical = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        physical = 32 * _GIB
    return min(16 * _GIB, max(physical, 2 * _GIB) // 2)


MAX_BYTES = _memory_cap()  # the archive's values, counted as float64


def npz(*, path: str, seed: int = 0, val_fraction: float = 0.2, fraction: float = 1.0,
        layout: str = "auto", standardize: bool = True, num_classes: int | None = None,
        source: str | None = None) -> Task:
    file = Path(path).expanduser()
    if not file.is_file():
        raise DataError(f"npz file {str(file)!r} does not exist{how_to_get(source)}")
    arrays = _read(file)
    return prepare("npz", **arrays, seed=seed, val_fraction=val_fraction, fraction=fraction,
                   layout=layout, standardize=standardize, num_classes=num_classes,
                   source=repr(str(file)))


def how_to_get(source: str | None, limit: int = 200) -> str:
    """``"; to get it: <source>"`` for a missing file's message (cut to ``limit`` characters,
    as every echoed value is), or "" without a ``source``."""
    if not source:
        return ""
    text = " ".join(str(source).split())
    return "; to get it: " + (text if len(text) <= limit else text[:limit - 1] + "…")


def _read(file: Path) -> dict[str, np.ndarray]:
    """The named arrays of an .npz archive, each header checked before its array is read."""
    name = repr(str(file))
    try:
        with file.open("rb") as f:
            if f.read(6) == b"\x93NUMPY":
                raise DataError(f"{name} is not a readable .npz archive (it holds a single array, "
                                f"not named arrays)")
        with zipfile.ZipFile(file) as archive:
            members: dict[str, zipfile.ZipInfo] = {}
            for info in archive.infolist():
                key = info.filename.removesuffix(".npy")
                if key in members:
                    raise DataError(f"{name} holds the array {shown(key)} twice")
                members[key] = info
            unknown = sorted(set(members) - set(KEYS))
            if unknown:
                raise DataError(f"{name} holds unknown arrays {shown(unknown)}; allowed: {list(KEYS)}")
            for key in ("x", "y"):
                if key not in members:
                    raise DataError(f"{name} has no array {key!r} (found {sorted(members)})")
            sizes = {key: _checked_size(archive, info, key, name) for key, info in members.items()}
            if (total := 8 * sum(sizes.values())) > MAX_BYTES:
                biggest = max(sizes, key=sizes.get)
                raise DataError(f"{name} holds {sum(sizes.values()):,} values ({_human(total)} as "
                                f"float64, {biggest!r} the largest); at most {_human(MAX_BYTES)} are "
                                f"loaded (half of this machine's memory, at most 16 GiB)")
            arrays = {}
            for key, info in members.items():
                with archive.open(info) as f:
                    arrays[key] = np.lib.format.read_array(f, allow_pickle=False)
            return arrays
    except DataError:
        raise
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, OSError, EOFError,
            NotImplementedError, RuntimeError) as exc:
        raise DataError(f"{name} is not a readable .npz archive ({shown(str(exc))})") from None


def _human(size: int) -> str:
    return f"{size / _GIB:.1f} GiB" if size >= _GIB else f"{size / 2**20:.1f} MiB"


def _checked_size(archive: zipfile.ZipFile, info: zipfile.ZipInfo, key: str, name: str) -> int:
    """The number of values member ``key`` declares, once its header is found to agree with
    the member's size; ``DataError`` otherwise."""
    with archive.open(info) as f:
        version = np.lib.format.read_magic(f)
        if version == (1, 0):
            shape, _, dtype = np.lib.format.read_array_header_1_0(f)
        elif version == (2, 0):
            shape, _, dtype = np.lib.format.read_array_header_2_0(f)
        else:
            raise DataError(f"array {key!r} in {name} is in .npy format {version}; versions 1.0 "
                            f"and 2.0 are read")
        header = f.tell()
    if dtype.hasobject:
        raise DataError(f"{name} is not a readable .npz archive: array {key!r} holds Python objects "
                        f"(dtype {dtype}), which only pickle could load; store numbers")
    count = math.prod(shape)
    declared = count * dtype.itemsize
    if header + declared != info.file_size:
        raise DataError(f"array {key!r} in {name} declares shape {shape} of {dtype} "
                        f"({declared:,} bytes), but its member holds {info.file_size - header:,} "
                        f"bytes of data: the archive is damaged")
    return count
