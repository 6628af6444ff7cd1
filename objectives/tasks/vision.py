"""``torchvision``: MNIST, FashionMNIST, CIFAR-10 and CIFAR-100 from a local root, in the
folder layout torchvision uses, read without torchvision.

MNIST-style files are read as raw idx bytes. CIFAR's "python version" batches are pickles, so
they go through an unpickler that only rebuilds NumPy arrays and refuses anything else: a
dataset file cannot run code. Files are downloaded only with ``download: true`` (which needs the
torchvision package, and a network).
"""

from __future__ import annotations

import gzip
import io
import math
import pickle
import zlib
from pathlib import Path

import numpy as np

from genomes.registry import shown

from . import npz as _npz
from .base import DataError, Task, prepare

__all__ = ["DATASETS", "torchvision_task"]

DATASETS = {
    "mnist": ("MNIST", "torchvision.datasets.MNIST"),
    "fashionmnist": ("FashionMNIST", "torchvision.datasets.FashionMNIST"),
    "cifar10": ("cifar-10-batches-py", "torchvision.datasets.CIFAR10"),
    "cifar100": ("cifar-100-python", "torchvision.datasets.CIFAR100"),
}


def torchvision_task(*, name: str, root: str, download: bool = False, seed: int = 0,
                     val_fraction: float = 0.1, fraction: float = 1.0,
                     standardize: bool = True) -> Task:
    """``name`` is mnist, fashionmnist, cifar10 or cifar100 (a run config says
    ``task: {dataset: torchvision, name: cifar10, root: ~/data}``)."""
    key = str(name).lower().replace("-", "").replace("_", "")
    if key not in DATASETS:
        raise DataError(f"option 'name' must be one of {list(DATASETS)}, got {shown(name)}")
    dataset = name
    base = Path(root).expanduser()
    reader = _read_cifar if key.startswith("cifar") else _read_idx
    try:
        arrays = reader(base, key)
    except FileNotFoundError as missing:
        if not download:
            raise DataError(f"{dataset} is not under {str(base)!r} ({missing.args[0]} is missing); "
                            f"place torchvision's files there or set download: true") from None
        _download(base, key)
        arrays = reader(base, key)
    return prepare(key, *arrays[:2], x_test=arrays[2], y_test=arrays[3], seed=seed,
                   val_fraction=val_fraction, fraction=fraction, standardize=standardize,
                   unit=255.0, source=repr(str(base)))


def _download(base: Path, key: str) -> None:
    module, _, cls = DATASETS[key][1].rpartition(".")
    try:
        datasets = __import__(module, fromlist=[cls])
    except ImportError:
        raise DataError("download: true needs the torchvision package; install it or place "
                        "the files under the root yourself") from None
    for train in (True, False):
        getattr(datasets, cls)(str(base), train=train, download=True)


def _find(folder: Path, name: str) -> Path:
    for candidate in (folder / name, folder / f"{name}.gz"):
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(str(folder / name))


def _idx(path: Path) -> np.ndarray:
    """An idx file (MNIST's format): magic, dims, then big-endian unsigned bytes. The header is
    checked before the body is read, and a .gz file is decompressed only as far as the header
    says, so a small file cannot make the reader allocate without bound."""
    try:
        with (gzip.open(path, "rb") if path.suffix == ".gz" else path.open("rb")) as f:
            head = f.read(4)
            if len(head) < 4 or head[:2] != b"\0\0" or head[2] != 8:
                raise DataError(f"{str(path)!r} is not an idx file of unsigned bytes")
            raw_dims = f.read(4 * head[3])
            if len(raw_dims) < 4 * head[3]:
                raise DataError(f"{str(path)!r} is not an idx file of unsigned bytes")
            dims = tuple(int(d) for d in np.frombuffer(raw_dims, dtype=">u4"))
            count = math.prod(dims)
            if 8 * count > _npz.MAX_BYTES:  # as float64, what prepare makes of it
                raise DataError(f"{str(path)!r} declares shape {dims} ({count:,} values), more than "
                                f"the {_npz.MAX_BYTES // 8:,} values that are loaded")
            body = f.read(count + 1)
    except (OSError, EOFError, zlib.error) as exc:
        raise DataError(f"{str(path)!r} cannot be read: {exc}") from None
    if len(body) != count:
        raise DataError(f"{str(path)!r} is truncated: {len(body)} bytes for shape {dims}"
                        if len(body) < count else
                        f"{str(path)!r} holds more bytes than its shape {dims} needs")
    return np.frombuffer(body, dtype=np.uint8).reshape(dims)


