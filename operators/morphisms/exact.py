"""Exact network morphisms: the child computes its parent's function (eval mode, batch norm with
its running statistics) and starts from the parent's weights (Wei et al. 2016; Chen et al.,
Net2Net 2016; Elsken et al., LEMONADE 2019)."""

from __future__ import annotations

import math

import numpy as np
import torch

from genomes import OPS, Genome
from genomes.build import reset_node

from ..base import Operator, Skip, StateDict
from ..channels import SOURCES, remap, width

__all__ = ["AddSkip", "Deepen", "InsertBranch", "Widen", "WidenKernel", "dtype_of",
           "fresh_tensors", "nonnegative"]

BN_EPS = 1e-5  # torch's default, which every batch norm node uses


def dtype_of(state: StateDict) -> torch.dtype:
    return next((v.dtype for v in state.values() if v.is_floating_point()), torch.float32)


def fresh_tensors(genome: Genome, node: str, rng: np.random.Generator, dtype: torch.dtype) -> StateDict:
    """Freshly initialised tensors for one node, seeded from ``rng``."""
    module = OPS[genome.op(node)].module(genome.node_shapes(node)[0], genome.params(node))
    if module is None:
        return {}
    reset_node(module, torch.Generator().manual_seed(int(rng.integers(2**62))))
    return {f"{node}.{k}": v.to(dtype) for k, v in module.state_dict().items()}


def nonnegative(genome: Genome, node: str, _memo: dict | None = None) -> bool:
    """Whether a node's output can never be negative (so a ReLU after it is the identity)."""
    memo = {} if _memo is None else _memo
    if node not in memo:
        op = genome.op(node)
        if op == "act":
            memo[node] = genome.params(node)["fn"] in ("relu", "sigmoid")
        elif op in ("maxpool", "avgpool", "globalpool", "identity", "flatten", "zero"):
            memo[node] = all(nonnegative(genome, p, memo) for p in genome.inputs(node))
        else:
            memo[node] = False
    return memo[node]


def _uses(genome: Genome, op: str, **params) -> bool:
    return any(genome.op(n) == op and all(genome.params(n).get(k) == v for k, v in params.items())
               for n in genome)


def _identity_bn(state: StateDict, node: str, channels: int, dtype) -> None:
    """Batch norm that passes its input through in eval mode: mean 0, var 1, weight sqrt(1 + eps)."""
    state[f"{node}.weight"] = torch.full((channels,), math.sqrt(1 + BN_EPS), dtype=dtype)
    state[f"{node}.bias"] = torch.zeros(channels, dtype=dtype)
    state[f"{node}.running_mean"] = torch.zeros(channels, dtype=dtype)
    state[f"{node}.running_var"] = torch.ones(channels, dtype=dtype)
    state[f"{node}.num_batches_tracked"] = torch.zeros((), dtype=torch.long)


