"""``digits``: scikit-learn's bundled 8x8 handwritten digits (1,797 images, 10 classes).

It ships inside scikit-learn, so nothing is downloaded. The test split (20 %) is fixed (seed 0)
so that test accuracy compares across runs; the validation split is carved with the run seed.
"""

from __future__ import annotations

from .base import Task, _carve, prepare

__all__ = ["digits"]

TEST_FRACTION = 0.2


def digits(*, seed: int = 0, val_fraction: float = 0.2, fraction: float = 1.0,
           standardize: bool = True) -> Task:
    import numpy as np
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    x = x.reshape(-1, 1, 8, 8)
    x, y, x_test, y_test = _carve(x, y, TEST_FRACTION, np.random.default_rng(0), "test", "")
    return prepare("digits", x, y, x_test=x_test, y_test=y_test, seed=seed,
                   val_fraction=val_fraction, fraction=fraction, standardize=standardize)
