"""``waveforms``: a generated 1-D task where a network must find two short bursts and their order.

A class is an ordered pair of waveform shapes (sine, square, sawtooth, ...): a burst of the
first, a gap, a burst of the second, placed at a random shift, each burst with its own random
period, phase and amplitude, among distractor bursts shared by all classes and additive noise.
Classes come in reversed pairs (sine-then-square and square-then-sine), so detectors of local
shape tell only which two shapes are present; the order needs features that span both bursts
and the gap, i.e. depth and pooling, while shifts, scaling and noise reward small shared
detectors over flat or wide models. Generated with NumPy from ``data_seed`` in well under a
second at the defaults; the test split is fixed (it depends on the data options, never on the
run seed, nor on ``samples``), and the run seed only carves validation, as for ``digits``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from genomes.registry import option_problem, shown

from .base import DataError, Task, prepare

__all__ = ["MAX_CLASSES", "MAX_VALUES", "PAIRS", "SHAPES", "waveforms"]

SHAPES = ("sine", "square", "sawtooth", "pulse", "chirp", "triangle", "ramp", "rectified")
PERIOD = 8.0  # samples per cycle of a burst before stretching
CYCLES = 2  # cycles per burst
MAX_VALUES = 20_000_000  # (samples + test_samples) x length: 160 MB of float64 per copy
MAX_LENGTH = 65_536


def _pairs() -> tuple[tuple[int, int], ...]:
    """Ordered pairs of distinct shapes, each followed by its reverse (so every even number of
    classes holds both orders of each pair); neighbours in ``SHAPES`` first."""
    k, out = len(SHAPES), []
    for step in range(1, k):
        for i in range(k):
            j = (i + step) % k
            if (i, j) not in out and (j, i) not in out:
                out += [(i, j), (j, i)]
    return tuple(out)


PAIRS = _pairs()
MAX_CLASSES = len(PAIRS)  # 56


def waveforms(*, seed: int = 0, val_fraction: float = 0.2, fraction: float = 1.0,
              standardize: bool = True, classes: int = 8, length: int = 128,
              samples: int = 4000, test_samples: int = 2000, noise: float = 0.15,
              shift: float = 1.0, scale: float = 2.0, stretch: float = 1.5, gap: int = 16,
              distractors: int = 2, data_seed: int = 0) -> Task:
    """Generate the task (``samples`` for training and validation, ``test_samples`` for the
    fixed test split); an option out of range is a ``DataError`` that names it.

    ``noise``: std of the additive Gaussian noise (bursts have amplitude about 1); ``shift``:
    how much of the free room the pair may move over (0: always centred, 1: anywhere);
    ``scale``: each burst's amplitude is drawn log-uniformly from [1/scale, scale];
    ``stretch``: each burst's period likewise from [8/stretch, 8*stretch] samples; ``gap``:
    samples between the two bursts, drawn from [gap/2, gap]; ``distractors``: bursts (a
    Gaussian bump or a one-cycle wavelet) placed beside the pair, the same for every class.
    """
    options: dict[str, Any] = {
        "classes": classes, "length": length, "samples": samples, "test_samples": test_samples,
        "noise": noise, "shift": shift, "scale": scale, "stretch": stretch, "gap": gap,
        "distractors": distractors, "data_seed": data_seed}
    for key, value in options.items():  # types first, as the registry does for configs
        if (problem := option_problem(waveforms, key, value)) is not None:
            raise DataError(f"option {key!r} {problem}")
    _need(2 <= classes <= MAX_CLASSES, "classes", f"must be an int in [2, {MAX_CLASSES}]", classes)
    _need(0 <= noise <= 100, "noise", "must be a number in [0, 100]", noise)
    _need(0 <= shift <= 1, "shift", "must be a number in [0, 1]", shift)
    _need(1 <= scale <= 100, "scale", "must be a number in [1, 100]", scale)
    _need(1 <= stretch <= 2, "stretch", "must be a number in [1, 2]", stretch)
    _need(0 <= gap <= 1024, "gap", "must be an int in [0, 1024]", gap)
    _need(0 <= distractors <= 16, "distractors", "must be an int in [0, 16]", distractors)
    _need(data_seed >= 0, "data_seed", "must be an int >= 0", data_seed)
    shortest = max(32, _longest_pair(stretch, gap))
    _need(shortest <= length <= MAX_LENGTH, "length",
          f"must be an int in [{shortest}, {MAX_LENGTH}] (two bursts and the gap span up to "
          f"{_longest_pair(stretch, gap)} samples at stretch {stretch} and gap {gap})", length)
    _need(10 * classes <= samples, "samples",
          f"must be an int >= 10 x classes ({10 * classes}), so that validation holds every class",
          samples)
    _need(2 * classes <= test_samples, "test_samples",
          f"must be an int >= 2 x classes ({2 * classes})", test_samples)
    if (samples + test_samples) * length > MAX_VALUES:
        raise DataError(f"option 'samples' ({samples}) with test_samples ({test_samples}) x length "
                        f"({length}) makes {(samples + test_samples) * length:,} values; at most "
                        f"{MAX_VALUES:,}")
    make = {"classes": classes, "length": length, "noise": float(noise), "shift": float(shift),
            "scale": float(scale), "stretch": float(stretch), "gap": gap, "distractors": distractors}
    # Separate streams: the test split does not move with ``samples`` (nor with the run seed).
    x, y = _generate(samples, np.random.default_rng([data_seed, 14, 0]), **make)
    x_test, y_test = _generate(test_samples, np.random.default_rng([data_seed, 14, 1]), **make)
    return prepare("waveforms", x, y, x_test=x_test, y_test=y_test, seed=seed,
                   val_fraction=val_fraction, fraction=fraction, standardize=standardize,
                   num_classes=classes, source="the waveforms task")


def _need(ok: bool, key: str, what: str, value: Any) -> None:
    if not ok:
        raise DataError(f"option {key!r} {what}, got {shown(value)}")


def _longest_pair(stretch: float, gap: int) -> int:
    return 2 * math.ceil(CYCLES * PERIOD * stretch) + gap


def _waves(index: int, phase: np.ndarray) -> np.ndarray:
    """Shape ``index`` of ``SHAPES`` at ``phase`` (cycles; ``phase - offset`` runs from 0 to
    ``CYCLES`` over the burst), amplitude about 1."""
    frac = phase % 1.0
    name = SHAPES[index]
    if name == "sine":
        return np.sin(2 * np.pi * phase)
    if name == "square":
        return np.where(frac < 0.5, 1.0, -1.0)
    if name == "sawtooth":
        return 2 * frac - 1
    if name == "pulse":
        return np.where(frac < 0.2, 1.0, -0.25)
    if name == "chirp":  # the frequency rises from 0.5x to 1.5x over the burst
        return np.sin(2 * np.pi * phase * (0.5 + 0.5 * phase / (CYCLES + 1)))
    if name == "triangle":
        return 1 - 4 * np.abs(frac - 0.5)
    if name == "ramp":
        return 1 - 2 * frac
    return 2 * np.abs(np.sin(np.pi * phase)) - 1  # rectified


def _generate(n: int, rng: np.random.Generator, *, classes: int, length: int, noise: float,
              shift: float, scale: float, stretch: float, gap: int, distractors: int):
    """``n`` signals (float64, (n, length)) and balanced labels, drawn from ``rng``."""
    y = rng.permutation(np.arange(n) % classes)
    pairs = np.array(PAIRS[:classes])[y]  # (n, 2) shape indices
    t = np.arange(length, dtype=np.float64)[None, :]
    log_stretch, log_scale = math.log(stretch), math.log(scale)
    period = PERIOD * np.exp(rng.uniform(-log_stretch, log_stretch, size=(n, 2)))
    extent = np.ceil(CYCLES * period).astype(np.int64)  # samples per burst
    gaps = rng.integers(gap // 2, gap + 1, size=n)
    span = extent[:, 0] + gaps + extent[:, 1]
    room = length - span
    start = np.round(room * (0.5 + shift * (rng.random(n) - 0.5))).astype(np.int64)
    offset = rng.random((n, 2))  # phase, in cycles
    amp = np.exp(rng.uniform(-log_scale, log_scale, size=(n, 2)))
    x = np.zeros((n, length))
    begin = start
    for k in range(2):
        phase = (t - begin[:, None]) / period[:, k:k + 1]
        inside = (phase >= 0) & (phase < CYCLES)
        phase = np.clip(phase, 0, CYCLES) + offset[:, k:k + 1]
        for s in np.unique(pairs[:, k]):
            rows = pairs[:, k] == s
            x[rows] += np.where(inside[rows], amp[rows, k:k + 1] * _waves(int(s), phase[rows]), 0.0)
        begin = begin + extent[:, k] + gaps
    for _ in range(distractors):
        x += _distractor(n, length, start, start + span, rng, log_scale)
    return x + noise * rng.normal(size=x.shape), y


def _distractor(n, length, start, end, rng, log_scale):
    """A Gaussian bump or a one-cycle wavelet of random sign, width and amplitude, centred
    outside the pair ``[start, end)`` with its body clear of it (rows where no such place
    turns up in a few tries get none)."""
    t = np.arange(length, dtype=np.float64)[None, :]
    width = rng.uniform(2.0, 5.0, size=n)
    half = np.ceil(2 * width).astype(np.int64)
    centre, found = np.zeros(n, dtype=np.int64), np.zeros(n, dtype=bool)
    for _ in range(8):
        c = rng.integers(0, length, size=n)
        ok = ~found & ((c + half < start) | (c - half >= end))
        centre, found = np.where(ok, c, centre), found | ok
    u = (t - centre[:, None]) / width[:, None]
    wavelet = (rng.random(n) < 0.5)[:, None]
    cycles = rng.uniform(0.15, 0.3, size=(n, 1))  # wavelet cycles per width
    shape = np.exp(-0.5 * u ** 2) * np.where(wavelet, np.sin(2 * np.pi * cycles * u), 1.0)
    sign = np.where(rng.random(n) < 0.5, -1.0, 1.0)
    amp = sign * np.exp(rng.uniform(-log_scale, log_scale, size=n)) * found
    return amp[:, None] * shape
