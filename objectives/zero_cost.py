"""Zero-cost proxies: scores of an untrained network that predict its trained accuracy."""

from __future__ import annotations

import torch
from torch import nn

from genomes.registry import shown

from .base import Context, Objective, ObjectiveError

__all__ = ["NASWOT", "naswot_score"]

ACTIVATIONS = (nn.ReLU, nn.GELU, nn.SiLU, nn.Tanh, nn.Sigmoid, nn.ELU, nn.LeakyReLU)


class NASWOT(Objective):
    """NAS without training (Mellor et al., ICML 2021): the log-determinant of the kernel of
    binary activation codes of a minibatch at initialisation. Higher is better."""

    name, direction = "naswot", "max"

    def __init__(self, *, batch_size: int = 64):
        if type(batch_size) is not int or not 2 <= batch_size <= 4096:  # a batch x batch kernel
            raise ValueError(f"option 'batch_size' must be an int in [2, 4,096], got {shown(batch_size)}")
        self.batch_size = batch_size

    def measure(self, ctx: Context) -> float:
        if ctx.task is None:
            raise ObjectiveError("naswot needs a task to draw a minibatch from")
        gen = torch.Generator().manual_seed(ctx.seed)
        idx = torch.randperm(len(ctx.task.train), generator=gen)[: self.batch_size]
        net = ctx.genome.build(seed=ctx.seed, device=ctx.device)
        return naswot_score(net, ctx.task.train.x[idx].to(ctx.device))


@torch.no_grad()
def naswot_score(net: nn.Module, x: torch.Tensor) -> float:
    """``log det(K + I)`` where ``K[i, j]`` counts the units on which samples i and j agree
    (both active or both inactive). A unit is active where its activation's input is positive.

    The ``+ I`` keeps the score finite for degenerate networks whose codes coincide (the
    published form gives −inf there); it changes the score of a healthy network very little.
    """
    codes: list[torch.Tensor] = []

    def hook(module, inputs, output):
        codes.append((inputs[0].detach().flatten(1) > 0).to(torch.float64))

    handles = [m.register_forward_hook(hook) for m in net.modules() if isinstance(m, ACTIVATIONS)]
    try:
        net.train()  # batch statistics, as in the paper
        net(x)
    finally:
        for h in handles:
            h.remove()
    if not codes:
        return 0.0  # log det(I): no activation, no information
    c = torch.cat(codes, dim=1)
    k = c @ c.T + (1 - c) @ (1 - c).T
    return float(torch.linalg.slogdet(k + torch.eye(len(x), dtype=k.dtype, device=k.device))[1])
