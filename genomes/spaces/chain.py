"""``chain``: a plain sequence of layers, from the input to the output head."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..genome import Genome
from ..ops import ACTIVATIONS
from ..registry import MAX_ITEMS
from .base import (
    MAX_WIDTH,
    Bounds,
    SearchSpace,
    choices,
    count_range,
    flag,
    odd_kernels,
    probability,
    require,
)
from .blocks import BODY_OPS, conv_block, head, new_genome, pick

__all__ = ["ChainSpace"]


class ChainSpace(SearchSpace):
    """Sequences of conv blocks (conv or sepconv, batch norm, activation), sometimes pooled,
    then a global-pool or flatten head with an optional hidden dense layer.

    Sampling draws channels and kernels from the listed choices; membership only asks for a
    path of chain ops within the bounds, so widened or deepened children stay in the space.
    """

    name = "chain"
    branching = False
    vocabulary = BODY_OPS

    def __init__(self, *, input_shape: Sequence[int], num_outputs: int, min_layers: int = 1,
                 max_layers: int = 5, channels: Sequence[int] = (8, 16, 32, 64),
                 kernels: Sequence[int] = (1, 3, 5), ops: Sequence[str] = ("conv", "sepconv"),
                 activations: Sequence[str] = ("relu",), batchnorm: bool = True,
                 pool_prob: float = 0.3, hidden: Sequence[int] = (0, 32, 64),
                 flatten_prob: float = 0.0, max_nodes: int | None = None,
                 max_params: int | None = None):
        super().__init__(input_shape=input_shape, num_outputs=num_outputs, max_nodes=max_nodes,
                         max_params=max_params)
        self.min_layers, self.max_layers = count_range("min_layers", min_layers, "max_layers",
                                                       max_layers)
        self.channels = choices("channels", channels)
        self.kernels = odd_kernels("kernels", kernels)
        self.ops = choices("ops", ops, ("conv", "sepconv"))
        self.activations = choices("activations", activations, ACTIVATIONS)
        self.batchnorm = flag("batchnorm", batchnorm)
        self.pool_prob = probability("pool_prob", pool_prob)
        self.flatten_prob = probability("flatten_prob", flatten_prob)
        require(isinstance(hidden, (list, tuple)) and 0 < len(hidden) <= MAX_ITEMS
                and all(type(h) is int and 0 <= h <= MAX_WIDTH for h in hidden), "hidden",
                f"must be a non-empty list of ints in [0, {MAX_WIDTH:,}] (0: no hidden layer)", hidden)
        self.hidden = tuple(hidden)

    def _default_bounds(self) -> Bounds:
        return Bounds(max_nodes=8 + 4 * self.max_layers, max_params=2_000_000)

    def _sample(self, rng: np.random.Generator) -> Genome:
        genome, x = new_genome(self.input_shape, self.num_outputs)
        size = min(self.input_shape[1:])
        for _ in range(int(rng.integers(self.min_layers, self.max_layers + 1))):
            x = conv_block(genome, [x], rng, op=pick(rng, self.ops), channels=pick(rng, self.channels),
                           kernels=self.kernels, size=size, batchnorm=self.batchnorm,
                           activation=pick(rng, self.activations))
            if size >= 4 and rng.random() < self.pool_prob:
                x = genome.add(pick(rng, ("maxpool", "avgpool")), [x], kernel=2)
                size //= 2
        head(genome, x, flatten=bool(rng.random() < self.flatten_prob),
             hidden=pick(rng, self.hidden), activation=pick(rng, self.activations))
        return genome

    def _structure_problems(self, genome: Genome) -> list[str]:
        out = []
        for node in genome:
            op = genome.op(node)
            if op not in BODY_OPS:
                out.append(f"node {node!r}: op {op!r} is not a chain op")
            if len(genome.inputs(node)) > 1 or len(genome.successors(node)) > 1:
                out.append(f"node {node!r}: a chain node has at most one input and one consumer")
        return out
