"""Repairing an approximate child by distillation: a few hundred steps in which it learns its
parent's softened outputs (Hinton et al. 2015) and the labels (LEMONADE's ANM repair)."""

from __future__ import annotations

from typing import Mapping

import torch
import torch.nn.functional as F

from genomes import Genome
from objectives import Task

from ..base import StateDict, copy_state

__all__ = ["repair"]


def repair(child: Genome, child_state: Mapping[str, torch.Tensor], parent: Genome,
           parent_state: Mapping[str, torch.Tensor], task: Task, *, steps: int = 300,
           batch_size: int = 64, lr: float = 1e-2, temperature: float = 2.0, seed: int = 0,
           device: str | torch.device = "cpu") -> StateDict:
    """The child's weights after ``steps`` of distillation from the parent.

    The loss is half the KL divergence to the parent's outputs softened by ``temperature``
    (scaled by its square) and half cross-entropy on the labels; Adam with a cosine-decaying
    learning rate. The parent is not changed. Batches are drawn from ``task.train`` with a
    generator seeded by ``seed``, so a repair is reproducible.
    """
    if type(steps) is not int or steps < 0:
        raise ValueError(f"steps must be an int >= 0, got {steps!r}")
    dtype = next((v.dtype for v in child_state.values() if v.is_floating_point()), torch.float32)
    teacher = parent.build(device=device, dtype=dtype)
    teacher.load_state_dict(parent_state)
    teacher.eval()
    student = child.build(device=device, dtype=dtype)
    student.load_state_dict(child_state)
    student.train()
    optimizer = torch.optim.Adam(student.parameters(), lr=lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, max(steps, 1))
    gen = torch.Generator().manual_seed(seed)
    t = temperature
    for _ in range(steps):
        idx = torch.randint(len(task.train), (batch_size,), generator=gen)
        x = task.train.x[idx].to(device=device, dtype=dtype)
        y = task.train.y[idx].to(device)
        with torch.no_grad():
            soft = torch.softmax(teacher(x) / t, dim=1)
        out = student(x)
        distill = F.kl_div(F.log_softmax(out / t, dim=1), soft, reduction="batchmean") * t * t
        loss = 0.5 * distill + 0.5 * F.cross_entropy(out, y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
    return copy_state({k: v.to("cpu") for k, v in student.state_dict().items()})
