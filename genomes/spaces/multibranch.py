"""``multibranch``: DAGs with branches and skip connections, in stages of falling resolution."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from ..genome import Genome
from ..ops import ACTIVATIONS
from .base import (
    Bounds,
    SearchSpace,
    choices,
    count_range,
    flag,
    odd_kernels,
    require,
    spatial_fit,
)
from .blocks import BODY_OPS, conv_block, head, new_genome, pick

__all__ = ["MultiBranchSpace"]

BLOCK_OPS = ("conv", "sepconv", "maxpool", "avgpool", "identity")


class MultiBranchSpace(SearchSpace):
    """A stem, then stages of blocks; each block reads one or two earlier nodes of its stage
    (merged by ``add`` when their channels agree, else ``concat``), and the open ends of a stage
    are merged before it is downsampled. Membership: any valid DAG of these ops within bounds.
    """

    name = "multibranch"
    vocabulary = BODY_OPS

    def __init__(self, *, input_shape: Sequence[int], num_outputs: int, stages: int | None = None,
                 min_blocks: int = 1, max_blocks: int = 4, channels: Sequence[int] = (8, 16, 32),
                 kernels: Sequence[int] = (1, 3, 5), ops: Sequence[str] = BLOCK_OPS,
                 activations: Sequence[str] = ("relu",), batchnorm: bool = True,
                 max_nodes: int | None = None, max_params: int | None = None):
        super().__init__(input_shape=input_shape, num_outputs=num_outputs, max_nodes=max_nodes,
                         max_params=max_params)
        size = min(self.input_shape[1:])
        most = 1 + max(0, int(math.log2(size / 4))) if size >= 4 else 1
        require(stages is None or (type(stages) is int and 1 <= stages <= most), "stages",
                f"must be an int in [1, {most}] for input {self.input_shape} (each stage halves "
                f"the resolution, which must stay >= 4), or null for {min(most, 3)}", stages)
        self.stages = stages
        self.min_blocks, self.max_blocks = count_range("min_blocks", min_blocks, "max_blocks",
                                                       max_blocks)
        self.channels = choices("channels", channels)
        self.kernels = odd_kernels("kernels", kernels)
        self.ops = choices("ops", ops, BLOCK_OPS)
        self.activations = choices("activations", activations, ACTIVATIONS)
        self.batchnorm = flag("batchnorm", batchnorm)
        self._stages = stages or min(most, 3)

    def _default_bounds(self) -> Bounds:
        per_block = 3  # conv, batchnorm, act
        blocks = self._stages * (self.max_blocks + 2)  # + stage merge and downsample
        return Bounds(max_nodes=10 + per_block * blocks, max_params=2_000_000)

    def _sample(self, rng: np.random.Generator) -> Genome:
        genome, x = new_genome(self.input_shape, self.num_outputs)
        size = min(self.input_shape[1:])
        act = lambda: pick(rng, self.activations)
        c_stem = pick(rng, self.channels)
        x = conv_block(genome, [x], rng, op="conv", channels=c_stem, kernels=self.kernels,
                       size=size, batchnorm=self.batchnorm, activation=act())
        channels = {x: c_stem}
        for stage in range(self._stages):
            pool = [x]
            for _ in range(int(rng.integers(self.min_blocks, self.max_blocks + 1))):
                k = 2 if len(pool) > 1 and rng.random() < 0.5 else 1
                srcs = [pool[i] for i in sorted(rng.choice(len(pool), size=k, replace=False))]
                same = len({channels[s] for s in srcs}) == 1
                merge = None if k == 1 else ("add" if same and rng.random() < 0.7 else "concat")
                c_in = channels[srcs[0]] if merge != "concat" else sum(channels[s] for s in srcs)
                op = pick(rng, [o for o in self.ops if self._fits(o, size, k)] or ["identity"])
                if op in ("conv", "sepconv"):
                    c_out = pick(rng, self.channels)
                    y = conv_block(genome, srcs, rng, op=op, channels=c_out, kernels=self.kernels,
                                   size=size, batchnorm=self.batchnorm, activation=act(), merge=merge)
                elif op == "identity":
                    c_out, y = c_in, genome.add("identity", srcs, merge=merge)
                else:
                    c_out, y = c_in, genome.add(op, srcs, merge=merge, kernel=3, stride=1, padding=1)
                channels[y] = c_out
                pool.append(y)
            ends = [n for n in pool if not genome.successors(n)]
            if len(ends) > 1:
                merge = "add" if len({channels[e] for e in ends}) == 1 else "concat"
                x = genome.add("identity", ends, merge=merge)
                channels[x] = channels[ends[0]] if merge == "add" else sum(channels[e] for e in ends)
            else:
                x = ends[0]
            if stage < self._stages - 1:
                x_down = genome.add(pick(rng, ("maxpool", "avgpool")), [x], kernel=2)
                channels[x_down], x = channels[x], x_down
                size //= 2
        head(genome, x, activation=act())
        return genome

    @staticmethod
    def _fits(op: str, size: int, n_inputs: int) -> bool:
        if op == "identity":
            return n_inputs > 1  # a one-input identity adds nothing
        if op in ("maxpool", "avgpool"):
            return bool(spatial_fit([3], size))
        return True

    def _structure_problems(self, genome: Genome) -> list[str]:
        return [f"node {n!r}: op {genome.op(n)!r} is not a multibranch op"
                for n in genome if genome.op(n) not in BODY_OPS]
