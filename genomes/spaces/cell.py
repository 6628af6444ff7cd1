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
network). With ``strict=True`` (always for ``nb201``) only exact encodings of cell
architectures are members; operators then cannot edit layers, and mutation changes one edge op
instead (``mutate_edge``, the regularised evolution mutation of Real et al., AAAI 2019).

``encode`` gives predictors a one-hot vector of the edge ops; see its docstring for genomes that
no longer decode.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..checks import normalized
from ..genome import Genome
from .base import MAX_WIDTH, Bounds, SearchSpace, choices, flag, require
from .blocks import BODY_OPS, pick
from .encoding import describe, description_names

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
RECORDS_KEPT = 256  # encodings whose records are kept (about 30 kB each), across instances
# (space settings, architecture) -> records, least recently used first. Module-level, so that a
# space built per call (``spaces.get`` in a table lookup) still finds them; never pickled.
_RECORDS: dict[tuple, tuple[tuple, ...]] = {}
# (op, params with their types) -> normalised params, for the few params the encodings use.
_NORMALS: dict[tuple, dict] = {}
CELL_VOCABULARY = BODY_OPS | {"zero"}


class _NoMatch(Exception):
    """The graph does not have the skeleton's shape; the message says where."""


class CellSpace(SearchSpace):
    """Cell-based networks: ``nodes`` cell nodes, one op from ``ops`` on every edge.

    ``strict``: only exact encodings of cell architectures are members (as in ``nb201``); the
    space is then not ``editable`` by layer operators, but ``mutate_edge`` changes one edge op.
    """

    name = "cell"
    edge_mutation = True
    vocabulary = CELL_VOCABULARY

    def __init__(self, *, input_shape: Sequence[int], num_outputs: int, nodes: int = 4,
                 ops: Sequence[str] = tuple(CELL_OPS), channels: int = 16,
                 cells_per_stage: int = 1, stages: int | None = None, strict: bool = False,
                 max_nodes: int | None = None, max_params: int | None = None):
        super().__init__(input_shape=input_shape, num_outputs=num_outputs, max_nodes=max_nodes,
                         max_params=max_params)
        self.strict = flag("strict", strict)
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
        # What fixes the encoding of an architecture, besides the architecture.
        self._settings = (self.name, self.input_shape, self.num_outputs, nodes, self.ops,
                          channels, cells_per_stage, self._stages)

    @property
    def editable(self) -> bool:  # type: ignore[override]  # an option here, not a constant
        """Whether layer operators may edit members: not in a strict space."""
        return not self.strict

    # ---------------------------------------------------------------- architecture <-> genome
    def edges(self) -> list[tuple[int, int]]:
        """Cell edges ``(i, j)`` in architecture order: by target node, then source."""
        return [(i, j) for j in range(1, self.nodes) for i in range(j)]

    def from_arch(self, arch) -> Genome:
        """The genome of a cell architecture (one op name per edge, in ``edges()`` order)."""
        return Genome._assemble(self.input_shape, self.num_outputs, self._records(arch))

    def _records(self, arch) -> tuple[tuple, ...]:
        """The encoding as ``(id, op, params, inputs, merge)`` records, in topological order.

        The last ``RECORDS_KEPT`` encodings' records are kept, since a population's parents are
        decoded again and again. Shared: read them, never change them.
        """
        arch = tuple(arch)
        if len(arch) != len(self.edges()) or any(op not in self.ops for op in arch):
            raise ValueError(f"a {self.name} architecture is {len(self.edges())} ops from "
                             f"{list(self.ops)}, got {arch}")
        key = (self._settings, arch)
        if (records := _RECORDS.pop(key, None)) is None:
            records = self._make_records(arch)
            if len(_RECORDS) >= RECORDS_KEPT:
                # Evict the least recently used; another thread may be doing the same.
                _RECORDS.pop(next(iter(_RECORDS), None), None)
        _RECORDS[key] = records
        return records

    def _make_records(self, arch: tuple[str, ...]) -> tuple[tuple, ...]:
        records: list[tuple] = []

        def add(node: str, op: str, inputs: list[str], merge: str | None = None, **params) -> str:
            records.append((node, op, self._normal(op, params), tuple(inputs), merge))
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
        return tuple(records)

    def decode(self, genome: Genome) -> tuple[str, ...]:
        """The cell architecture of a genome of this space; ``ValueError`` if it is not one.

        Reads the architecture off the graph, then checks that every node and edge equals the
        encoding of that architecture, so nothing outside the skeleton slips through. Results
        are kept by canonical hash (isomorphic genomes have one architecture), so the engine's
        repeated questions (membership, table keys, encodings) decode a genome once.
        """
        key = genome.canonical_hash()
        cache = self.__dict__.setdefault("_decoded", {})
        if key not in cache:
            arch = self._decode(genome)[0]
            if len(cache) >= 100_000:
                cache.clear()
            cache[key] = arch
        return cache[key]

    def _decode(self, genome: Genome) -> tuple[tuple[str, ...], dict[str, str]]:
        """``decode``, with the role id of every node (``{node: role}``)."""
        try:
            arch, names = self._read(genome)
        except _NoMatch as exc:
            raise ValueError(f"not a genome of the {self.name} space: {exc}") from None
        if not self._matches(genome, arch, names):
            raise ValueError(f"not a genome of the {self.name} space: it differs from the "
                             f"skeleton's encoding of its own cell architecture (channels, op "
                             f"parameters, extra nodes, or cells that are not all alike)")
        return arch, names

    # ---------------------------------------------------------------- encodings
    def encoding_names(self) -> list[str]:
        onehot = [f"edge_{i}_{j}_{op}" for i, j in self.edges() for op in self.ops]
        return onehot if self.strict else onehot + description_names(self.vocabulary)

    def encode(self, genome: Genome) -> np.ndarray:
        """One-hot edge ops: ``len(edges())`` blocks of ``len(ops)`` entries, in ``edges()`` and
        ``ops`` order; a non-strict space appends ``describe(genome, vocabulary)``.

        A grown genome of a non-strict space (morphisms changed some cells, so it no longer
        decodes) gets an all-zero one-hot block and its description: the length stays
        ``encoding_size``. A strict space (``nb201``) encodes only its members: ``ValueError``
        for a genome that does not decode. Equal architectures give equal vectors whatever their
        node ids. (``from_arch`` makes the genome of an architecture.)
        """
        onehot = np.zeros((len(self.edges()), len(self.ops)))
        try:
            arch = self.decode(genome)
        except ValueError:
            if self.strict:
                raise
        else:
            onehot[np.arange(len(arch)), [self.ops.index(op) for op in arch]] = 1.0
        if self.strict:
            return onehot.ravel()
        return np.concatenate([onehot.ravel(), describe(genome, self.vocabulary)])

    # ---------------------------------------------------------------- edge mutation
    def neighbours(self, genome: Genome) -> list[tuple[str, ...]]:
        """Every architecture one edge op away from ``genome``'s, in ``edges()`` then ``ops``
        order: ``len(edges()) * (len(ops) - 1)`` of them. ``ValueError`` if it does not decode."""
        arch = self.decode(genome)
        return [arch[:k] + (op,) + arch[k + 1:]
                for k in range(len(arch)) for op in self.ops if op != arch[k]]

    def mutate_edge(self, genome: Genome, rng: np.random.Generator) -> tuple[tuple[str, ...], str]:
        """Regularised evolution's mutation (Real et al., AAAI 2019): give one cell edge, drawn
        with ``rng`` among all edges, another op of ``ops``, in every cell, editing ``genome``
        in place. Each of the ``neighbours`` is equally likely.

        Nodes off that edge keep their ids (and so their inherited weights); the new op's
        nodes get fresh ids. Returns (the genome's nodes at the site: the replaced op's nodes,
        or the cell nodes the edge feeds where it was a skip, description). ``ValueError`` if
        ``genome`` does not decode.
        """
        arch, names = self._decode(genome)
        moves = [(k, op) for k in range(len(arch)) for op in self.ops if op != arch[k]]
        if not moves:
            raise ValueError(f"the {self.name} space has one op; no edge can change")
        k, op = moves[int(rng.integers(len(moves)))]
        site = self._set_edge(genome, names, k, arch[k], op)
        i, j = self.edges()[k]
        return site, f"edge {i}->{j}: {arch[k]} -> {op}"

    def _set_edge(self, genome: Genome, names: dict[str, str], k: int, old: str,
                  new: str) -> tuple[str, ...]:
        """Replace op ``old`` by ``new`` on edge ``k`` of every cell of a decoded genome."""
        i, j = self.edges()[k]
        actual = {role: node for node, role in names.items()}
        site: list[str] = []
        for cell in range(self._stages * self.cells_per_stage):
            c = self.channels * 2 ** (cell // self.cells_per_stage)
            src = actual[f"c{cell}_n{i}" if i else self._cell_input(cell)]
            dst = actual[f"c{cell}_n{j}"]
            chain = [actual[f"c{cell}_e{i}_{j}_{t}"] for t in range(len(CELL_OPS[old]))]
            y = src
            for kind, params in CELL_OPS[new]:
                extra = {"channels": c} if kind in ("conv", "sepconv") else {}
                y = genome.add(kind, [y], **params, **extra)
            genome.replace_input(dst, chain[-1] if chain else src, y)  # same port
            for node in chain:
                genome.remove(node)
            site += chain or [dst]
        return tuple(site)

    def _cell_input(self, cell: int) -> str:
        """The role id of node 0 of a cell: what feeds it."""
        if cell == 0:
            return "stem_bn"
        if cell % self.cells_per_stage == 0:
            return f"r{cell // self.cells_per_stage}_out"
        return f"c{cell - 1}_n{self.nodes - 1}"

    def _matches(self, genome: Genome, arch: tuple[str, ...], names: dict[str, str]) -> bool:
        """Whether ``genome``, its nodes renamed by ``names``, equals the encoding of ``arch``."""
        records, g = self._records(arch), genome._g
        actual = {role: node for node, role in names.items()}
        if not len(records) == len(actual) == len(names) == len(g):
            return False
        if g.number_of_edges() != sum(len(r[3]) for r in records):
            return False
        data, pred = g.nodes, g._pred  # a read-only walk, without the copies of the public API
        for role, op, params, inputs, merge in records:
            node = actual.get(role)
            d = data[node] if node is not None else None
            if d is None or d["op"] != op or d.get("merge") != merge or d["params"] != params:
                return False
            p = pred[node]
            if len(p) < 2:
                got = tuple(names[u] for u in p)
            else:
                got = tuple(names[u] for u in sorted(p, key=lambda u: p[u]["port"]))
            # Input order matters only to concat (as in the canonical hash): a sum is a sum.
            if got != inputs and (merge != "add" or sorted(got) != sorted(inputs)):
                return False
        return True

    @staticmethod
    def _normal(op: str, params: dict) -> dict:
        """``normalized(op, params)`` for the encoding's records, memoised: they come from a few
        fixed call sites, so their keys need no sorting. Shared: do not change it."""
        key = (op, tuple(params.items()), tuple(map(type, params.values())))
        if (normal := _NORMALS.get(key)) is None:
            normal = _NORMALS[key] = normalized(op, params)
        return normal

    # ---------------------------------------------------------------- SearchSpace hooks
    def _sample(self, rng: np.random.Generator) -> Genome:
        return self.from_arch(pick(rng, self.ops) for _ in self.edges())

    def _default_bounds(self) -> Bounds:
        # Edges are independent, so the op heaviest on one edge is heaviest on all of them.
        if self._bounds is None:
            full = [self.from_arch([op] * len(self.edges())) for op in self.ops]
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
        # A read-only walk over networkx's own dicts (node -> attrs, node -> {successor: edge}):
        # it skips the copy that genome.graph makes and the cost of networkx's views.
        g, names = genome._g, {}
        sources = [n for n, d in g._node.items() if d["op"] == "input"]
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
            succ = g._succ[x]
            if len(succ) != 1:
                raise _NoMatch(f"node {x!r} should feed one node ({role}), feeds {len(succ)}")
            x = next(iter(succ))
            names[x] = role
        return x

    def _read_reduction(self, g, x: str, stage: int, names: dict) -> str:
        r, heads = f"r{stage}", {g._node[s]["op"]: s for s in g._succ[x]}
        if sorted(heads) != ["act", "avgpool"] or len(g._succ[x]) != 2:
            raise _NoMatch(f"node {x!r} should start a reduction block (act and avgpool branches)")
        names[heads["act"]], names[heads["avgpool"]] = f"{r}_a0", f"{r}_b0"
        a = self._path(g, heads["act"], [f"{r}_a{t}" for t in range(1, 6)], names)
        b = self._path(g, heads["avgpool"], [f"{r}_b1"], names)
        out = self._path(g, a, [f"{r}_out"], names)
        if list(g._succ[b]) != [out]:
            raise _NoMatch(f"the reduction block after {x!r} does not close with one merge")
        return out

    def _read_cell(self, g, x0: str, cell: int, names: dict) -> tuple[tuple[str, ...], str]:
        data, successors, pred = g._node, g._succ, g._pred

        def follow(s):
            path = []
            while data[s]["op"] != "identity":
                path.append(s)
                succ = successors[s]
                if len(succ) != 1 or len(path) > _MAX_CHAIN:
                    raise _NoMatch(f"node {s!r} is not on an edge-op chain of cell {cell}")
                s = next(iter(succ))
            return path, s

        ends = {follow(s)[1] for s in successors[x0]}
        nodes = [x0] + sorted(ends, key=lambda n: len(pred[n]))
        if [len(pred[n]) for n in nodes[1:]] != list(range(1, self.nodes)):
            raise _NoMatch(f"cell {cell} (from node {x0!r}) lacks the {self.nodes}-node DAG shape")
        index = {n: j for j, n in enumerate(nodes)}
        ops: dict[tuple[int, int], str] = {}
        for i in range(self.nodes - 1):
            for s in successors[nodes[i]]:
                path, end = follow(s)
                j = index.get(end, -1)
                if j <= i or (i, j) in ops:
                    raise _NoMatch(f"node {s!r} breaks the edge structure of cell {cell}")
                sig = tuple((data[p]["op"], data[p]["params"].get("kernel")) for p in path)
                found = [op for op in self.ops if _SIGNATURES[op] == sig]
                if not found:
                    raise _NoMatch(f"edge {i}->{j} of cell {cell} (at node {s!r}) is no op of "
                                   f"{list(self.ops)}")
                ops[i, j] = found[0]
                for t, p in enumerate(path):
                    names[p] = f"c{cell}_e{i}_{j}_{t}"
        for j, n in enumerate(nodes):
            if j:
                names[n] = f"c{cell}_n{j}"
        if len(ops) != len(self.edges()):
            raise _NoMatch(f"cell {cell} misses edges")
        return tuple(ops[e] for e in self.edges()), nodes[-1]
