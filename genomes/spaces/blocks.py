"""Building blocks shared by the hand-written spaces: conv blocks and the output head."""

from __future__ import annotations

import numpy as np

from ..genome import Genome
from .base import spatial_fit

__all__ = ["BODY_OPS", "conv_block", "head", "new_genome", "pick"]

# The ops of the hand-written spaces (chain, multibranch): everything but ``zero``.
BODY_OPS = frozenset({"input", "output", "conv", "sepconv", "batchnorm", "act", "maxpool",
                      "avgpool", "globalpool", "flatten", "dense", "identity"})


def pick(rng: np.random.Generator, values):
    """One element of a sequence, drawn with ``rng`` (keeps Python types, unlike rng.choice)."""
    return values[int(rng.integers(len(values)))]


def new_genome(input_shape, num_outputs) -> tuple[Genome, str]:
    genome = Genome(input_shape, num_outputs)
    return genome, genome.add("input", id="input")


def conv_block(genome: Genome, inputs: list[str], rng: np.random.Generator, *, op: str,
               channels: int, kernels, size: int, batchnorm: bool, activation: str,
               merge: str | None = None, stride: int = 1) -> str:
    """conv (or sepconv) -> [batchnorm] -> activation; the conv takes and merges ``inputs``."""
    kernel = pick(rng, spatial_fit(kernels, size) or [1])
    x = genome.add(op, inputs, merge=merge, channels=channels, kernel=kernel, stride=stride,
                   bias=not batchnorm)
    if batchnorm:
        x = genome.add("batchnorm", [x])
    return genome.add("act", [x], fn=activation)


def head(genome: Genome, x: str, *, flatten: bool = False, hidden: int = 0,
         activation: str = "relu") -> str:
    """globalpool (or flatten) -> [dense(hidden) -> act] -> dense(outputs) -> output."""
    x = genome.add("flatten" if flatten else "globalpool", [x])
    if hidden:
        x = genome.add("act", [genome.add("dense", [x], units=hidden)], fn=activation)
    x = genome.add("dense", [x], units=genome.num_outputs)
    return genome.add("output", [x], id="output")
