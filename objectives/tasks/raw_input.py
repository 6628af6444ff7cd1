"""``Preprocessing`` as a torch module, scriptable and exportable to ONNX.

Kept in its own file, without ``from __future__ import annotations``: TorchScript reads the
class annotations below as types, not strings.
"""

from typing import List, Sequence

import torch

__all__ = ["RawInput"]


class RawInput(torch.nn.Module):
    """Raw inputs in, network inputs out: cast to float32, reorder axes to channels first
    (``perm``; empty: already so), add a channel axis where the raw data have none, then
    ``(x - mean) / std`` per channel."""

    perm: List[int]
    add_channel: bool

    def __init__(self, perm: List[int], add_channel: bool, mean: Sequence[float],
                 std: Sequence[float], raw_rank: int):
        super().__init__()
        self.perm = list(perm)
        self.add_channel = bool(add_channel)
        rank = raw_rank + int(add_channel)  # of the network input, batch included
        view = (1, len(mean)) + (1,) * (rank - 2)
        self.register_buffer("mean", torch.tensor(list(mean), dtype=torch.float32).reshape(view))
        self.register_buffer("std", torch.tensor(list(std), dtype=torch.float32).reshape(view))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.to(torch.float32)
        if len(self.perm) > 0:
            x = x.permute(self.perm)
        if self.add_channel:
            x = x.unsqueeze(1)
        return (x - self.mean) / self.std
