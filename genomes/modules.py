"""The torch modules some ops compile to (kept apart from ``ops``, which imports no torch)."""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["GlobalPooling", "SeparableConv"]


class SeparableConv(nn.Module):
    """Depthwise convolution followed by a pointwise (1x1) one."""

    def __init__(self, depthwise: nn.Module, pointwise: nn.Module):
        super().__init__()
        self.depthwise = depthwise
        self.pointwise = pointwise

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pointwise(self.depthwise(x))



class GlobalPooling(nn.Module):
    """Average or maximum over all spatial positions: (N, C, ...) -> (N, C)."""

    def __init__(self, mode: str):
        super().__init__()
        self.mode = mode

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.flatten(2)
        return x.mean(2) if self.mode == "avg" else x.amax(2)

    def extra_repr(self) -> str:
        return f"mode={self.mode!r}"
