"""Tasks: train / validation / test splits of a classification problem, checked and prepared.

Every task goes through ``prepare``: arrays are checked (shapes, labels, finite values, at least
two classes per split) before any training, a missing validation split is carved from the
training split with the run seed (stratified), an optional ``fraction`` of the training split is
kept as a lower fidelity, and standardisation statistics come from the training split only.

A task keeps how it turned raw arrays into network inputs (``Task.preprocessing``: the raw
layout, a mean and a std per channel), so an exported network can take raw inputs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from genomes.registry import option_problem, shown

if TYPE_CHECKING:
    import torch

__all__ = ["MAX_CLASSES", "DataError", "Preprocessing", "Split", "Task", "prepare"]

MAX_CLASSES = 100_000  # more than any public classification benchmark (ImageNet-21k: 21,841)

LAYOUTS = {  # how to read x, without the batch axis first; "auto" guesses from its rank
    "NL": (1, None), "NCL": (2, None), "NLC": (2, (0, 2, 1)), "NCHW": (3, None),
    "NHWC": (3, (0, 3, 1, 2)), "NHW": (2, None),
}


class DataError(ValueError):
    """Bad task data; the message names the file, key or split at fault."""


@dataclass(frozen=True)
class Split:
    """Inputs ``x`` (float32, ``(N, *input_shape)``) and integer labels ``y`` (int64, ``(N,)``)."""

    x: torch.Tensor
    y: torch.Tensor

    def __len__(self) -> int:
        return len(self.y)


@dataclass(frozen=True)
class Preprocessing:
    """How raw arrays become network inputs: axes reordered from ``layout`` to channels first
    (a channel axis added for ``NL``/``NHW``), cast to float32, then ``(x - mean) / std`` per
    channel (the training split's statistics; without standardisation mean 0 and std the raw
    unit, e.g. 255 for 8-bit pixels). ``module()`` is the one implementation: training data go
    through it, and exports put it in front of the network, so both see the same numbers."""

    layout: str  # of the raw arrays, batch first: NCHW, NHWC, NCL, NLC, NL or NHW
    mean: tuple[float, ...]  # per channel, float32 values
    std: tuple[float, ...]

    def module(self) -> torch.nn.Module:
        """A scriptable, ONNX-exportable module: raw inputs in, network inputs out."""
        from .raw_input import RawInput

        perm = LAYOUTS[self.layout][1]
        return RawInput(list(perm) if perm is not None else [], self.layout in ("NL", "NHW"),
                        self.mean, self.std, LAYOUTS[self.layout][0] + 1)

    def apply(self, x: Any) -> torch.Tensor:
        """Raw inputs (array or tensor, batch first, in ``layout``) as float32 network inputs."""
        import torch

        with torch.no_grad():
            return self.module()(torch.as_tensor(np.asarray(x) if not torch.is_tensor(x) else x))

    def invert(self, x: torch.Tensor) -> torch.Tensor:
        """Network inputs back in the raw layout and scale (up to float rounding)."""
        import torch

        view = (1, len(self.mean), *([1] * (x.dim() - 2)))
        raw = x * torch.tensor(self.std).reshape(view) + torch.tensor(self.mean).reshape(view)
        if self.layout in ("NL", "NHW"):
            return raw.squeeze(1)
        perm = LAYOUTS[self.layout][1]
        return raw if perm is None else raw.permute(*[perm.index(i) for i in range(raw.dim())])

    def raw_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        """The shape of one raw sample, for a network input shape (channels first)."""
        if self.layout in ("NL", "NHW"):
            return tuple(input_shape[1:])
        perm = LAYOUTS[self.layout][1]
        full = (0, *input_shape)
        return tuple(full[perm.index(i)] for i in range(len(full)))[1:] if perm else tuple(input_shape)

    def to_dict(self) -> dict[str, Any]:
        return {"layout": self.layout, "mean": list(self.mean), "std": list(self.std)}

    @classmethod
    def from_dict(cls, data: Any) -> Preprocessing:
        """The inverse of ``to_dict``; ``ValueError`` if ``data`` is not one."""
        try:
            layout, mean, std = data["layout"], data["mean"], data["std"]
            ok = layout in LAYOUTS and isinstance(mean, list) and isinstance(std, list) and \
                len(mean) == len(std) > 0 and all(
                    type(v) in (int, float) and math.isfinite(v) for v in (*mean, *std)) and \
                all(v != 0 for v in std)
        except (KeyError, TypeError):
            ok = False
        if not ok:
            raise ValueError(f"not a preprocessing record: {str(data)[:200]}")
        return cls(layout, tuple(float(v) for v in mean), tuple(float(v) for v in std))


@dataclass(frozen=True)
class Task:
    """A classification problem: splits, the input shape (without batch), the class count, and
    the preprocessing that made the splits' inputs from raw arrays."""

    name: str
    train: Split
    val: Split
    test: Split | None
    input_shape: tuple[int, ...]
    num_classes: int
    preprocessing: Preprocessing | None = None


