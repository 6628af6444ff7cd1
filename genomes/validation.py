"""Validation and shape inference for genomes: one pass that finds every problem at once."""

from __future__ import annotations

from typing import Any

import networkx as nx

from .checks import id_problem, input_shape_problem, param_problems
from .errors import Problem, ShapeError
from .ops import OPS, merge_problem, merged_shape

__all__ = ["analyse"]

Shape = tuple[int, ...]


def analyse(g: nx.DiGraph, input_shape: Any, num_outputs: Any
            ) -> tuple[list[Problem], dict[str, tuple[Shape, Shape]]]:
    """Return (problems, {node: (merged input shape, output shape)}) for a genome's graph
    (node attrs ``op``, ``params``, ``merge``; edge ``port``), input shape and output count.

    Shapes are inferred wherever the inputs allow, so a shape problem is reported even when other
    parts of the graph are broken; nodes downstream of a broken node are skipped, not blamed.
    """
    problems: list[Problem] = []
    shape_ok = _check_header(input_shape, num_outputs, problems)
    # networkx's own dicts (node -> attrs, node -> {neighbour: edge attrs}): read only, and much
    # faster than its views; this runs after every edit.
    data, pred, succ = g._node, g._pred, g._succ

    broken: set[str] = set()
    for node, d in data.items():
        if (msg := id_problem(node)) is not None:
            problems.append(Problem(node, msg))
        for msg in param_problems(d["op"], d["params"]):
            problems.append(Problem(node, msg))
            broken.add(node)
        merge, n_in = d.get("merge"), len(pred[node])
        if (msg := merge_problem(merge)) is not None:
            problems.append(Problem(node, msg))
            broken.add(node)
        elif n_in >= 2 and merge is None:
            problems.append(Problem(node, f"has {n_in} inputs but no merge; set merge to 'add' or 'concat'"))
            broken.add(node)

    source = _terminal(data, "input", problems, pred, "have inputs")
    sink = _terminal(data, "output", problems, succ, "feed other nodes")

    # Kahn's algorithm, generation by generation as networkx's topological_sort: it reaches
    # exactly the nodes that neither lie on a cycle nor descend from one.
    ordered = _topological_order(data, pred, succ)
    if len(ordered) < len(data):
        order = {n: i for i, n in enumerate(data)}
        for comp in nx.strongly_connected_components(g):
            if len(comp) > 1 or any(n in succ[n] for n in comp):
                members = sorted(comp, key=order.__getitem__)
                problems += [Problem(n, f"is on a cycle through nodes {members}") for n in members]

    if source is not None:
        reach = _reachable(source, succ)
        for node, d in data.items():
            if node in reach or d["op"] == "input":
                continue
            why = "has no inputs" if not pred[node] else "is not reachable from the input node"
            problems.append(Problem(node, why))
    if sink is not None:
        feeds = _reachable(sink, pred)
        for node in data:
            if node not in feeds:
                problems.append(Problem(node, "is a dead end: its result never reaches the output node"))

    io: dict[str, tuple[Shape, Shape]] = {}
    for node in ordered:
        d = data[node]
        if d["op"] == "input":
            if shape_ok:
                io[node] = (input_shape, input_shape)
            continue
        p = pred[node]
        if len(p) == 1:
            inputs = list(p)
        else:
            inputs = sorted(p, key=lambda u: p[u]["port"])
        if not inputs or node in broken:
            continue
        try:
            shapes = [io[u][1] for u in inputs]
        except KeyError:  # an input's shape is unknown: it is broken, and already blamed
            continue
        try:
            merged = shapes[0] if len(shapes) == 1 else merged_shape(d.get("merge"), shapes, inputs)
            io[node] = (merged, OPS[d["op"]].output_shape(merged, d["params"]))
        except ShapeError as exc:
            problems.append(Problem(node, str(exc)))

    want = (num_outputs,)
    if sink in io and io[sink][1] != want:
        problems.append(Problem(sink, f"output has shape {io[sink][1]} but the genome declares "
                                      f"{num_outputs} outputs; end with dense(units={num_outputs})"))
    return problems, io


def _topological_order(data: dict, pred: dict, succ: dict) -> list[str]:
    """The nodes networkx's ``topological_sort`` would give, less the cycles and their
    descendants (which it leaves out, instead of raising)."""
    waiting = {n: len(pred[n]) for n in data}
    generation = [n for n, k in waiting.items() if k == 0]
    out: list[str] = []
    while generation:
        out += generation
        following = []
        for node in generation:
            for child in succ[node]:
                waiting[child] -= 1
                if not waiting[child]:
                    following.append(child)
        generation = following
    return out


def _reachable(start: str, neighbours: dict) -> set[str]:
    """``start`` and every node reachable from it through ``neighbours``."""
    seen, todo = {start}, [start]
    while todo:
        for v in neighbours[todo.pop()]:
            if v not in seen:
                seen.add(v)
                todo.append(v)
    return seen


def _check_header(input_shape: Any, num_outputs: Any, problems: list[Problem]) -> bool:
    ok = True
    if (msg := input_shape_problem(input_shape)) is not None:
        problems.append(Problem(None, f"input_shape {msg}"))
        ok = False
    k = num_outputs
    if type(k) is not int or k < 1:
        problems.append(Problem(None, f"num_outputs must be a positive int, got {k!r}"))
    return ok


def _terminal(data: dict, op: str, problems: list[Problem], links: dict, verb: str) -> str | None:
    """The unique node with ``op`` ('input' or 'output'), reporting duplicates and misuse
    (an input with inputs in ``links``, an output with consumers)."""
    found = [n for n, d in data.items() if d["op"] == op]
    if not found:
        problems.append(Problem(None, f"genome has no {op} node (a node with op {op!r})"))
    for extra in found[1:]:
        problems.append(Problem(extra, f"is a second {op} node; a genome has exactly one"))
    for node in found:
        if links[node]:
            problems.append(Problem(node, f"{op} node cannot {verb}"))
    return found[0] if len(found) == 1 else None
