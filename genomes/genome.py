"""The graph genome: a ``networkx.DiGraph`` of typed op nodes with stable ids.

A genome describes a network; it is not one. ``Genome.build()`` compiles a fresh
``torch.nn.Module`` from it (see ``genomes.build``), whose parameters are addressed by node id so
that weights can follow a node across generations. Edges carry a ``port``: the position of the
source among the destination's inputs, which fixes the channel order of a ``concat`` merge.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import networkx as nx

from .checks import FORMAT, id_problem, inputs_problem, normalize, normalized
from .errors import GenomeError, Problem
from .hashing import canonical_hash as hash_genome
from .ops import OPS, merge_problem
from .serialization import genome_from_dict
from .validation import analyse

__all__ = ["FORMAT", "Genome", "Node"]

Shape = tuple[int, ...]
_FRESH = re.compile(r"^n(\d+)$")


@dataclass(frozen=True)
class Node:
    """A read-only snapshot of one node: its op, parameters, ordered inputs and merge rule."""

    id: str
    op: str
    params: Mapping[str, Any]
    inputs: tuple[str, ...]
    merge: str | None


class Genome:
    """A network architecture as a DAG of op nodes, with its input shape and output count.

    ``input_shape`` excludes the batch: ``(C, L)`` for 1-D signals, ``(C, H, W)`` for images.

    >>> g = Genome((1, 8, 8), 10)
    >>> x = g.add("input", id="input")
    >>> x = g.add("conv", [x], channels=8, kernel=3)
    >>> x = g.add("globalpool", [x])
    >>> x = g.add("dense", [x], units=10)
    >>> _ = g.add("output", [x], id="output")
    >>> g.num_params()
    170
    """

    def __init__(self, input_shape: Iterable[int], num_outputs: int):
        self._input_shape: Shape = tuple(input_shape)
        self._num_outputs = num_outputs
        self._g = nx.DiGraph()
        self._next = 0
        # Caches, dropped by every edit (``_touch``): the analysis and the canonical hash.
        self._analysis: tuple[list[Problem], dict[str, tuple[Shape, Shape]]] | None = None
        self._hash: str | None = None
        self._frozen = False  # an evaluated individual's genome: edits go to a copy

    def freeze(self) -> Genome:
        """Refuse every later edit (``GenomeError``); copies are editable. The engine freezes
        the genomes of its individuals, so a proposer cannot change a recorded architecture."""
        self._frozen = True
        return self

    @property
    def frozen(self) -> bool:
        return self._frozen

    def _editing(self) -> None:
        if self._frozen:
            raise GenomeError("this genome is frozen (an individual's); edit a copy()")

    # ------------------------------------------------------------------ reading
    @property
    def input_shape(self) -> Shape:
        """Shape of one input without the batch: ``(C, L)`` or ``(C, H, W)``."""
        return self._input_shape

    @property
    def num_outputs(self) -> int:
        return self._num_outputs

    @property
    def graph(self) -> nx.DiGraph:
        """A frozen copy of the graph: node attrs ``op``, ``params``, ``merge``; edge ``port``.

        Edit the genome through its methods; changes to this copy do not reach it.
        """
        graph = self._g.copy()
        for _, d in graph.nodes(data=True):
            d["params"] = dict(d["params"])
        return nx.freeze(graph)

    @property
    def ndim(self) -> int:
        """Spatial dimensionality of the input: 1 for signals, 2 for images."""
        return len(self.input_shape) - 1

    @property
    def nodes(self) -> list[str]:
        return list(self._g)

    def __len__(self) -> int:
        return self._g.number_of_nodes()

    def __contains__(self, node: object) -> bool:
        return node in self._g

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._g))

    def node(self, node: str) -> Node:
        d = self._node_data(node)
        return Node(node, d["op"], MappingProxyType(dict(d["params"])), tuple(self.inputs(node)),
                    d.get("merge"))

    def inputs(self, node: str) -> list[str]:
        """The node's inputs in port order."""
        self._node_data(node)
        pred = self._g._pred[node]
        return sorted(pred, key=lambda u: pred[u]["port"])

    def successors(self, node: str) -> list[str]:
        self._node_data(node)
        return list(self._g.successors(node))

    def op(self, node: str) -> str:
        return self._node_data(node)["op"]

    def params(self, node: str) -> dict[str, Any]:
        return dict(self._node_data(node)["params"])

    @property
    def input_node(self) -> str:
        return self._unique("input")

    @property
    def output_node(self) -> str:
        return self._unique("output")

    def topological_order(self) -> list[str]:
        try:
            return list(nx.topological_sort(self._g))
        except nx.NetworkXUnfeasible:
            self.validate()  # names the nodes on the cycle
            raise

    # ------------------------------------------------------------------ editing
    def add(self, op: str, inputs: Iterable[str] = (), *, id: str | None = None,
            merge: str | None = None, **params: Any) -> str:
        """Add a node fed by ``inputs`` (in port order) and return its id.

        Parameters are checked at once; shapes are checked by ``validate()`` once the graph is
        complete.
        """
        self._editing()
        node = self.new_id() if id is None else id
        if node in self._g:
            raise GenomeError("a node with this id already exists", node=node)
        normal, problems = normalize(op, params)
        for msg in (id_problem(node), merge_problem(merge), inputs_problem(inputs, self._g)):
            if msg is not None:
                problems.append(msg)
        if problems:
            raise GenomeError([Problem(node, m) for m in problems])
        self._claim(node)
        self._g.add_node(node, op=op, params=normal, **({"merge": merge} if merge else {}))
        self._g.add_edges_from((u, node, {"port": port}) for port, u in enumerate(inputs))
        self._touch()
        return node

    def connect(self, src: str, dst: str) -> None:
        """Make ``src`` the last input of ``dst``."""
        self._editing()
        self._node_data(src), self._node_data(dst)
        if self._g.has_edge(src, dst):
            raise GenomeError(f"already has input {src!r}", node=dst)
        self._g.add_edge(src, dst, port=self._g.in_degree(dst))
        self._touch()

    def disconnect(self, src: str, dst: str) -> None:
        """Remove the edge ``src -> dst``; later inputs of ``dst`` move up one port."""
        self._editing()
        if not self._g.has_edge(src, dst):
            raise GenomeError(f"has no input {src!r}", node=dst)
        self._g.remove_edge(src, dst)
        self._renumber(dst)

    def replace_input(self, dst: str, old: str, new: str) -> None:
        """Feed ``dst`` from ``new`` instead of ``old``, at the same port (input order kept)."""
        self._editing()
        if not self._g.has_edge(old, dst):
            raise GenomeError(f"has no input {old!r}", node=dst)
        self._node_data(new)
        if self._g.has_edge(new, dst):
            raise GenomeError(f"already has input {new!r}", node=dst)
        port = self._g[old][dst]["port"]
        self._g.remove_edge(old, dst)
        self._g.add_edge(new, dst, port=port)
        self._touch()

    def remove(self, node: str) -> None:
        """Remove a node and its edges; its consumers' remaining inputs are renumbered."""
        self._editing()
        succ = self.successors(node)
        self._g.remove_node(node)
        for v in succ:
            self._renumber(v)
        self._touch()  # also when nothing consumed the node

    def set_params(self, node: str, **params: Any) -> None:
        """Change some parameters of a node, keeping the others."""
        d = self._node_data(node)
        self._set_op(node, d["op"], {**d["params"], **params})

    def set_op(self, node: str, op: str, **params: Any) -> None:
        """Replace a node's op and all its parameters; its edges stay."""
        self._node_data(node)
        self._set_op(node, op, params)

    def set_merge(self, node: str, merge: str | None) -> None:
        """Set how the node merges several inputs: ``add``, ``concat``, or None for one input."""
        self._editing()
        if (msg := merge_problem(merge)) is not None:
            raise GenomeError(msg, node=node)
        d = self._node_data(node)
        if merge is None:
            d.pop("merge", None)
        else:
            d["merge"] = merge
        self._touch()

    def new_id(self) -> str:
        """A fresh id ``n<k>`` never used before in this genome's lineage."""
        self._editing()
        while f"n{self._next}" in self._g:
            self._next += 1
        node = f"n{self._next}"
        self._next += 1
        return node

    def relabel(self, mapping: Mapping[str, str]) -> Genome:
        """A copy with node ids renamed by ``mapping`` (ids not in it are kept)."""
        mapping = {old: new for old, new in mapping.items() if old in self._g}
        for new in mapping.values():
            if (msg := id_problem(new)) is not None:
                raise GenomeError(msg, node=str(new))
        final = [mapping.get(n, n) for n in self._g]
        if len(set(final)) != len(final):
            clash = next(n for n in final if final.count(n) > 1)
            raise GenomeError("relabelling would give two nodes this id", node=clash)
        out = self._copy_of(nx.relabel_nodes(self._g, mapping, copy=True))
        for new in mapping.values():
            out._claim(new)
        out._hash = self._hash  # ids do not enter the hash
        return out

    def copy(self) -> Genome:
        out = self._copy_of(self._g.copy())
        # An equal genome: share the caches (never changed in place; edits replace them).
        out._analysis, out._hash = self._analysis, self._hash
        return out

    def _claim(self, node: str) -> None:
        """Keep ``new_id`` past an id of the form ``n<k>`` that was chosen by hand."""
        if (m := _FRESH.match(node)) is not None:
            self._next = max(self._next, int(m.group(1)) + 1)

    def _copy_of(self, graph: nx.DiGraph) -> Genome:
        out = Genome(self.input_shape, self.num_outputs)
        out._g, out._next = graph, self._next
        for _, d in graph.nodes(data=True):
            d["params"] = dict(d["params"])  # attribute dicts are copied shallowly
        return out

    # ------------------------------------------------------------------ checking
    def problems(self) -> list[Problem]:
        """Everything wrong with the genome, each naming its node; empty when it is legal."""
        return list(self._analyse()[0])

    def validate(self) -> Genome:
        """Raise ``GenomeError`` listing every problem at once; return ``self`` when legal."""
        if problems := self._analyse()[0]:
            raise GenomeError(list(problems))
        return self

    def io_shapes(self) -> dict[str, tuple[Shape, Shape]]:
        """Each node's merged input shape and output shape; validates first."""
        self.validate()
        return dict(self._analyse()[1])

    def node_shapes(self, node: str) -> tuple[Shape, Shape]:
        """One node's (merged input, output) shape, inferred even while other parts of the graph
        are unfinished (e.g. a new branch not yet connected); ``GenomeError`` if it cannot be."""
        self._node_data(node)
        problems, io = self._analyse()
        if node not in io:
            own = [p for p in problems if p.node == node]
            raise GenomeError(own or [Problem(node, "its shape depends on a broken part of the graph")])
        return io[node]

    def shapes(self) -> dict[str, Shape]:
        """The output shape of every node (without batch); validates first."""
        return {n: out for n, (_, out) in self.io_shapes().items()}

    def num_params(self) -> int:
        """Number of trainable parameters of the built network, computed without building it."""
        return sum(self.node_params().values())

    def node_params(self) -> dict[str, int]:
        """Trainable parameters of each node (in node order)."""
        io = self.io_shapes()
        return {n: OPS[d["op"]].num_params(io[n][0], d["params"]) for n, d in self._g.nodes(data=True)}

    # ------------------------------------------------------------------ other forms
    def to_dict(self) -> dict[str, Any]:
        nodes = []
        for node, d in self._g.nodes(data=True):
            item: dict[str, Any] = {"id": node, "op": d["op"]}
            if inputs := self.inputs(node):
                item["inputs"] = inputs
            if "merge" in d:
                item["merge"] = d["merge"]
            if d["params"]:
                item["params"] = dict(d["params"])
            nodes.append(item)
        return {"format": FORMAT, "input_shape": list(self.input_shape),
                "num_outputs": self.num_outputs, "next_id": self._next, "nodes": nodes}

    def to_json(self) -> str:
        """Human-readable JSON, one node per line; ``Genome.from_json`` reads it back exactly."""
        d = self.to_dict()
        head = ",\n".join(f"  {json.dumps(k)}: {json.dumps(v)}" for k, v in d.items() if k != "nodes")
        nodes = ",\n".join(f"    {json.dumps(n)}" for n in d["nodes"])
        return f"{{\n{head},\n  \"nodes\": [\n{nodes}\n  ]\n}}\n"

    @classmethod
    def from_dict(cls, data: Any, *, validate: bool = True) -> Genome:
        return genome_from_dict(cls, data, validate=validate)

    @classmethod
    def from_json(cls, text: str | bytes, *, validate: bool = True) -> Genome:
        try:
            data = json.loads(text)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise GenomeError(f"genome is not valid JSON: {exc}") from None
        return cls.from_dict(data, validate=validate)

    def canonical_hash(self) -> str:
        """Hash equal for genomes that differ only by node ids; see ``genomes.hashing``."""
        if self._hash is None:
            self._hash = hash_genome(self)
        return self._hash

    def build(self, *, seed: int = 0, device: Any = None, dtype: Any = None):
        """A fresh ``torch.nn.Module``; same genome and seed give the same initial weights."""
        from .build import build as build_module  # imports torch: only when a module is made

        return build_module(self, seed=seed, device=device, dtype=dtype)

    # ------------------------------------------------------------------ dunder
    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Genome):
            return NotImplemented
        return (
            self.input_shape == other.input_shape
            and self.num_outputs == other.num_outputs
            and dict(self._g.nodes(data=True)) == dict(other._g.nodes(data=True))
            and {(u, v): d["port"] for u, v, d in self._g.edges(data=True)}
            == {(u, v): d["port"] for u, v, d in other._g.edges(data=True)}
        )

    __hash__ = None  # mutable; use canonical_hash() for identity of architectures

    def __repr__(self) -> str:
        return (f"Genome(input_shape={self.input_shape}, num_outputs={self.num_outputs}, "
                f"nodes={len(self)}, edges={self._g.number_of_edges()})")

    def __getstate__(self) -> dict:
        return {"data": self.to_dict()}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(Genome.from_dict(state["data"], validate=False).__dict__)

    # ------------------------------------------------------------------ internals
    def _node_data(self, node: str) -> dict:
        try:
            return self._g.nodes[node]
        except KeyError:
            raise GenomeError("no such node in this genome", node=node) from None

    def _unique(self, op: str) -> str:
        found = [n for n, d in self._g.nodes(data=True) if d["op"] == op]
        if len(found) != 1:
            raise GenomeError(f"genome has {len(found)} {op} nodes, needs exactly one")
        return found[0]

    @classmethod
    def _assemble(cls, input_shape, num_outputs, records, next_id: int = 0) -> Genome:
        """Trusted bulk construction from ``(id, op, params, inputs, merge)`` records.

        Ids must be unique and inputs must name records; nothing else is checked here (call
        ``validate()``). Spaces and the JSON reader use it because ``add`` per node is slower.
        """
        genome = cls(input_shape, num_outputs)
        genome._g.add_nodes_from(
            (node, {"op": op, "params": normalized(op, params),
                    **({"merge": merge} if merge is not None else {})})
            for node, op, params, _, merge in records
        )
        genome._g.add_edges_from(
            (u, node, {"port": port})
            for node, _, _, inputs, _ in records for port, u in enumerate(inputs)
        )
        genome._next = next_id
        for node, *_ in records:
            genome._claim(node)
        return genome

    def _set_op(self, node: str, op: str, params: dict) -> None:
        self._editing()
        normal, problems = normalize(op, params)
        if problems:
            raise GenomeError([Problem(node, m) for m in problems])
        d = self._g.nodes[node]
        d["op"], d["params"] = op, normal
        self._touch()

    def _renumber(self, node: str) -> None:
        self._editing()
        pred = self._g._pred[node]
        for port, u in enumerate(sorted(pred, key=lambda u: pred[u]["port"])):
            pred[u]["port"] = port
        self._touch()

    def _touch(self) -> None:
        self._analysis = self._hash = None

    def _analyse(self) -> tuple[list[Problem], dict[str, tuple[Shape, Shape]]]:
        if self._analysis is None:
            self._analysis = analyse(self._g, self._input_shape, self._num_outputs)
        return self._analysis
