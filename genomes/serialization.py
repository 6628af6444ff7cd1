"""Reading the JSON form of a genome (``Genome.to_dict`` writes it); every structural problem
is reported at once, naming the node."""

from __future__ import annotations

from typing import Any

from .checks import FORMAT, inputs_problem
from .errors import GenomeError, Problem

__all__ = ["genome_from_dict"]

_NODE_KEYS = {"id", "op", "inputs", "merge", "params"}
_TOP_KEYS = {"format", "input_shape", "num_outputs", "next_id", "nodes"}


def genome_from_dict(cls, data: Any, *, validate: bool = True):
    """Build a genome of class ``cls`` from its dict form; raise ``GenomeError`` if malformed.

    ``cls`` is ``Genome`` (or a subclass), passed in so that this module need not import it.
    """
    if not isinstance(data, dict):
        raise GenomeError(f"a genome is a JSON object, got {type(data).__name__}")
    fmt = data.get("format")
    if type(fmt) is not int or fmt != FORMAT:
        raise GenomeError(f"unsupported genome format {fmt!r}; this evonas reads format {FORMAT}")
    problems = [Problem(None, f"unknown key {k!r}; allowed: {sorted(_TOP_KEYS)}")
                for k in data if k not in _TOP_KEYS]
    for key in ("input_shape", "num_outputs", "nodes"):
        if key not in data:
            problems.append(Problem(None, f"missing key {key!r}"))
    shape, nodes = data.get("input_shape"), data.get("nodes")
    if not isinstance(shape, list):
        problems.append(Problem(None, f"input_shape must be a list of ints, got {shape!r}"))
    if not isinstance(nodes, list):
        problems.append(Problem(None, f"nodes must be a list, got {type(nodes).__name__}"))
    next_id = data.get("next_id", 0)
    if type(next_id) is not int or next_id < 0:
        problems.append(Problem(None, f"next_id must be a non-negative int, got {next_id!r}"))
    if problems:
        raise GenomeError(problems)

    records, ids = [], set()
    for i, item in enumerate(nodes):
        node = item.get("id", f"#{i}") if isinstance(item, dict) else f"#{i}"
        bad = _node_problems(item, ids)
        if bad:
            problems += [Problem(str(node), m) for m in bad]
            continue
        ids.add(node)
        records.append((node, item["op"], dict(item.get("params", {})), item.get("inputs", []),
                        item.get("merge")))
    for node, _, _, inputs, _ in records:
        if (msg := inputs_problem(inputs, ids)) is not None:
            problems.append(Problem(node, msg))
    if problems:
        raise GenomeError(problems)
    genome = cls._assemble(shape, data["num_outputs"], records, next_id)
    if validate:
        genome.validate()
    return genome


def _node_problems(item: Any, ids: set) -> list[str]:
    if not isinstance(item, dict):
        return [f"a node is a JSON object, got {item!r}"]
    out = [f"unknown key {k!r}; allowed: {sorted(_NODE_KEYS)}" for k in item if k not in _NODE_KEYS]
    if not isinstance(item.get("id"), str):
        out.append("node 'id' must be a string")
    elif item["id"] in ids:
        out.append("a node with this id appears twice")
    if not isinstance(item.get("op"), str):
        out.append("node 'op' must be a string")
    if not isinstance(item.get("params", {}), dict):
        out.append(f"'params' must be an object, got {item['params']!r}")
    if "merge" in item and not isinstance(item["merge"], str):
        out.append(f"'merge' must be 'add' or 'concat', got {item['merge']!r}")
    return out
