"""``npz``: a user's NumPy archive with ``x``, ``y`` and optional ``x_val``/``y_val`` and
``x_test``/``y_test``. ``x`` of shape ``(N, L)`` is a 1-channel signal, ``(N, C, L)`` a C-channel
signal, ``(N, C, H, W)`` an image; ``layout`` (e.g. ``NHWC``, ``NLC``) overrides the guess.
Loaded with ``allow_pickle=False``: an archive can hold arrays, never code.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from .base import DataError, Task, prepare

__all__ = ["npz"]

KEYS = ("x", "y", "x_val", "y_val", "x_test", "y_test")


def npz(*, path: str, seed: int = 0, val_fraction: float = 0.2, fraction: float = 1.0,
        layout: str = "auto", standardize: bool = True, num_classes: int | None = None) -> Task:
    file = Path(path).expanduser()
    if not file.is_file():
        raise DataError(f"npz file {str(file)!r} does not exist")
    try:
        loaded = np.load(file, allow_pickle=False)
        if not isinstance(loaded, np.lib.npyio.NpzFile):
            raise ValueError("it holds a single array, not named arrays")
        with loaded as archive:
            arrays = {k: archive[k] for k in archive.files}
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as exc:
        raise DataError(f"{str(file)!r} is not a readable .npz archive ({exc})") from None
    unknown = sorted(set(arrays) - set(KEYS))
    if unknown:
        raise DataError(f"{str(file)!r} holds unknown arrays {unknown}; allowed: {list(KEYS)}")
    for key in ("x", "y"):
        if key not in arrays:
            raise DataError(f"{str(file)!r} has no array {key!r} (found {sorted(arrays)})")
    return prepare("npz", **arrays, seed=seed, val_fraction=val_fraction, fraction=fraction,
                   layout=layout, standardize=standardize, num_classes=num_classes,
                   source=repr(str(file)))
