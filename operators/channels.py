"""Channel remapping: the weight surgery behind widening, concat skips and shrinking.

A *map* says, for each new channel of a node's output, which old channel it copies (an int) or
that it is a brand-new channel that must not change the network's function (None). Given maps
for some source layers (conv, sepconv, dense), ``remap`` follows them forward through the layers
that keep channels (batch norm, activations, pooling, identity, zero, global pooling; flatten
expands a channel into its spatial block; concat places a branch's channels at its offset) up
to the layers that consume channels, and rewrites the weights:

- a source's rows (and bias) are copied per its map; None rows are zero;
- a channel-keeping layer's per-channel tensors (batch norm, depthwise kernels) are copied per
  channel; None channels get the identity (batch norm) or zero (depthwise);
- a consumer's columns are copied per its input map and scaled by split fractions that sum to 1
  over the copies of each old channel, so duplicated inputs add up to what one input gave;
  None columns are zero, so brand-new channels contribute nothing.

Where branches meet in an ``add`` merge their maps must agree, so the sources behind the other
addends are remapped the same way ("all addends widened together"). When that is impossible
(the map would reach the network input, the output, a grouped convolution, or a concat behind
an addend) ``Conflict`` is raised and the caller tries another site.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from genomes import Genome

from .base import Skip, StateDict

__all__ = ["Conflict", "Map", "KEEP_CHANNELS", "SOURCES", "remap", "set_width", "tied_sources",
           "width"]

Map = list  # list[int | None]
SOURCES = ("conv", "sepconv", "dense")
KEEP_CHANNELS = ("batchnorm", "act", "maxpool", "avgpool", "globalpool", "identity", "zero")


class Conflict(Skip):
    """A remap cannot stay function-preserving here."""


def width(genome: Genome, node: str) -> int:
    params = genome.params(node)
    return params["units"] if genome.op(node) == "dense" else params["channels"]


def set_width(genome: Genome, node: str, value: int) -> None:
    genome.set_params(node, **{"units" if genome.op(node) == "dense" else "channels": value})


def remap(genome: Genome, state: StateDict, sources: dict[str, Map], rng: np.random.Generator,
          *, fresh: Sequence[str] = (), split: str = "random", shapes=None) -> dict[str, Map]:
    """Apply output maps to ``sources`` (and every source tied to them), fix the weights in
    ``state`` in place, and set the new widths in ``genome``. Returns the final source maps.

    ``fresh`` nodes are new: their output rows stay as initialised (their map only gives their
    width), but their inputs are remapped like any other layer's. ``split`` is "random" (fractions drawn from ``rng``, which breaks the
    symmetry between copies) or "equal" (Net2Net's 1/k). ``shapes`` are the parent's
    ``io_shapes()`` when the graph was already changed (maps refer to the old channels).
    """
    shapes = genome.io_shapes() if shapes is None else shapes
    in_maps, sources = _settle(genome, shapes, sources)
    for node, mapping in sources.items():
        if genome.op(node) not in SOURCES:
            raise Conflict(f"{node} ({genome.op(node)}) cannot take new output channels")
        if genome.op(node) == "conv" and genome.params(node)["groups"] != 1:
            raise Conflict(f"grouped convolution {node} cannot be widened")
    for node in genome.topological_order():  # a fresh node keeps its rows but not its inputs
        own = None if node in fresh else sources.get(node)
        _rewrite(genome, state, node, in_maps.get(node), own, rng, split)
    for node, mapping in sources.items():
        set_width(genome, node, len(mapping))
    return sources


def tied_sources(genome: Genome, node: str) -> list[str]:
    """The source layers that must change their channels together with ``node``."""
    _, sources = _settle(genome, genome.io_shapes(), {node: list(range(width(genome, node)))})
    return list(sources)


def _settle(genome: Genome, shapes, sources: dict[str, Map]):
    """Propagate, tying the sources behind unchanged addends, until nothing new is tied."""
    sources = dict(sources)
    for _ in range(len(genome) + 1):
        in_maps, _, tie = _propagate(genome, shapes, sources)
        if not tie:
            return in_maps, sources
        sources.update(tie)
    raise Conflict("tying add-merged branches did not settle")  # pragma: no cover


def _propagate(genome: Genome, shapes, sources: dict[str, Map]):
    in_maps: dict[str, Map | None] = {}
    out_maps: dict[str, Map | None] = {}
    for node in genome.topological_order():
        preds = genome.inputs(node)
        op = genome.op(node)
        maps = [out_maps.get(p) for p in preds]
        if not preds or all(m is None for m in maps):
            im = None
        elif len(preds) == 1 or genome.node(node).merge == "add":
            changed = [m for m in maps if m is not None]
            if any(m != changed[0] for m in changed):
                raise Conflict(f"add at {node} merges branches remapped differently")
            if len(changed) < len(maps):  # tie the unchanged addends to the same map
                tie = {}
                for p, m in zip(preds, maps):
                    if m is None:
                        for src in _sources_behind(genome, p):
                            if src in sources and sources[src] != changed[0]:
                                raise Conflict(f"{src} is already remapped differently")
                            tie[src] = changed[0]
                return in_maps, out_maps, tie
            im = changed[0]
        else:  # concat: each input's channels at its offset among the old channels
            im, base = [], 0
            for p, m in zip(preds, maps):
                old = shapes[p][1][0] if p in shapes else len(m)  # a fresh branch: all new
                im += [None if j is None else base + j for j in (range(old) if m is None else m)]
                base += old
        in_maps[node] = im
        if node in sources:
            out_maps[node] = sources[node]
        elif im is None or op in SOURCES:
            out_maps[node] = None
        elif op in KEEP_CHANNELS:
            out_maps[node] = im
        elif op == "flatten":
            block = int(np.prod(shapes[node][0][1:])) if len(shapes[node][0]) > 1 else 1
            out_maps[node] = [None if j is None else j * block + p for j in im for p in range(block)]
        else:  # the output, or an op that cannot carry a remap
            raise Conflict(f"a remap would reach {node} ({op})")
    return in_maps, out_maps, {}


def _sources_behind(genome: Genome, node: str) -> list[str]:
    """The source layers whose channels reach ``node`` through channel-keeping layers only
    (each node visited once, so diamonds of add merges stay linear)."""
    found, seen, todo = [], set(), [node]
    while todo:
        n = todo.pop()
        if n in seen:
            continue
        seen.add(n)
        op = genome.op(n)
        if op in SOURCES:
            found.append(n)
        elif op in KEEP_CHANNELS and genome.node(n).merge != "concat":
            todo.extend(genome.inputs(n))
        else:
            raise Conflict(f"cannot remap the channels made by {n} ({op})")
    return sorted(found)


def _fractions(mapping: Map, rng: np.random.Generator, split: str) -> np.ndarray:
    """Per new channel: its share of the old channel it copies (shares of one channel sum to 1)."""
    out = np.zeros(len(mapping))
    copies: dict[int, list[int]] = {}
    for j, m in enumerate(mapping):  # one pass: flatten maps hold C*H*W entries
        if m is not None:
            copies.setdefault(m, []).append(j)
    for where in copies.values():
        if len(where) == 1:
            out[where[0]] = 1.0
            continue
        shares = np.full(len(where), 1.0) if split == "equal" else rng.uniform(0.5, 1.5, len(where))
        out[where] = shares / shares.sum()
    return out


def _take(tensor: torch.Tensor, mapping: Map, dim: int, fill: float = 0.0,
          scale: np.ndarray | None = None) -> torch.Tensor:
    """Index ``tensor`` along ``dim`` by ``mapping``; None entries are ``fill``."""
    index = torch.tensor([0 if m is None else m for m in mapping], dtype=torch.long)
    out = tensor.index_select(dim, index).clone()
    shape = [1] * tensor.dim()
    shape[dim] = len(mapping)
    if scale is not None:
        out = out * torch.as_tensor(scale, dtype=tensor.dtype).reshape(shape)
    missing = [j for j, m in enumerate(mapping) if m is None]
    if missing:
        out.index_fill_(dim, torch.tensor(missing), fill)
    return out


def _rewrite(genome: Genome, state: StateDict, node: str, im: Map | None, om: Map | None,
             rng: np.random.Generator, split: str) -> None:
    op = genome.op(node)
    key = node + "."
    if op == "conv" or op == "dense":
        if im is not None:
            if op == "conv" and genome.params(node)["groups"] != 1:
                raise Conflict(f"grouped convolution {node} cannot take remapped inputs")
            state[key + "weight"] = _take(state[key + "weight"], im, 1, scale=_fractions(im, rng, split))
        if om is not None:
            state[key + "weight"] = _take(state[key + "weight"], om, 0)
            if key + "bias" in state:
                state[key + "bias"] = _take(state[key + "bias"], om, 0)
    elif op == "sepconv":
        dw, pw = key + "depthwise.weight", key + "pointwise.weight"
        if im is not None:
            state[dw] = _take(state[dw], im, 0)
            state[pw] = _take(state[pw], im, 1, scale=_fractions(im, rng, split))
        if om is not None:
            state[pw] = _take(state[pw], om, 0)
            if key + "pointwise.bias" in state:
                state[key + "pointwise.bias"] = _take(state[key + "pointwise.bias"], om, 0)
    elif op == "batchnorm" and im is not None:
        for name, fill in (("weight", 1.0), ("bias", 0.0), ("running_mean", 0.0), ("running_var", 1.0)):
            state[key + name] = _take(state[key + name], im, 0, fill=fill)
