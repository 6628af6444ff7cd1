"""A toy learning proposer, for the tests only: it samples the space, and learns a tensor (and a
list of ids) from everything ``tell`` hands it. ``EVONAS_TOY_DIE=propose:G`` or ``tell:G`` kills
the process at that point of generation G (a kill test's hook)."""

from __future__ import annotations

import os
import signal

import numpy as np
import torch

from operators import Child, Proposer, Provenance


class Toy(Proposer):
    name = "toy"

    def __init__(self, *, decay: float = 0.5, misbehave: str = "no"):
        if not 0 <= decay <= 1:
            raise ValueError(f"option 'decay' must be in [0, 1], got {decay!r}")
        self.decay, self.misbehave = decay, misbehave  # misbehave: no, raise, edit (its parent)
        self.memory = torch.zeros(4, dtype=torch.float64)
        self.told: list[list] = []  # [id, operator, status, generation] per result
        self.directions: dict[str, str] = {}

    def propose(self, request):
        self.directions = dict(request.directions)
        self._maybe_die("propose", request.generation)
        if self.misbehave == "raise":
            raise RuntimeError("a bug in a proposer")
        if self.misbehave == "edit":  # forgets to copy: edits an individual's genome in place
            parent = request.parents[0][0].genome
            request.space.mutate_edge(parent, np.random.default_rng(0))
        children = []
        for _ in range(request.n):
            rng = np.random.default_rng(request.rng.integers(2**63))
            genome = request.space.sample(rng)
            children.append(Child(genome, None, Provenance(self.name, (), (), "sample", False)))
        return children

    def tell(self, results):
        if results:
            self._maybe_die("tell", results[0].generation)
        key = next(iter(self.directions), None)
        values = [r.record.objectives[key] for r in results
                  if r.status == "evaluated" and r.record is not None and r.record.ok and key]
        step = torch.tensor([len(results), sum(r.status == "duplicate" for r in results),
                             float(np.sum(values)) if values else 0.0,
                             float(sum(r.id for r in results if r.id is not None))],
                            dtype=torch.float64)
        self.memory = self.decay * self.memory + (1 - self.decay) * step
        self.told += [[r.id, r.operator, r.status, r.generation] for r in results]

    def state(self):
        return {"told": self.told, "directions": self.directions}, {"memory": self.memory.clone()}

    def load_state(self, data, tensors):
        self.told = [list(t) for t in data.get("told", [])]
        self.directions = dict(data.get("directions", {}))
        if "memory" in tensors:
            self.memory = tensors["memory"].clone()

    @staticmethod
    def _maybe_die(where: str, generation: int) -> None:
        if os.environ.get("EVONAS_TOY_DIE") == f"{where}:{generation}":
            os.kill(os.getpid(), signal.SIGKILL)
