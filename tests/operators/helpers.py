"""Parents for operator tests: genomes from the spaces with trained-looking float64 weights."""

from __future__ import annotations

import numpy as np
import torch
from hypothesis import strategies as st

from genomes import Genome, spaces

SPACES = ("chain", "multibranch", "cell")


def trained_looking(genome: Genome, seed: int) -> dict[str, torch.Tensor]:
    """Random weights and non-trivial batch-norm statistics, in float64."""
    gen = torch.Generator().manual_seed(seed)
    state = genome.build(seed=seed, dtype=torch.float64).state_dict()
    for key, value in state.items():
        if not value.is_floating_point():
            continue
        if key.endswith("running_var"):
            state[key] = torch.rand(value.shape, generator=gen, dtype=value.dtype) + 0.5
        else:
            state[key] = torch.randn(value.shape, generator=gen, dtype=value.dtype) * 0.5
    return state


def outputs(genome: Genome, state, x: torch.Tensor) -> torch.Tensor:
    net = genome.build(dtype=torch.float64)
    net.load_state_dict(state)
    net.eval()
    with torch.no_grad():
        return net(x)


def close(child: torch.Tensor, parent: torch.Tensor) -> float:
    """The issue's criterion: max |child - parent| / max(1, max |parent|)."""
    return float((child - parent).abs().max() / max(1.0, float(parent.abs().max())))


@st.composite
def parents(draw, names=SPACES, room: bool = False):
    """(space, genome, state, inputs): a trained-looking parent of a random space, 1-D or 2-D.

    ``room`` raises the space's bounds so that long runs of growing morphisms fit in it.
    """
    name = draw(st.sampled_from(names))
    if draw(st.booleans()):
        shape = (draw(st.integers(1, 3)), draw(st.integers(8, 24)))
    else:
        side = draw(st.integers(6, 10))
        shape = (draw(st.integers(1, 2)), side, side)
    options = {"cells_per_stage": 1, "channels": 8} if name == "cell" else {"channels": [4, 8, 12]}
    if room:
        options.update(max_nodes=1000, max_params=10**8)
    space = spaces.get(name, input_shape=shape, num_outputs=3, **options)
    seed = draw(st.integers(0, 2**31))
    genome = space.sample(np.random.default_rng(seed))
    x = torch.randn((4, *shape), dtype=torch.float64, generator=torch.Generator().manual_seed(seed))
    return space, genome, trained_looking(genome, seed), x
