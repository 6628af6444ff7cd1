"""Write runs/data/signals.npz: a small 1-D signal task for runs/signals_npz.yaml.

Three classes of 2-channel signals of length 128 (a sine, a square wave and a chirp, each with
random phase, amplitude and noise); 900 training and 300 test samples.

    python runs/make_signals.py [--out runs/data/signals.npz] [--seed 0]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np


def make(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    t = np.linspace(0, 1, 128)
    y = np.arange(n) % 3
    phase = rng.uniform(0, 2 * np.pi, size=(n, 1))
    freq = rng.uniform(3, 6, size=(n, 1))
    waves = np.stack([np.sin(2 * np.pi * freq * t + phase),
                      np.sign(np.sin(2 * np.pi * freq * t + phase)),
                      np.sin(2 * np.pi * (freq + 8 * t) * t + phase)], axis=1)
    base = waves[np.arange(n), y]
    x = np.stack([base, np.roll(base, 5, axis=1)], axis=1) * rng.uniform(0.5, 1.5, size=(n, 1, 1))
    return (x + 0.4 * rng.normal(size=x.shape)).astype(np.float32), y


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default="runs/data/signals.npz")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    rng = np.random.default_rng(args.seed)
    x, y = make(900, rng)
    x_test, y_test = make(300, rng)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(args.out, x=x, y=y, x_test=x_test, y_test=y_test)
    print(f"wrote {args.out}: x {x.shape}, x_test {x_test.shape}; now: evonas run "
          f"runs/signals_npz.yaml")


if __name__ == "__main__":
    main()