class Deepen(Operator):
    """Insert an identity-initialised layer on an edge: a convolution (any odd kernel that fits)
    on spatial tensors, a dense layer on flat ones; then batch norm set to the identity where
    the genome uses batch norm, and a ReLU where the input is non-negative (so it is the
    identity too)."""

    name, exact, adds_nodes = "deepen", True, 1
    max_units = 4096  # without a space to bound it, no identity dense layer beyond 4096^2 weights

    def _sites(self, parents):
        g = parents[0][0]
        return [(u, v) for v in g.topological_order() for u in g.inputs(v)]

    def _make(self, genome, state, site, parents, rng, space):
        u, v = site
        shape = genome.io_shapes()[u][1]
        dtype = dtype_of(state)
        bn = _uses(genome, "batchnorm")
        channels = shape[0]
        weights = channels * channels * (9 if len(shape) > 1 else 1)  # at most, before allocating
        if space is not None and genome.num_params() + weights > space.bounds.max_params:
            raise Skip("no room for the new layer's parameters")
        if len(shape) == 1 and channels > self.max_units:
            raise Skip("an identity dense layer this wide would be huge")
        if len(shape) > 1:
            kernels = [k for k in (1, 3, 5) if k <= min(shape[1:])]
            kernel = kernels[int(rng.integers(len(kernels)))]
            x = genome.add("conv", [u], channels=channels, kernel=kernel, bias=not bn)
            w = torch.zeros((channels, channels, *[kernel] * (len(shape) - 1)), dtype=dtype)
            centre = (slice(None), slice(None), *[kernel // 2] * (len(shape) - 1))
            w[centre] = torch.eye(channels, dtype=dtype)
            layer = f"conv {kernel}"
        else:
            x = genome.add("dense", [u], units=channels, bias=not bn)
            w = torch.eye(channels, dtype=dtype)
            layer = "dense"
        state[f"{x}.weight"] = w
        if not bn:
            state[f"{x}.bias"] = torch.zeros(channels, dtype=dtype)
        else:
            x = genome.add("batchnorm", [x])
            _identity_bn(state, x, channels, dtype)
            layer += " + batchnorm"
        if nonnegative(genome, u) and _uses(genome, "act", fn="relu"):
            x = genome.add("act", [x], fn="relu")
            layer += " + relu"
        genome.replace_input(v, u, x)
        return f"{layer} between {u} and {v}"


class Widen(Operator):
    """Net2Wider: grow a conv, sepconv or dense layer by copying randomly chosen channels; the
    copies' outgoing weights share the original's (through batch norm, pooling, add merges —
    whose other addends are widened alike —, concat and flatten, up to the consuming layers)."""

    name, exact = "widen", True

    def _sites(self, parents):
        g = parents[0][0]
        return [n for n in g.topological_order() if g.op(n) in SOURCES]

    def _make(self, genome, state, site, parents, rng, space):
        old = width(genome, site)
        new = old + max(1, int(round(old * rng.uniform(0.25, 1.0))))
        mapping = list(range(old)) + [int(c) for c in rng.integers(old, size=new - old)]
        sources = remap(genome, state, {site: mapping}, rng)
        tied = sorted(set(sources) - {site})
        return f"{site} {old} -> {new}" + (f" (with {', '.join(tied)})" if tied else "")


class AddSkip(Operator):
    """A new branch from an earlier node into a later one: merged by ``add`` with its last layer
    zero-initialised, or by ``concat`` with the consumer's weights for the new channels zeroed."""

    name, exact, branching, adds_nodes = "add_skip", True, True, 1

    def _sites(self, parents):
        g = parents[0][0]
        order = g.topological_order()
        sites = []
        for j, b in enumerate(order):
            if g.op(b) in ("input", "output"):
                continue
            later = _descendants(g, b)
            for a in order[:j]:
                if a in later or a in g.inputs(b) or g.op(a) == "output":
                    continue
                merge = g.node(b).merge if len(g.inputs(b)) > 1 else None
                if merge in (None, "add"):
                    sites.append((a, b, "add"))
                if merge in (None, "concat"):
                    sites.append((a, b, "concat"))
        return sites

    def _make(self, genome, state, site, parents, rng, space):
        a, b, merge = site
        io = genome.io_shapes()  # the parent's shapes, before the branch exists
        source, target = io[a][1], io[b][0]
        dtype = dtype_of(state)
        if merge == "add":
            channels = target[0]
        else:
            channels = max(1, int(round(target[0] * rng.uniform(0.25, 0.5))))
        end, layers = self._branch(genome, a, source, target, channels)
        for node in layers:
            state.update(fresh_tensors(genome, node, rng, dtype))
        if merge == "add":
            for key in [k for k in state if k.startswith(end + ".")]:
                state[key] = torch.zeros_like(state[key])
        genome.set_merge(b, merge)
        genome.connect(end, b)
        if merge == "concat":
            remap(genome, state, {end: [None] * channels}, rng, fresh=layers, shapes=io)
        return (a, b), f"{merge} skip {a} -> {b} via {' + '.join(genome.op(n) for n in layers)}"

    @staticmethod
    def _branch(genome: Genome, a: str, source, target, channels: int):
        """Layers from ``a`` to something shaped like ``target`` (with ``channels`` channels)."""
        if len(source) > 1 and len(target) > 1:
            ratios = {-(-s // t) for s, t in zip(source[1:], target[1:])}  # ceil: 9 -> 5 is /2
            if len(ratios) != 1:
                raise Skip("no integer stride matches the shapes")
            stride = ratios.pop()
            if any((s - 1) // stride + 1 != t for s, t in zip(source[1:], target[1:])):
                raise Skip("the strided shape does not match")
            end = genome.add("conv", [a], channels=channels, kernel=1, stride=stride, bias=False)
            return end, [end]
        if len(source) > 1 and len(target) == 1:
            pool = genome.add("globalpool", [a])
            end = genome.add("dense", [pool], units=channels, bias=False)
            return end, [pool, end]
        if len(source) == 1 and len(target) == 1:
            end = genome.add("dense", [a], units=channels, bias=False)
            return end, [end]
        raise Skip("a flat tensor cannot feed a spatial one")


def _descendants(genome: Genome, node: str) -> set[str]:
    seen, todo = set(), [node]
    while todo:
        for s in genome.successors(todo.pop()):
            if s not in seen:
                seen.add(s)
                todo.append(s)
    return seen


class WidenKernel(Operator):
    """Grow a convolution's kernel by 2 (e.g. 3 -> 5) by zero-padding it; the padding grows with
    it, so the output keeps its size and values."""

    name, exact = "widen_kernel", True

    def _sites(self, parents):
        g = parents[0][0]
        return [n for n in g.topological_order() if g.op(n) in ("conv", "sepconv")]

    def _make(self, genome, state, site, parents, rng, space):
        params = genome.params(site)
        k, pad = params["kernel"], params["padding"]
        genome.set_params(site, kernel=k + 2,
                          padding=pad if pad == "same" else pad + params["dilation"])
        if genome.problems():
            raise Skip("the larger kernel does not fit its input")
        key = f"{site}.depthwise.weight" if genome.op(site) == "sepconv" else f"{site}.weight"
        w = state[key]
        spatial = w.dim() - 2
        state[key] = torch.nn.functional.pad(w, [1, 1] * spatial)
        return f"{site} kernel {k} -> {k + 2}"


class InsertBranch(Operator):
    """Split a conv, sepconv or dense layer into two parallel copies merged by ``add``; the
    copies share its outgoing weights in random proportions (which sum to one), so the sum is
    the original layer and the two branches can drift apart in training."""

    name, exact, branching, adds_nodes = "insert_branch", True, True, 2

    def _sites(self, parents):
        g = parents[0][0]
        return [n for n in g.topological_order() if g.op(n) in SOURCES
                and not (g.op(n) == "conv" and g.params(n)["groups"] != 1)]

    def _make(self, genome, state, site, parents, rng, space):
        node = genome.node(site)
        twin = genome.add(node.op, node.inputs, merge=node.merge, **node.params)
        consumers = genome.successors(site)
        merged = genome.add("identity", [site, twin], merge="add")
        for v in consumers:
            genome.replace_input(v, site, merged)
        share = float(rng.uniform(0.25, 0.75))
        linear = ("pointwise.weight", "pointwise.bias") if node.op == "sepconv" else ("weight", "bias")
        for key in [k for k in state if k.startswith(site + ".")]:
            suffix = key[len(site) + 1:]
            if suffix in linear:
                state[f"{twin}.{suffix}"] = state[key] * (1 - share)
                state[key] = state[key] * share
            else:  # the depthwise kernel is shared by both copies
                state[f"{twin}.{suffix}"] = state[key].clone()
        return f"{site} split into {site} + {twin} ({share:.2f} / {1 - share:.2f})"