def _read_idx(base: Path, key: str):
    raw = base / DATASETS[key][0] / "raw"
    out = []
    for prefix in ("train", "t10k"):
        x = _idx(_find(raw, f"{prefix}-images-idx3-ubyte"))
        y = _idx(_find(raw, f"{prefix}-labels-idx1-ubyte"))
        out += [x[:, None], y]  # raw 8-bit pixels; prepare divides (or standardises)
    return out


class _ArrayUnpickler(pickle.Unpickler):
    """Rebuilds NumPy arrays and scalars, dicts, lists and bytes; refuses every other global."""

    ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
        ("numpy", "ndarray"), ("numpy", "dtype"),
        ("_codecs", "encode"),  # how protocol-2 pickles from Python 3 spell bytes
    }

    def find_class(self, module: str, name: str):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}")
        return super().find_class(module, name)


def _batch(path: Path) -> dict:
    try:
        with path.open("rb") as f:
            data = _ArrayUnpickler(io.BytesIO(f.read()), encoding="bytes").load()
    except Exception as exc:  # a damaged pickle can fail in many ways; none may escape raw
        raise DataError(f"{str(path)!r} is not a CIFAR batch: {exc}") from None
    if not isinstance(data, dict):
        raise DataError(f"{str(path)!r} is not a CIFAR batch")
    return {k.decode() if isinstance(k, bytes) else k: v for k, v in data.items()}


def _read_cifar(base: Path, key: str):
    folder = base / DATASETS[key][0]
    names = ([f"data_batch_{i}" for i in range(1, 6)], ["test_batch"]) if key == "cifar10" \
        else (["train"], ["test"])
    label = "labels" if key == "cifar10" else "fine_labels"
    out = []
    for group in names:
        batches = [_batch(_find(folder, n)) for n in group]
        try:
            parts = [_cifar_arrays(b["data"], b[label], folder) for b in batches]
        except KeyError as exc:
            raise DataError(f"a CIFAR batch in {str(folder)!r} lacks {exc}") from None
        x = np.concatenate([p[0] for p in parts])
        y = np.concatenate([p[1] for p in parts])
        out += [x.reshape(-1, 3, 32, 32), y]
    return out


def _cifar_arrays(data, labels, folder: Path) -> tuple[np.ndarray, np.ndarray]:
    """A batch's images (uint8, N x 3072) and labels (N ints), checked before any conversion:
    a pickle can nest shared lists that would expand without bound if turned into an array."""
    if not (isinstance(data, np.ndarray) and data.dtype == np.uint8 and data.ndim == 2
            and data.shape[1] == 3 * 32 * 32):
        what = f"{data.dtype} array of shape {data.shape}" if isinstance(data, np.ndarray) else \
            type(data).__name__
        raise DataError(f"a CIFAR batch in {str(folder)!r} holds 'data' as {what}; expected uint8 "
                        f"images of shape (N, 3072)")
    if isinstance(labels, np.ndarray):
        ok = labels.ndim == 1 and labels.dtype.kind in "iu"
    else:
        ok = isinstance(labels, list) and all(
            isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in labels)
    if not ok or len(labels) != len(data):
        raise DataError(f"a CIFAR batch in {str(folder)!r} holds labels that are not {len(data)} "
                        f"integers (one per image)")
    return data, np.asarray(labels, dtype=np.int64)