def prepare(name: str, x: Any, y: Any, *, x_val: Any = None, y_val: Any = None,
            x_test: Any = None, y_test: Any = None, seed: int = 0, val_fraction: float = 0.2,
            fraction: float = 1.0, layout: str = "auto", standardize: bool = True,
            num_classes: int | None = None, unit: float = 1.0, source: str = "") -> Task:
    """Check raw arrays and turn them into a ``Task``; ``DataError`` names what is wrong.
    ``unit`` is what raw values are divided by when not standardised (255 for 8-bit pixels)."""
    import torch

    where = f" in {source}" if source else ""
    for key, value in (("seed", seed), ("val_fraction", val_fraction), ("fraction", fraction),
                       ("layout", layout), ("standardize", standardize),
                       ("num_classes", num_classes), ("unit", unit)):
        if (problem := option_problem(prepare, key, value)) is not None:  # types first
            raise DataError(f"option {key!r} {problem}")
    _option(0 < val_fraction < 1, "val_fraction", "must be in (0, 1)", val_fraction)
    _option(0 < fraction <= 1, "fraction", "must be in (0, 1]", fraction)
    _option(layout == "auto" or layout in LAYOUTS, "layout", f"must be 'auto' or one of {list(LAYOUTS)}",
            layout)
    _option(num_classes is None or (type(num_classes) is int and 2 <= num_classes <= MAX_CLASSES),
            "num_classes", f"must be an int in [2, {MAX_CLASSES:,}] (or left out to count the "
                           f"training labels)", num_classes)
    _option(type(seed) is int and seed >= 0, "seed", "must be an int >= 0", seed)
    _option(unit > 0, "unit", "must be > 0", unit)
    raw_layout = layout if layout != "auto" else {2: "NL", 3: "NCL", 4: "NCHW"}.get(np.ndim(x), "auto")
    if (x_val is None) != (y_val is None):
        raise DataError(f"give both x_val and y_val or neither{where}")
    if (x_test is None) != (y_test is None):
        raise DataError(f"give both x_test and y_test or neither{where}")
    splits = {"": (x, y), "_val": (x_val, y_val), "_test": (x_test, y_test)}
    arrays = {}
    for suffix, (xs, ys) in splits.items():
        if xs is not None:
            xs, ys = _inputs(xs, f"x{suffix}", layout, where), _labels(ys, f"y{suffix}", where)
            if len(xs) != len(ys):
                raise DataError(f"x{suffix} has {len(xs)} samples but y{suffix} has {len(ys)}{where}")
            arrays[suffix] = (xs, ys)
    shapes = {k: a[0].shape[1:] for k, a in arrays.items()}
    if len(set(shapes.values())) > 1:
        listed = ", ".join(f"x{k} {s}" for k, s in shapes.items())
        raise DataError(f"splits disagree on the input shape{where}: {listed}")
    y_train = arrays[""][1]
    k = num_classes if num_classes is not None else 1 + int(y_train.max())
    if k > MAX_CLASSES:  # checked before anything is sized by it
        raise DataError(f"y has labels up to {k - 1:,}{where}; at most {MAX_CLASSES:,} classes "
                        f"are supported (labels must be 0..k-1)")
    if num_classes is None and (absent := sorted(set(range(k)) - set(y_train.tolist()))):
        raise DataError(f"y has labels up to {k - 1} but none of {absent[:10]}{where}; labels must "
                        f"be 0..k-1 (or set num_classes)")
    for suffix, (xs, ys) in arrays.items():
        if ys.min() < 0 or ys.max() >= k:
            raise DataError(f"y{suffix} has labels outside [0, {k - 1}]{where}: "
                            f"min {ys.min()}, max {ys.max()}")
        if len(np.unique(ys)) < 2:
            raise DataError(f"y{suffix} holds a single class ({ys[0]}){where}; a classification "
                            f"split needs at least two")
    rng = np.random.default_rng(seed)
    x_tr, y_tr = arrays[""]
    if "_val" not in arrays:
        x_tr, y_tr, x_v, y_v = _carve(x_tr, y_tr, val_fraction, rng, "validation", where)
    else:
        x_v, y_v = arrays["_val"]
    if fraction < 1:
        x_tr, y_tr = _subsample(x_tr, y_tr, fraction, rng)
    test = arrays.get("_test")
    channels = x_tr.shape[1]
    if standardize:
        axes = (0, *range(2, x_tr.ndim))
        with np.errstate(over="ignore", invalid="ignore"):  # checked just below
            mean, std = x_tr.mean(axis=axes), x_tr.std(axis=axes)
        if not (np.all(np.isfinite(mean)) and np.all(np.isfinite(std))):
            raise DataError(f"x cannot be standardised{where}: its per-channel mean or standard "
                            f"deviation is not finite (values too large?)")
        std = np.where(std > 0, std, 1.0)
    else:
        mean, std = np.zeros(channels), np.full(channels, float(unit))
    with np.errstate(over="ignore"):
        pre = Preprocessing("NCHW" if x_tr.ndim == 4 else "NCL",  # x is channels first by now
                            tuple(float(v) for v in mean.astype(np.float32)),
                            tuple(float(v) for v in std.astype(np.float32)))
    if not all(math.isfinite(v) for v in (*pre.mean, *pre.std)) or 0 in pre.std:
        raise DataError(f"x cannot be standardised{where}: its statistics do not fit in float32")
    splits_ = {"x": (x_tr, y_tr), "x_val": (x_v, y_v), **({"x_test": test} if test else {})}
    made = {}
    for key, (xs, ys) in splits_.items():
        inputs = pre.apply(xs)
        if not bool(torch.isfinite(inputs).all()):
            raise DataError(f"{key} holds values too large for float32 after standardisation{where}")
        made[key] = Split(inputs.contiguous(), torch.as_tensor(ys, dtype=torch.int64))
    return Task(name=name, train=made["x"], val=made["x_val"], test=made.get("x_test"),
                input_shape=tuple(x_tr.shape[1:]), num_classes=k,
                preprocessing=Preprocessing(raw_layout, pre.mean, pre.std))


