"""NAS-Bench-201: all 15,625 arch strings round-trip; networks match the published skeleton."""

import numpy as np
import pytest
import torch

from genomes import spaces

EXAMPLE = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"


@pytest.fixture(scope="module")
def space():
    return spaces.get("nb201", input_shape=(3, 32, 32), num_outputs=10)


def test_all_15625_arch_strings_round_trip(space):
    strings = list(space.arch_strings())
    assert len(strings) == len(set(strings)) == 5**6
    for s in strings:
        assert space.to_arch_string(space.from_arch_string(s)) == s


def test_a_sample_of_cells_builds_and_runs_on_32x32_images(space):
    rng = np.random.default_rng(0)
    strings = list(space.arch_strings())
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    for k in rng.choice(len(strings), size=6, replace=False):
        genome = space.from_arch_string(strings[k])
        net = genome.build().eval()
        with torch.no_grad():
            y = net(x)
        assert y.shape == (2, 10) and torch.isfinite(y).all()
        assert space.contains(genome)


# ---- parameter counts by hand, following NB201's published skeleton (C=16, N=5, 10 classes) ----
def _conv(c_in, c_out, k):
    return c_in * c_out * k * k


def _bn(c):
    return 2 * c


def _edge(op, c):
    return {"none": 0, "skip_connect": 0, "avg_pool_3x3": 0,
            "nor_conv_1x1": _conv(c, c, 1) + _bn(c), "nor_conv_3x3": _conv(c, c, 3) + _bn(c)}[op]


def _resblock(c_in, c_out):
    return (_conv(c_in, c_out, 3) + _bn(c_out) + _conv(c_out, c_out, 3) + _bn(c_out)
            + _conv(c_in, c_out, 1))


def hand_count(arch) -> int:
    stem = _conv(3, 16, 3) + _bn(16)
    cells = sum(5 * _edge(op, c) for c in (16, 32, 64) for op in arch)
    head = _bn(64) + 64 * 10 + 10
    return stem + cells + _resblock(16, 32) + _resblock(32, 64) + head


@pytest.mark.parametrize("arch_string, published", [
    ("|none~0|+|none~0|none~1|+|none~0|none~1|none~2|", 73_306),
    ("|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|",
     1_531_546),
    (EXAMPLE, None),
    ("|nor_conv_1x1~0|+|skip_connect~0|nor_conv_1x1~1|+|avg_pool_3x3~0|none~1|nor_conv_3x3~2|", None),
])
def test_parameter_counts_match_a_hand_count(space, arch_string, published):
    genome = space.from_arch_string(arch_string)
    expected = hand_count(space.parse_arch_string(arch_string))
    assert published is None or expected == published  # NB201's smallest and largest networks
    assert genome.num_params() == expected
    assert sum(p.numel() for p in genome.build().parameters()) == expected


def test_bounds_are_the_largest_network(space):
    assert space.bounds.max_params == 1_531_546


@pytest.mark.parametrize("bad, words", [
    ("|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|", "node groups"),
    ("|conv_5x5~0|+|none~0|none~1|+|none~0|none~1|none~2|", "unknown op 'conv_5x5'"),
    ("|none~1|+|none~0|none~1|+|none~0|none~1|none~2|", "must come from node 0"),
    ("|none~0|+|none~0|+|none~0|none~1|none~2|", "needs 2 edges"),
    ("none~0+|none~0|none~1|+|none~0|none~1|none~2|", "must look like"),
])
def test_malformed_arch_strings_name_the_offending_part(space, bad, words):
    with pytest.raises(ValueError, match=words):
        space.from_arch_string(bad)


def test_to_arch_string_refuses_a_genome_outside_the_space(space):
    genome = space.from_arch_string(EXAMPLE)
    genome.set_params("c7_e0_1_1", channels=48)  # one conv in one cell grows
    with pytest.raises(ValueError, match="not a genome of the nb201 space"):
        space.to_arch_string(genome)
    chain = spaces.get("chain", input_shape=(3, 32, 32), num_outputs=10)
    with pytest.raises(ValueError, match="not a genome of the nb201 space"):
        space.to_arch_string(chain.sample(np.random.default_rng(0)))
