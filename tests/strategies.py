"""Hypothesis strategies for genomes drawn from the search spaces, in 1-D and 2-D."""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

from genomes import spaces

SMALL_SPACES = ("chain", "multibranch", "cell")


@st.composite
def input_shapes(draw, ndim: int | None = None) -> tuple[int, ...]:
    ndim = draw(st.sampled_from([1, 2])) if ndim is None else ndim
    channels = draw(st.integers(1, 3))
    if ndim == 1:
        return (channels, draw(st.integers(6, 40)))
    return (channels, draw(st.integers(5, 14)), draw(st.integers(5, 14)))


@st.composite
def genomes(draw, space_names=SMALL_SPACES, ndim: int | None = None):
    """A genome sampled from a random space, input shape, output count and seed."""
    name = draw(st.sampled_from(space_names))
    shape = draw(input_shapes(ndim))
    outputs = draw(st.integers(1, 12))
    space = spaces.get(name, input_shape=shape, num_outputs=outputs)
    return space.sample(np.random.default_rng(draw(st.integers(0, 2**32 - 1))))


def nb201_genomes():
    space = spaces.get("nb201", input_shape=(3, 32, 32), num_outputs=10)
    return st.integers(0, 5**6 - 1).map(
        lambda k: space.from_arch(space.ops[(k // 5**e) % 5] for e in range(6)))
