"""Validation and shape inference for genomes: one pass that finds every problem at once."""

from __future__ import annotations

from typing import TYPE_CHECKING

import networkx as nx

from .errors import Problem, ShapeError
from .ops import OPS, merge_problem, merged_shape, normalize_params

if TYPE_CHECKING:
    from .genome import Genome

__all__ = ["analyse"]

Shape = tuple[int, ...]


def analyse(genome: Genome) -> tuple[list[Problem], dict[str, tuple[Shape, Shape]]]:
    """Return (problems, {node: (merged input shape, output shape)}) for a genome.

    Shapes are inferred wherever the inputs allow, so a shape problem is reported even when other
    parts of the graph are broken; nodes downstream of a broken node are skipped, not blamed.
    """
    from .genome import _id_problem

    g = genome._g
    problems: list[Problem] = []
    shape_ok = _check_header(genome, problems)

    broken: set[str] = set()
    for node, d in g.nodes(data=True):
        if (msg := _id_problem(node)) is not None:
            problems.append(Problem(node, msg))
        for msg in normalize_params(d["op"], d["params"])[1]:
            problems.append(Problem(node, msg))
            broken.add(node)
        merge, n_in = d.get("merge"), g.in_degree(node)
        if (msg := merge_problem(merge)) is not None:
            problems.append(Problem(node, msg))
            broken.add(node)
        elif n_in >= 2 and merge is None:
            problems.append(Problem(node, f"has {n_in} inputs but no merge; set merge to 'add' or 'concat'"))
            broken.add(node)

    source = _terminal(g, "input", problems, lambda n: g.in_degree(n), "have inputs")
    sink = _terminal(g, "output", problems, lambda n: g.out_degree(n), "feed other nodes")

    cyclic: set[str] = set()
    order = {n: i for i, n in enumerate(g)}
    for comp in nx.strongly_connected_components(g):
        if len(comp) > 1 or any(g.has_edge(n, n) for n in comp):
            members = sorted(comp, key=order.__getitem__)
            problems += [Problem(n, f"is on a cycle through nodes {members}") for n in members]
            cyclic |= comp

    if source is not None:
        reach = nx.descendants(g, source) | {source}
        for node, d in g.nodes(data=True):
            if node in reach or d["op"] == "input":
                continue
            why = "has no inputs" if g.in_degree(node) == 0 else "is not reachable from the input node"
            problems.append(Problem(node, why))
    if sink is not None:
        feeds = nx.ancestors(g, sink) | {sink}
        for node in g:
            if node not in feeds:
                problems.append(Problem(node, "is a dead end: its result never reaches the output node"))

    blocked = set(cyclic)
    for node in cyclic:
        blocked |= nx.descendants(g, node)
    io: dict[str, tuple[Shape, Shape]] = {}
    for node in nx.topological_sort(g.subgraph(n for n in g if n not in blocked)):
        d = g.nodes[node]
        if d["op"] == "input":
            if shape_ok:
                io[node] = (genome.input_shape, genome.input_shape)
            continue
        pred = g._pred[node]
        inputs = sorted(pred, key=lambda u: pred[u]["port"])
        if not inputs or node in broken or any(u not in io for u in inputs):
            continue
        try:
            merged = merged_shape(d.get("merge"), [io[u][1] for u in inputs], inputs)
            io[node] = (merged, OPS[d["op"]].output_shape(merged, d["params"]))
        except ShapeError as exc:
            problems.append(Problem(node, str(exc)))

    want = (genome.num_outputs,)
    if sink in io and io[sink][1] != want:
        problems.append(Problem(sink, f"output has shape {io[sink][1]} but the genome declares "
                                      f"{genome.num_outputs} outputs; end with dense(units={genome.num_outputs})"))
    return problems, io


def _check_header(genome: Genome, problems: list[Problem]) -> bool:
    from .genome import input_shape_problem

    ok = True
    if (msg := input_shape_problem(genome.input_shape)) is not None:
        problems.append(Problem(None, f"input_shape {msg}"))
        ok = False
    k = genome.num_outputs
    if type(k) is not int or k < 1:
        problems.append(Problem(None, f"num_outputs must be a positive int, got {k!r}"))
    return ok


def _terminal(g: nx.DiGraph, op: str, problems: list[Problem], degree, verb: str) -> str | None:
    """The unique node with ``op`` ('input' or 'output'), reporting duplicates and misuse."""
    found = [n for n, d in g.nodes(data=True) if d["op"] == op]
    if not found:
        problems.append(Problem(None, f"genome has no {op} node (a node with op {op!r})"))
    for extra in found[1:]:
        problems.append(Problem(extra, f"is a second {op} node; a genome has exactly one"))
    for node in found:
        if degree(node):
            problems.append(Problem(node, f"{op} node cannot {verb}"))
    return found[0] if len(found) == 1 else None
