"""Approximate network morphisms (LEMONADE's ANM): moves that make a network smaller, change its
function a little, and are then repaired by distillation from the parent (``repair``). Their
weight transfer keeps every tensor that still fits."""

from __future__ import annotations

import torch

from ..base import Operator, Skip
from ..channels import SOURCES, remap, tied_sources, width
from ..proposer import APPROXIMATE

__all__ = ["RemoveLayer", "ReplaceOp", "Shrink"]


class RemoveLayer(Operator):
    """Remove a one-input layer whose output has its input's shape (a same-width convolution,
    batch norm, an activation, a stride-1 pooling, ...); its consumers read its input instead.

    A batch norm right after a conv or dense layer that feeds only it is folded into that layer
    (scale into the weights, shift into the bias), which keeps the function in eval mode.
    """

    name, exact, treatment = "remove_layer", False, APPROXIMATE

    def _sites(self, parents):
        g = parents[0][0]
        io = g.io_shapes()
        return [n for n in g.topological_order()
                if g.op(n) not in ("input", "output") and len(g.inputs(n)) == 1
                and io[n][0] == io[n][1]]

    def _make(self, genome, state, site, parents, rng, space):
        before = genome.inputs(site)[0]
        folded = genome.op(site) == "batchnorm" and genome.op(before) in SOURCES \
            and genome.successors(before) == [site]
        if folded:
            _fold_batchnorm(genome, state, before, site)
        for v in genome.successors(site):
            genome.replace_input(v, site, before)
        genome.remove(site)
        for key in [k for k in state if k.startswith(site + ".")]:
            del state[key]
        return f"removed {site} ({parents[0][0].op(site)})" + (f", folded into {before}" if folded else "")


def _fold_batchnorm(genome, state, layer: str, bn: str) -> None:
    """y = gamma (Wx + b - mean) / sqrt(var + eps) + beta  ->  W' = s W,  b' = s (b - mean) + beta."""
    scale = state[f"{bn}.weight"] / torch.sqrt(state[f"{bn}.running_var"] + 1e-5)
    prefix = f"{layer}.pointwise." if genome.op(layer) == "sepconv" else f"{layer}."
    w = state[prefix + "weight"]
    bias = state.get(prefix + "bias", torch.zeros(w.shape[0], dtype=w.dtype))
    state[prefix + "weight"] = w * scale.reshape(-1, *[1] * (w.dim() - 1))
    state[prefix + "bias"] = scale * (bias - state[f"{bn}.running_mean"]) + state[f"{bn}.bias"]
    genome.set_params(layer, bias=True)


class Shrink(Operator):
    """Drop the least important output channels of a conv, sepconv or dense layer, by the L1
    norm of their weights (summed over layers tied to it by add merges)."""

    name, exact, treatment = "shrink", False, APPROXIMATE

    def _sites(self, parents):
        g = parents[0][0]
        return [n for n in g.topological_order() if g.op(n) in SOURCES and width(g, n) >= 2]

    def _make(self, genome, state, site, parents, rng, space):
        old = width(genome, site)
        drop = max(1, int(round(old * rng.uniform(0.1, 0.25))))
        importance = torch.zeros(old, dtype=torch.float64)
        tied = tied_sources(genome, site)
        if any(width(genome, t) != old for t in tied):  # e.g. tied through a flatten
            raise Skip("layers tied to this one have other widths")
        for source in tied:
            key = f"{source}.pointwise.weight" if genome.op(source) == "sepconv" else f"{source}.weight"
            importance += state[key].detach().abs().flatten(1).sum(1).double()
        keep = sorted(int(i) for i in torch.argsort(importance, descending=True)[: old - drop])
        remap(genome, state, {site: keep}, rng)
        return f"{site} {old} -> {old - drop} channels"


class ReplaceOp(Operator):
    """Replace a convolution by a depthwise-separable one, initialised with the best rank-one
    factorisation of each input channel's kernels (exact where those kernels have rank one)."""

    name, exact, treatment = "replace_op", False, APPROXIMATE

    min_channels = 8  # with fewer inputs a separable convolution is too poor a stand-in

    def _sites(self, parents):
        g = parents[0][0]
        io = g.io_shapes()
        return [n for n in g.topological_order()
                if g.op(n) == "conv" and g.params(n)["groups"] == 1 and g.params(n)["kernel"] > 1
                and io[n][0][0] >= self.min_channels]

    def _make(self, genome, state, site, parents, rng, space):
        params = genome.params(site)
        genome.set_op(site, "sepconv", **{k: params[k] for k in
                                          ("channels", "kernel", "stride", "dilation", "padding", "bias")})
        w = state.pop(f"{site}.weight")
        c_out, c_in = w.shape[:2]
        depthwise = torch.empty((c_in, 1, *w.shape[2:]), dtype=w.dtype)
        pointwise = torch.empty((c_out, c_in, *[1] * (w.dim() - 2)), dtype=w.dtype)
        for i in range(c_in):
            u, s, vh = torch.linalg.svd(w[:, i].reshape(c_out, -1), full_matrices=False)
            root = s[0].sqrt()
            pointwise[:, i] = (u[:, 0] * root).reshape(c_out, *[1] * (w.dim() - 2))
            depthwise[i, 0] = (vh[0] * root).reshape(w.shape[2:])
        state[f"{site}.depthwise.weight"] = depthwise
        state[f"{site}.pointwise.weight"] = pointwise
        if f"{site}.bias" in state:
            state[f"{site}.pointwise.bias"] = state.pop(f"{site}.bias")
        return f"{site} conv -> sepconv"
