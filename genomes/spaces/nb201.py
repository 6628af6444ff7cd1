"""``nb201``: the NAS-Bench-201 space (Dong & Yang, ICLR 2020).

A 4-node cell with 6 edges and ops none, skip_connect, nor_conv_1x1, nor_conv_3x3, avg_pool_3x3,
stacked 5 cells per stage in 3 stages of 16, 32 and 64 channels: NB201's published macro
skeleton for 32x32 inputs. All 5^6 = 15,625 cells are written as the benchmark's arch strings,
e.g. ``|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|``.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence

from ..genome import Genome
from .base import require
from .cell import CellSpace

__all__ = ["NB201_OPS", "NB201Space"]

NB201_OPS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")


class NB201Space(CellSpace):
    """NAS-Bench-201's cells in its fixed skeleton; only the input shape and classes vary."""

    name = "nb201"

    def __init__(self, *, input_shape: Sequence[int] = (3, 32, 32), num_outputs: int = 10,
                 max_nodes: int | None = None, max_params: int | None = None):
        shape = tuple(input_shape)
        require(len(shape) == 3 and all(type(s) is int and s >= 12 and s % 4 == 0
                                        for s in shape[1:]), "input_shape",
                "must be (C, H, W) with H and W multiples of 4 and >= 12: NB201's skeleton halves "
                "images twice and its 3x3 ops need >= 3 pixels", input_shape)
        # Strict: its members are exactly 15,625 encodings; layer edits never land on one.
        super().__init__(input_shape=input_shape, num_outputs=num_outputs, nodes=4, ops=NB201_OPS,
                         channels=16, cells_per_stage=5, stages=3, strict=True,
                         max_nodes=max_nodes, max_params=max_params)

    def from_arch_string(self, arch: str) -> Genome:
        """The genome of an NB201 arch string; ``ValueError`` names the offending part."""
        return self.from_arch(self.parse_arch_string(arch))

    def to_arch_string(self, genome: Genome) -> str:
        """The NB201 arch string of a genome of this space; ``ValueError`` if it is not one."""
        return self.format_arch_string(self.decode(genome))

    def parse_arch_string(self, arch: str) -> tuple[str, ...]:
        """``|op~0|+|op~0|op~1|+...`` -> the tuple of edge ops in ``edges()`` order."""
        if not isinstance(arch, str):
            # ValueError, like every other malformed arch string: callers catch one kind
            raise ValueError(f"an NB201 arch string is a str, got {type(arch).__name__}")  # noqa: TRY004
        nodes = arch.split("+")
        if len(nodes) != self.nodes - 1:
            raise ValueError(f"arch string {arch!r} has {len(nodes)} node groups, needs "
                             f"{self.nodes - 1} separated by '+'")
        ops = []
        for j, group in enumerate(nodes, start=1):
            if not (group.startswith("|") and group.endswith("|")) or len(group) < 2:
                raise ValueError(f"node group {group!r} must look like '|op~0|op~1|'")
            items = group[1:-1].split("|")
            if len(items) != j:
                raise ValueError(f"node group {group!r} needs {j} edges, has {len(items)}")
            for i, item in enumerate(items):
                op, _, src = item.partition("~")
                if op not in self.ops:
                    raise ValueError(f"unknown op {op!r} in {group!r}; ops: {list(self.ops)}")
                if src != str(i):
                    raise ValueError(f"edge {item!r} in {group!r} must come from node {i}")
                ops.append(op)
        return tuple(ops)

    def format_arch_string(self, arch) -> str:
        ops = dict(zip(self.edges(), arch))
        return "+".join(
            "|" + "".join(f"{ops[i, j]}~{i}|" for i in range(j)) for j in range(1, self.nodes)
        )

    def arch_strings(self) -> Iterator[str]:
        """All 15,625 arch strings, in a fixed order."""
        for arch in itertools.product(self.ops, repeat=len(self.edges())):
            yield self.format_arch_string(arch)
