"""Canonical hashes of genomes: equal when two genomes differ only by node ids.

The hash is networkx's directed Weisfeiler-Lehman graph hash over node labels and edge labels,
combined with the input shape and output count. A node's label is its op, parameters, merge rule
and its longest-path depth from the input and to the output; an edge's label is its input port
where a ``concat`` makes the order matter. The depths are invariant under relabelling and let a
few WL rounds tell apart what plain WL would need many rounds for (in a chain they fix every
node's position, so chains hash exactly). Isomorphic genomes always hash equal; non-isomorphic
ones collide only where depth-labelled WL cannot tell them apart. networkx changed these hashes
in 3.5, so store ``HASH_SCHEME`` beside stored hashes.
"""

from __future__ import annotations

import hashlib
import json
import warnings
from typing import TYPE_CHECKING

import networkx as nx

if TYPE_CHECKING:
    from .genome import Genome

__all__ = ["HASH_SCHEME", "canonical_hash"]

ROUNDS = 3
HASH_SCHEME = f"evonas-wl{ROUNDS}-depth-1/networkx-{nx.__version__}"


def canonical_hash(genome: Genome) -> str:
    """A 32-hex-digit hash, invariant under node relabelling."""
    g = genome._g
    before, after = _depths(g), _depths(g.reverse(copy=False))
    labelled = nx.DiGraph()
    for node, d in g.nodes(data=True):
        multi = g.in_degree(node) > 1
        label = [d["op"], sorted(d["params"].items()), d.get("merge") if multi else None,
                 before.get(node), after.get(node)]
        labelled.add_node(node, label=json.dumps(label, default=str))
    for u, v, d in g.edges(data=True):
        ordered = g.in_degree(v) > 1 and g.nodes[v].get("merge") != "add"
        labelled.add_edge(u, v, label=str(d["port"]) if ordered else "")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "hashes changed in 3.5": we record it
        wl = nx.weisfeiler_lehman_graph_hash(labelled, node_attr="label", edge_attr="label",
                                             iterations=ROUNDS)
    head = json.dumps([list(genome.input_shape), genome.num_outputs])
    return hashlib.sha256(f"{head}|{wl}".encode()).hexdigest()[:32]


def _depths(g: nx.DiGraph) -> dict:
    """Longest-path distance of every node from the sources; empty if the graph has a cycle."""
    try:
        order = list(nx.topological_sort(g))
    except nx.NetworkXUnfeasible:
        return {}
    depth: dict = {}
    for node in order:
        depth[node] = max((depth[u] + 1 for u in g.predecessors(node)), default=0)
    return depth