def _option(ok: bool, key: str, what: str, value: Any) -> None:
    if not ok:
        raise DataError(f"option {key!r} {what}, got {shown(value)}")


def _inputs(x: Any, key: str, layout: str, where: str) -> np.ndarray:
    x = np.asarray(x)
    if x.dtype.kind not in "fiub":
        raise DataError(f"{key} must hold numbers, got dtype {x.dtype}{where}")
    x = x.astype(np.float64)
    rank = LAYOUTS[layout][0] + 1 if layout != "auto" else x.ndim
    if x.ndim != rank or x.ndim not in (2, 3, 4):
        want = f"layout {layout}" if layout != "auto" else "(N, L), (N, C, L) or (N, C, H, W)"
        raise DataError(f"{key} has shape {x.shape}; expected {want}{where}")
    if (bad := int((~np.isfinite(x)).sum())) > 0:
        raise DataError(f"{key} holds {bad} NaN or infinite values{where}")
    if layout != "auto" and (perm := LAYOUTS[layout][1]) is not None:
        x = x.transpose(perm)
    if x.ndim == 2 or layout == "NHW":
        x = x[:, None]
    if min(x.shape[1:]) < 1 or len(x) < 1:
        raise DataError(f"{key} is empty: shape {x.shape}{where}")
    return x


def _labels(y: Any, key: str, where: str) -> np.ndarray:
    y = np.asarray(y)
    if y.ndim != 1:
        raise DataError(f"{key} must be a vector of class labels, got shape {y.shape}{where}")
    if len(y) == 0:
        raise DataError(f"{key} is empty{where}")
    if y.dtype.kind == "f":
        if not np.all(np.isfinite(y)) or np.any(y != np.round(y)):
            raise DataError(f"{key} must hold integer class labels{where}")
    elif y.dtype.kind not in "iub":
        raise DataError(f"{key} must hold integer class labels, got dtype {y.dtype}{where}")
    return y.astype(np.int64)


def _carve(x, y, part: float, rng: np.random.Generator, what: str, where: str):
    """Split off a stratified ``part`` of (x, y); returns (rest_x, rest_y, part_x, part_y)."""
    from sklearn.model_selection import train_test_split

    try:
        x_a, x_b, y_a, y_b = train_test_split(x, y, test_size=part, stratify=y,
                                              random_state=int(rng.integers(2**31)))
    except ValueError as exc:
        raise DataError(f"cannot carve the {what} split from the training data{where}: {exc}") from None
    return x_a, y_a, x_b, y_b


def _subsample(x, y, fraction: float, rng: np.random.Generator):
    """Keep ``fraction`` of every class (at least one sample each): a lower fidelity."""
    keep = []
    for c in np.unique(y):
        members = np.flatnonzero(y == c)
        n = max(1, round(fraction * len(members)))
        keep.append(rng.permutation(members)[:n])
    idx = np.sort(np.concatenate(keep))
    return x[idx], y[idx]
