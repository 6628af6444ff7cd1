"""``cell``: one small DAG with an op on every edge, stacked in a fixed macro skeleton.

The skeleton is NAS-Bench-201's: a stem (conv 3x3, batch norm), stages of ``cells_per_stage``
cells, a residual reduction block between stages (the channels double, the resolution halves),
and a head (batch norm, ReLU, global average pool, dense). Inside a cell, node ``j`` sums the
ops on its edges from every node ``i < j``; the last node is the cell's output. Every cell of a
genome has the same architecture, written as a tuple of edge ops in the order of ``edges()``.

In the genome, an edge op is a short chain of nodes (``skip_connect`` is a plain edge) and each
cell node is an ``identity`` node merging its inputs by ``add``. Node ids name their role
(``c3_e0_2_1``: cell 3, edge 0->2, the chain's second node), but ``decode`` does not rely on
them: it reads the architecture back from the graph and compares the genome with a fresh
encoding of it.

Sampling always gives such stacks of identical cells. Membership of ``cell`` is looser, so that
network morphisms can grow a sampled network (LEMONADE-style) and stay in the space: a legal
genome of cell-vocabulary ops that keeps the skeleton's stem (conv, batch norm) and head
(global pooling, dense) and stays within the bounds (by default twice the largest sampled
network). ``nb201`` is strict: only exact encodings of its 15,625 cells are members.
"""

from __future__ import annotations

from typing import ClassVar, Sequence

import numpy as np

from ..genome import Genome, _normalized
from .base import MAX_WIDTH, Bounds, SearchSpace, choices, require
from .blocks import BODY_OPS, pick

__all__ = ["CELL_OPS", "CellSpace"]

_RELU = ("act", {"fn": "relu"})
_BN = ("batchnorm", {})
CELL_OPS: dict[str, tuple[tuple[str, dict], ...]] = {
    "none": (("zero", {}),),
    "skip_connect": (),
    "nor_conv_1x1": (_RELU, ("conv", {"kernel": 1, "bias": False}), _BN),
    "nor_conv_3x3": (_RELU, ("conv", {"kernel": 3, "bias": False}), _BN),
    "sep_conv_3x3": (_RELU, ("sepconv", {"kernel": 3, "bias": False}), _BN),
    "avg_pool_3x3": (("avgpool", {"kernel": 3, "stride": 1, "padding": 1}),),
    "max_pool_3x3": (("maxpool", {"kernel": 3, "stride": 1, "padding": 1}),),
}
_SIGNATURES = {
    name: tuple((kind, p.get("kernel")) for kind, p in chain) for name, chain in CELL_OPS.items()
}
_MAX_CHAIN = max(len(c) for c in CELL_OPS.values())
MAX_CELL_NODES = 10  # 45 edges; a network of 20 such cells per stage takes seconds to draw
MAX_CELLS_PER_STAGE = 20
CELL_VOCABULARY = BODY_OPS | {"zero"}


class _NoMatch(Exception):
    """The graph does not have the skeleton's shape; the message says where."""


