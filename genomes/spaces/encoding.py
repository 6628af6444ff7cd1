"""Fixed-length vectors describing genomes, for predictors and surrogate models.

``describe(genome, vocabulary)`` summarises any legal genome by graph invariants: op counts,
activation counts, size, depth, merges, fan-in/out, paths, parameters, widths, kernels and
downsamplings. Every entry is read off the graph without its node ids, so isomorphic genomes
(equal canonical hashes) get equal vectors. The cell spaces put a one-hot block of edge ops in
front (``CellSpace.encode``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np

from ..genome import Genome
from ..ops import ACTIVATIONS

__all__ = ["MAX_PATHS", "describe", "description_names"]

MAX_PATHS = 10**12  # input -> output paths are counted up to this (they grow exponentially)
_SHAPE_FEATURES = ("nodes", "edges", "depth", "merges_add", "merges_concat", "max_fan_in",
                   "max_fan_out", "log10_paths", "log10_params", "max_log2_channels",
                   "mean_log2_channels", "max_kernel", "mean_kernel", "downsamplings")


def description_names(vocabulary: Iterable[str]) -> list[str]:
    """The name of each entry of ``describe(genome, vocabulary)``, in order."""
    return ([f"count_{op}" for op in sorted(vocabulary)] + [f"act_{fn}" for fn in ACTIVATIONS]
            + list(_SHAPE_FEATURES))


def describe(genome: Genome, vocabulary: Iterable[str]) -> np.ndarray:
    """A float vector of ``len(description_names(vocabulary))`` finite entries.

    ``vocabulary`` is the set of ops the genome may use (a space's ``vocabulary``); an op outside
    it is a ``ValueError``, an illegal genome a ``GenomeError``. Paths are counted up to
    ``MAX_PATHS``; parameters, paths and channels enter as logarithms, so that the entries stay
    on comparable scales.

    >>> from genomes import spaces
    >>> space = spaces.get("chain", input_shape=(1, 8, 8), num_outputs=3)
    >>> vector = describe(space.sample(np.random.default_rng(0)), space.vocabulary)
    >>> vector.shape == (len(description_names(space.vocabulary)),)
    True
    """
    ops = sorted(vocabulary)
    index = {op: k for k, op in enumerate(ops)}
    io = genome.io_shapes()  # validates first
    counts = np.zeros(len(ops))
    acts = dict.fromkeys(ACTIVATIONS, 0)
    depth: dict[str, int] = {}
    paths: dict[str, int] = {}
    merges = {"add": 0, "concat": 0}
    fan_in = fan_out = edges = downsamplings = 0
    channels: list[float] = []
    kernels: list[int] = []
    for node in genome.topological_order():
        op = genome.op(node)
        if op not in index:
            raise ValueError(f"node {node!r}: op {op!r} is not in the vocabulary {ops}")
        counts[index[op]] += 1
        params = genome.params(node)
        inputs = genome.inputs(node)
        edges += len(inputs)
        fan_in = max(fan_in, len(inputs))
        fan_out = max(fan_out, len(genome.successors(node)))
        depth[node] = max((depth[u] + 1 for u in inputs), default=0)
        paths[node] = min(MAX_PATHS, sum(paths[u] for u in inputs)) if inputs else 1
        if len(inputs) > 1:
            merges[genome.node(node).merge] += 1
        if op == "act":
            acts[params["fn"]] += 1
        if "kernel" in params:
            kernels.append(params["kernel"])
        shape_in, shape_out = io[node]
        if op not in ("input", "output") and len(shape_out) > 1:
            channels.append(math.log2(shape_out[0]))
        if len(shape_out) > 1 and math.prod(shape_out[1:]) < math.prod(shape_in[1:]):
            downsamplings += 1
    out = genome.output_node
    shape = [len(genome), edges, depth[out], merges["add"], merges["concat"], fan_in, fan_out,
             math.log10(paths[out]), math.log10(1 + genome.num_params()),
             # fsum: exactly rounded, so the mean does not depend on the (node-id) visiting order
             max(channels, default=0.0), math.fsum(channels) / len(channels) if channels else 0.0,
             max(kernels, default=0), math.fsum(kernels) / len(kernels) if kernels else 0.0,
             downsamplings]
    return np.concatenate([counts, np.array(list(acts.values()), dtype=float),
                           np.array(shape, dtype=float)])
