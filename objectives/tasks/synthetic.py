"""``synthetic``: a generated, learnable classification problem for tests and examples.

Each class has a random prototype; a sample is its class prototype plus Gaussian noise.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from genomes.registry import shown

from .base import MAX_CLASSES, DataError, Task, prepare

__all__ = ["MAX_SAMPLES", "MAX_VALUES", "synthetic"]

MAX_SAMPLES = 1_000_000
MAX_VALUES = 50_000_000  # samples (with the test quarter) x values per sample: 400 MB of float64


def synthetic(*, input_shape: Sequence[int] = (1, 8, 8), num_classes: int = 3, samples: int = 240,
              noise: float = 1.0, seed: int = 0, val_fraction: float = 0.2, fraction: float = 1.0,
              standardize: bool = True, with_test: bool = True) -> Task:
    shape = tuple(input_shape)
    if len(shape) not in (2, 3) or min(shape) < 1:
        raise DataError(f"option 'input_shape' must be (C, L) or (C, H, W), got {shown(input_shape)}")
    if not 2 <= num_classes <= MAX_CLASSES:
        raise DataError(f"option 'num_classes' must be an int in [2, {MAX_CLASSES:,}], "
                        f"got {shown(num_classes)}")
    if not 4 * num_classes <= samples <= MAX_SAMPLES:
        raise DataError(f"option 'samples' ({samples}) must be >= 4 x num_classes ({num_classes}) "
                        f"and <= {MAX_SAMPLES:,}")
    total = samples + (samples // 4 if with_test else 0)
    if total * math.prod(shape) > MAX_VALUES:
        raise DataError(f"option 'samples' ({samples}) x input_shape {shape} makes "
                        f"{total * math.prod(shape):,} values with the test split; at most "
                        f"{MAX_VALUES:,}")
    if noise < 0:
        raise DataError(f"option 'noise' must be >= 0, got {shown(noise)}")
    data = np.random.default_rng([seed, 7])  # the data do not move with other uses of seed
    prototypes = data.normal(size=(num_classes, *shape))
    y = np.arange(total) % num_classes
    x = prototypes[y] + noise * data.normal(size=(total, *shape))
    test = {"x_test": x[samples:], "y_test": y[samples:]} if with_test else {}
    return prepare("synthetic", x[:samples], y[:samples], **test, seed=seed,
                   val_fraction=val_fraction, fraction=fraction, standardize=standardize)
