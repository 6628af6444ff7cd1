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

import functools
import hashlib
import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .genome import Genome

__all__ = ["HASH_SCHEME", "canonical_form", "canonical_hash"]

HASH_SCHEME: str  # set by ``__getattr__`` on first use


def __getattr__(name: str) -> Any:
    """``HASH_SCHEME``, made on first use: igraph (and the matplotlib it pulls in) loads only
    when a hash is needed, which reading a run directory never does."""
    if name == "HASH_SCHEME":
        import igraph

        globals()[name] = value = f"evonas-bliss-2/igraph-{igraph.__version__}"
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def canonical_form(genome: Genome) -> str:
    """A string equal for two genomes exactly when they are isomorphic (ops, params, ports)."""
    # networkx's own dicts (node -> attrs, node -> {neighbour: edge attrs}), read only: much
    # faster than its views, and every child an operator makes is hashed.
    data, succ, pred = genome._g._node, genome._g._succ, genome._g._pred
    index = {node: i for i, node in enumerate(data)}
    labels: list[str] = []
    for node, d in data.items():
        merge = d.get("merge") if len(pred[node]) > 1 else None
        labels.append(_label(d["op"], d["params"], merge))
    edges = []
    for u, out in succ.items():
        for v, d in out.items():
            if len(pred[v]) > 1 and data[v].get("merge") == "concat":
                port = len(labels)  # a vertex on the edge carries the port
                labels.append(json.dumps(["port", d["port"]]))
                edges += [(index[u], port), (port, index[v])]
            else:
                edges.append((index[u], index[v]))
    palette = sorted(set(labels))
    colour = {label: c for c, label in enumerate(palette)}
    colours = [colour[label] for label in labels]
    import igraph

    graph = igraph.Graph(n=len(labels), edges=edges, directed=True)
    # Read as "perm[k] is the vertex at canonical position k", the form does not depend on the
    # order in which the genome's nodes were added; read as "vertex i goes to position perm[i]"
    # (scheme 1) it did. tests/genomes/test_hash.py checks this for the igraph installed.
    perm = graph.canonical_permutation(color=colours)
    position = [0] * len(perm)
    for k, v in enumerate(perm):
        position[v] = k
    order = [colours[v] for v in perm]
    canon_edges = sorted((position[u], position[v]) for u, v in edges)
    return json.dumps([list(genome.input_shape), genome.num_outputs, palette, order, canon_edges])


def _label(op: str, params: dict, merge: str | None) -> str:
    items = sorted(params.items())
    try:  # the types too: True == 1 but they print differently
        return _label_cached(op, tuple(items), tuple(type(v) for _, v in items), merge)
    except TypeError:  # an unhashable parameter value
        return json.dumps([op, items, merge], default=str)


@functools.lru_cache(maxsize=4096)
def _label_cached(op: str, items: tuple[tuple[str, Any], ...], types: tuple[type, ...],
                  merge: str | None) -> str:
    return json.dumps([op, [list(item) for item in items], merge], default=str)


def canonical_hash(genome: Genome) -> str:
    """A 32-hex-digit hash of ``canonical_form``: invariant under node relabelling."""
    return hashlib.sha256(canonical_form(genome).encode()).hexdigest()[:32]
