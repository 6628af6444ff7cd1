"""Canonical hashes of genomes: equal exactly when two genomes differ only by node ids.

The genome becomes a vertex-coloured directed graph: one colour per distinct node label (op,
parameters, and the merge rule of nodes with several inputs), plus one vertex for each edge into
a ``concat`` node, coloured by its port, because only there does input order change the network.
igraph's BLISS canonical labelling then puts that graph in a canonical vertex order, and the hash
is the SHA-256 of the canonical form (input shape, output count, colours, edges). Unlike a
Weisfeiler-Lehman hash this is exact: isomorphic genomes hash equal and non-isomorphic ones
differ, up to SHA-256 collisions. A canonical labelling may differ between igraph releases, so
store ``HASH_SCHEME`` (which names the igraph version) beside stored hashes.
"""

from __future__ import annotations

import hashlib
import json
from typing import TYPE_CHECKING

import igraph

if TYPE_CHECKING:
    from .genome import Genome

__all__ = ["HASH_SCHEME", "canonical_form", "canonical_hash"]

HASH_SCHEME = f"evonas-bliss-1/igraph-{igraph.__version__}"


def canonical_form(genome: Genome) -> str:
    """A string equal for two genomes exactly when they are isomorphic (ops, params, ports)."""
    g = genome._g
    index = {node: i for i, node in enumerate(g)}
    labels: list[str] = []
    for node, d in g.nodes(data=True):
        merge = d.get("merge") if g.in_degree(node) > 1 else None
        labels.append(json.dumps([d["op"], sorted(d["params"].items()), merge], default=str))
    edges = []
    for u, v, d in g.edges(data=True):
        if g.in_degree(v) > 1 and g.nodes[v].get("merge") == "concat":
            port = len(labels)  # a vertex on the edge carries the port
            labels.append(json.dumps(["port", d["port"]]))
            edges += [(index[u], port), (port, index[v])]
        else:
            edges.append((index[u], index[v]))
    palette = sorted(set(labels))
    colour = {label: c for c, label in enumerate(palette)}
    colours = [colour[label] for label in labels]
    graph = igraph.Graph(n=len(labels), edges=edges, directed=True)
    perm = graph.canonical_permutation(color=colours)  # vertex i goes to position perm[i]
    order = [0] * len(perm)
    for i, p in enumerate(perm):
        order[p] = colours[i]
    canon_edges = sorted((perm[u], perm[v]) for u, v in edges)
    return json.dumps([list(genome.input_shape), genome.num_outputs, palette, order, canon_edges])


def canonical_hash(genome: Genome) -> str:
    """A 32-hex-digit hash of ``canonical_form``: invariant under node relabelling."""
    return hashlib.sha256(canonical_form(genome).encode()).hexdigest()[:32]