class CellSpace(SearchSpace):
    """Cell-based networks: ``nodes`` cell nodes, one op from ``ops`` on every edge."""

    name = "cell"
    strict: ClassVar[bool] = False  # True: only exact encodings are members (nb201)

    def __init__(self, *, input_shape: Sequence[int], num_outputs: int, nodes: int = 4,
                 ops: Sequence[str] = tuple(CELL_OPS), channels: int = 16,
                 cells_per_stage: int = 1, stages: int | None = None,
                 max_nodes: int | None = None, max_params: int | None = None):
        super().__init__(input_shape=input_shape, num_outputs=num_outputs, max_nodes=max_nodes,
                         max_params=max_params)
        require(type(nodes) is int and 2 <= nodes <= MAX_CELL_NODES, "nodes",
                f"must be an int in [2, {MAX_CELL_NODES}]", nodes)
        self.nodes = nodes
        self.ops = choices("ops", ops, CELL_OPS)
        require(type(channels) is int and 1 <= channels <= MAX_WIDTH, "channels",
                f"must be an int in [1, {MAX_WIDTH:,}]", channels)
        self.channels = channels
        require(type(cells_per_stage) is int and 1 <= cells_per_stage <= MAX_CELLS_PER_STAGE,
                "cells_per_stage", f"must be an int in [1, {MAX_CELLS_PER_STAGE}]", cells_per_stage)
        self.cells_per_stage = cells_per_stage
        most = self._most_stages()
        require(most >= 1, "input_shape", "needs every spatial size >= 3 for the 3x3 stem",
                self.input_shape)
        require(stages is None or (type(stages) is int and 1 <= stages <= most), "stages",
                f"must be an int in [1, {most}] for input {self.input_shape} (each reduction "
                f"halves an even size and must leave >= 3), or null for {min(most, 3)}", stages)
        self.stages = stages
        self._stages = stages or min(most, 3)
        self._bounds: Bounds | None = None

    # ---------------------------------------------------------------- architecture <-> genome
    def edges(self) -> list[tuple[int, int]]:
        """Cell edges ``(i, j)`` in architecture order: by target node, then source."""
        return [(i, j) for j in range(1, self.nodes) for i in range(j)]

    def encode(self, arch) -> Genome:
        """The genome of a cell architecture (one op name per edge, in ``edges()`` order)."""
        return Genome._assemble(self.input_shape, self.num_outputs, self._records(arch))

    def _records(self, arch) -> list[tuple]:
        """The encoding as ``(id, op, params, inputs, merge)`` records, in topological order."""
        arch = tuple(arch)
        if len(arch) != len(self.edges()) or any(op not in self.ops for op in arch):
            raise ValueError(f"a {self.name} architecture is {len(self.edges())} ops from "
                             f"{list(self.ops)}, got {arch}")
        records: list[tuple] = []

        def add(node: str, op: str, inputs: list[str], merge: str | None = None, **params) -> str:
            records.append((node, op, params, inputs, merge))
            return node

        c = self.channels
        x = add("input", "input", [])
        x = add("stem_conv", "conv", [x], channels=c, kernel=3, bias=False)
        x = add("stem_bn", "batchnorm", [x])
        cell = 0
        for stage in range(self._stages):
            if stage:
                x, c = self._reduction(add, x, stage, 2 * c), 2 * c
            for _ in range(self.cells_per_stage):
                x, cell = self._cell(add, x, cell, c, arch), cell + 1
        x = add("head_bn", "batchnorm", [x])
        x = add("head_act", "act", [x], fn="relu")
        x = add("head_pool", "globalpool", [x], mode="avg")
        x = add("head_dense", "dense", [x], units=self.num_outputs)
        add("output", "output", [x])
        return records

    def decode(self, genome: Genome) -> tuple[str, ...]:
        """The cell architecture of a genome of this space; ``ValueError`` if it is not one.

        Reads the architecture off the graph, then checks that every node and edge equals the
        encoding of that architecture, so nothing outside the skeleton slips through.
        """
        try:
            arch, names = self._read(genome)
        except _NoMatch as exc:
            raise ValueError(f"not a genome of the {self.name} space: {exc}") from None
        if not self._matches(genome, arch, names):
            raise ValueError(f"not a genome of the {self.name} space: it differs from the "
                             f"skeleton's encoding of its own cell architecture (channels, op "
                             f"parameters, extra nodes, or cells that are not all alike)")
        return arch

    def _matches(self, genome: Genome, arch: tuple[str, ...], names: dict[str, str]) -> bool:
        """Whether ``genome``, its nodes renamed by ``names``, equals the encoding of ``arch``."""
        records, g = self._records(arch), genome._g
        actual = {role: node for node, role in names.items()}
        if not len(records) == len(actual) == len(names) == len(g):
            return False
        if g.number_of_edges() != sum(len(r[3]) for r in records):
            return False
        for role, op, params, inputs, merge in records:
            node = actual.get(role)
            d = g.nodes[node] if node is not None else None
            if d is None or d["op"] != op or d.get("merge") != merge:
                return False
            if d["params"] != _normalized(op, params):
                return False
            if [names[u] for u in genome.inputs(node)] != inputs:
                return False
        return True

    # ---------------------------------------------------------------- SearchSpace hooks
    def _sample(self, rng: np.random.Generator) -> Genome:
        return self.encode(pick(rng, self.ops) for _ in self.edges())

    def _default_bounds(self) -> Bounds:
        # Edges are independent, so the op heaviest on one edge is heaviest on all of them.
        if self._bounds is None:
            full = [self.encode([op] * len(self.edges())) for op in self.ops]
            room = 1 if self.strict else 2  # room for morphisms to grow a sampled network
            self._bounds = Bounds(room * max(len(g) for g in full),
                                  room * max(g.num_params() for g in full))
        return self._bounds

    def _structure_problems(self, genome: Genome) -> list[str]:
        try:
            self.decode(genome)
            return []
        except ValueError as exc:
            if self.strict:
                return [str(exc)]
        return self._skeleton_problems(genome)

    @staticmethod
    def _skeleton_problems(genome: Genome) -> list[str]:
        """What a grown cell genome must keep: the cell vocabulary, the stem and the head."""
        out = [f"node {n!r}: op {genome.op(n)!r} is not a cell-space op"
               for n in genome if genome.op(n) not in CELL_VOCABULARY]
        stem = genome.successors(genome.input_node)
        if len(stem) != 1 or genome.op(stem[0]) != "conv" or [
                genome.op(s) for s in genome.successors(stem[0])] != ["batchnorm"]:
            out.append("the stem (input -> conv -> batch norm) is gone")
        head = genome.inputs(genome.output_node)
        if len(head) != 1 or genome.op(head[0]) != "dense" or [
                genome.op(p) for p in genome.inputs(head[0])] != ["globalpool"]:
            out.append("the head (global pooling -> dense -> output) is gone")
        return out

    # ---------------------------------------------------------------- internals
    def _most_stages(self) -> int:
        """1 + how often every spatial size can be halved exactly and stay >= 3."""
        sizes = self.input_shape[1:]
        if not sizes or min(sizes) < 3:
            return 0
        stages = 1
        while all(s % 2 == 0 and s // 2 >= 3 for s in sizes):
            sizes = tuple(s // 2 for s in sizes)
            stages += 1
        return stages

    @staticmethod
    def _reduction(add, x: str, stage: int, c: int) -> str:
        """NB201's residual block to ``c`` channels at half the resolution:
        (relu, conv 3x3 /2, bn, relu, conv 3x3, bn) + (avgpool /2, conv 1x1)."""
        r = f"r{stage}"
        a = add(f"{r}_a0", "act", [x], fn="relu")
        a = add(f"{r}_a1", "conv", [a], channels=c, kernel=3, stride=2, bias=False)
        a = add(f"{r}_a2", "batchnorm", [a])
        a = add(f"{r}_a3", "act", [a], fn="relu")
        a = add(f"{r}_a4", "conv", [a], channels=c, kernel=3, bias=False)
        a = add(f"{r}_a5", "batchnorm", [a])
        b = add(f"{r}_b0", "avgpool", [x], kernel=2, stride=2)
        b = add(f"{r}_b1", "conv", [b], channels=c, kernel=1, bias=False)
        return add(f"{r}_out", "identity", [a, b], merge="add")

    def _cell(self, add, x: str, cell: int, c: int, arch: tuple[str, ...]) -> str:
        nodes, ops = [x], dict(zip(self.edges(), arch))
        for j in range(1, self.nodes):
            inputs = []
            for i in range(j):
                y = nodes[i]
                for t, (kind, params) in enumerate(CELL_OPS[ops[i, j]]):
                    extra = {"channels": c} if kind in ("conv", "sepconv") else {}
                    y = add(f"c{cell}_e{i}_{j}_{t}", kind, [y], **params, **extra)
                inputs.append(y)
            merge = "add" if len(inputs) > 1 else None
            nodes.append(add(f"c{cell}_n{j}", "identity", inputs, merge=merge))
        return nodes[-1]

    def _read(self, genome: Genome) -> tuple[tuple[str, ...], dict[str, str]]:
        """Walk the skeleton from the input: (architecture of the first cell, {node: role id})."""
        g, names = genome._g, {}  # read-only walk; skips the copy that genome.graph makes
        sources = [n for n in g if g.nodes[n]["op"] == "input"]
        if len(sources) != 1:
            raise _NoMatch("needs exactly one input node")
        names[sources[0]] = "input"
        x = self._path(g, sources[0], ["stem_conv", "stem_bn"], names)
        arch, cell = None, 0
        for stage in range(self._stages):
            if stage:
                x = self._read_reduction(g, x, stage, names)
            for _ in range(self.cells_per_stage):
                cell_arch, x = self._read_cell(g, x, cell, names)
                arch, cell = arch or cell_arch, cell + 1
        self._path(g, x, ["head_bn", "head_act", "head_pool", "head_dense", "output"], names)
        return arch, names

    @staticmethod
    def _path(g, x: str, roles: list[str], names: dict) -> str:
        for role in roles:
            succ = list(g.successors(x))
            if len(succ) != 1:
                raise _NoMatch(f"node {x!r} should feed one node ({role}), feeds {len(succ)}")
            x = succ[0]
            names[x] = role
        return x

    def _read_reduction(self, g, x: str, stage: int, names: dict) -> str:
        r, heads = f"r{stage}", {g.nodes[s]["op"]: s for s in g.successors(x)}
        if sorted(heads) != ["act", "avgpool"] or g.out_degree(x) != 2:
            raise _NoMatch(f"node {x!r} should start a reduction block (act and avgpool branches)")
        names[heads["act"]], names[heads["avgpool"]] = f"{r}_a0", f"{r}_b0"
        a = self._path(g, heads["act"], [f"{r}_a{t}" for t in range(1, 6)], names)
        b = self._path(g, heads["avgpool"], [f"{r}_b1"], names)
        out = self._path(g, a, [f"{r}_out"], names)
        if list(g.successors(b)) != [out]:
            raise _NoMatch(f"the reduction block after {x!r} does not close with one merge")
        return out

    def _read_cell(self, g, x0: str, cell: int, names: dict) -> tuple[tuple[str, ...], str]:
        def follow(s):
            path = []
            while g.nodes[s]["op"] != "identity":
                path.append(s)
                succ = list(g.successors(s))
                if len(succ) != 1 or len(path) > _MAX_CHAIN:
                    raise _NoMatch(f"node {s!r} is not on an edge-op chain of cell {cell}")
                s = succ[0]
            return path, s

        ends = {follow(s)[1] for s in g.successors(x0)}
        nodes = [x0] + sorted(ends, key=g.in_degree)
        if [g.in_degree(n) for n in nodes[1:]] != list(range(1, self.nodes)):
            raise _NoMatch(f"cell {cell} (from node {x0!r}) lacks the {self.nodes}-node DAG shape")
        index = {n: j for j, n in enumerate(nodes)}
        ops: dict[tuple[int, int], str] = {}
        for i in range(self.nodes - 1):
            for s in g.successors(nodes[i]):
                path, end = follow(s)
                j = index.get(end, -1)
                if j <= i or (i, j) in ops:
                    raise _NoMatch(f"node {s!r} breaks the edge structure of cell {cell}")
                sig = tuple((g.nodes[p]["op"], g.nodes[p]["params"].get("kernel")) for p in path)
                found = [op for op in self.ops if _SIGNATURES[op] == sig]
                if not found:
                    raise _NoMatch(f"edge {i}->{j} of cell {cell} (at node {s!r}) is no op of "
                                   f"{list(self.ops)}")
                ops[i, j] = found[0]
                names.update((p, f"c{cell}_e{i}_{j}_{t}") for t, p in enumerate(path))
        names.update((n, f"c{cell}_n{j}") for j, n in enumerate(nodes) if j)
        if len(ops) != len(self.edges()):
            raise _NoMatch(f"cell {cell} misses edges")
        return tuple(ops[e] for e in self.edges()), nodes[-1]
