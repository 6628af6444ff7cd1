"""A synthetic NAS-Bench-201 table for tests: every cell of the space with made-up values, so a
tabular run (nothing trained) needs neither the real table nor a download."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from genomes import spaces

SPACE = spaces.get("nb201", input_shape=(3, 32, 32), num_outputs=10)


def synthetic_table(path: Path, *, seed: int = 0, size: bool = False) -> Path:
    """``arch,acc`` (and ``size`` when asked) for all 15,625 cells, drawn from ``seed``."""
    rng = np.random.default_rng(seed)
    rows = []
    for arch in SPACE.arch_strings():
        row = f"{arch},{rng.uniform(50, 95):.2f}"
        if size:
            row += f",{rng.uniform(0.1, 1.5):.3f}"
        rows.append(row + "\n")
    path.write_text("arch,acc" + (",size" if size else "") + "\n" + "".join(rows))
    return path
