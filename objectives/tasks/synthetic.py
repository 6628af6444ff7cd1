"""``synthetic``: a generated, learnable classification problem for tests and examples.

Each class has a random prototype; a sample is its class prototype plus Gaussian noise.
"""

from __future__ import annotations

import numpy as np

from .base import DataError, Task, prepare

__all__ = ["synthetic"]


def synthetic(*, input_shape=(1, 8, 8), num_classes: int = 3, samples: int = 240,
              noise: float = 1.0, seed: int = 0, val_fraction: float = 0.2, fraction: float = 1.0,
              standardize: bool = True, with_test: bool = True) -> Task:
    shape = tuple(input_shape)
    if len(shape) not in (2, 3) or min(shape) < 1:
        raise DataError(f"option 'input_shape' must be (C, L) or (C, H, W), got {input_shape!r}")
    if num_classes < 2 or samples < 4 * num_classes:
        raise DataError(f"option 'samples' ({samples}) must be >= 4 x num_classes ({num_classes})")
    data = np.random.default_rng([seed, 7])  # the data do not move with other uses of seed
    prototypes = data.normal(size=(num_classes, *shape))
    total = samples + (samples // 4 if with_test else 0)
    y = np.arange(total) % num_classes
    x = prototypes[y] + noise * data.normal(size=(total, *shape))
    test = {"x_test": x[samples:], "y_test": y[samples:]} if with_test else {}
    return prepare("synthetic", x[:samples], y[:samples], **test, seed=seed,
                   val_fraction=val_fraction, fraction=fraction, standardize=standardize)
