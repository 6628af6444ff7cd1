"""Channel remapping through flatten, concat and add merges, and where it must refuse."""

import numpy as np
import pytest
import torch

from genomes import Genome
from operators.channels import Conflict, remap, tied_sources
from tests.operators.helpers import close, outputs, trained_looking


def _check_widen(genome, node, new_width, split="random"):
    state = trained_looking(genome, 0)
    x = torch.randn(3, *genome.input_shape, dtype=torch.float64)
    before = outputs(genome, state, x)
    child, new_state = genome.copy(), dict(state)
    old = child.params(node).get("channels", child.params(node).get("units"))
    mapping = list(range(old)) + list(np.random.default_rng(0).integers(old, size=new_width - old))
    sources = remap(child, new_state, {node: mapping}, np.random.default_rng(1), split=split)
    assert close(outputs(child, new_state, x), before) <= 1e-10
    return child, new_state, sources


def test_widening_through_flatten_into_dense():
    g = Genome((1, 6, 6), 3)
    x = g.add("conv", [g.add("input", id="input")], id="c", channels=4, kernel=3)
    x = g.add("flatten", [g.add("act", [g.add("batchnorm", [x])])])
    g.add("output", [g.add("dense", [g.add("dense", [x], units=5)], units=3)], id="output")
    child, state, _ = _check_widen(g, "c", 7)
    assert child.params("c")["channels"] == 7 and state["n3.weight"].shape == (5, 7 * 36)


def test_widening_one_side_of_a_concat_and_equal_splits():
    g = Genome((2, 5, 5), 3)
    x = g.add("input", id="input")
    a = g.add("conv", [x], id="a", channels=3, kernel=3)
    b = g.add("conv", [x], id="b", channels=2, kernel=1)
    m = g.add("batchnorm", [a, b], merge="concat")
    y = g.add("conv", [m], id="y", channels=4, kernel=3)
    g.add("output", [g.add("dense", [g.add("globalpool", [y])], units=3)], id="output")
    state = trained_looking(g, 0)
    child, new, _ = _check_widen(g, "a", 5, split="equal")
    assert new["y.weight"].shape[1] == 7  # a's 5 channels, then b's 2 at their new offset
    assert torch.equal(new["y.weight"][:, 5:], state["y.weight"][:, 3:])
    for old in range(3):  # Net2Net's equal split: k copies of a channel carry 1/k each
        copies = [j for j in range(5) if torch.equal(new["a.weight"][j], state["a.weight"][old])]
        for j in copies:
            assert torch.allclose(new["y.weight"][:, j], state["y.weight"][:, old] / len(copies))


def _residual(skip_from_input=False):
    g = Genome((2, 6, 6), 3)
    x = g.add("input", id="input")
    a = g.add("conv", [x], id="a", channels=2 if skip_from_input else 4, kernel=3)
    b = x if skip_from_input else g.add("act", [g.add("conv", [x], id="b", channels=4, kernel=1)])
    m = g.add("identity", [a, b], merge="add", id="m")
    y = g.add("conv", [m], id="y", channels=4, kernel=3)
    g.add("output", [g.add("dense", [g.add("globalpool", [y])], id="head", units=3)], id="output")
    return g


def test_all_addends_are_widened_together():
    child, _, sources = _check_widen(_residual(), "a", 6)
    assert set(sources) == {"a", "b"} and child.params("b")["channels"] == 6
    assert set(tied_sources(_residual(), "b")) == {"a", "b"}


@pytest.mark.parametrize("why, genome, node", [
    ("an addend comes straight from the input", _residual(skip_from_input=True), "a"),
    ("the head feeds the output", _residual(), "head"),
])
def test_remaps_that_cannot_keep_the_function_are_refused(why, genome, node):
    state = trained_looking(genome, 0)
    old = genome.params(node).get("channels", genome.params(node).get("units"))
    with pytest.raises(Conflict):
        remap(genome.copy(), dict(state), {node: list(range(old)) + [0]}, np.random.default_rng(0))


def test_grouped_convolutions_are_refused():
    g = Genome((4, 6, 6), 3)
    a = g.add("conv", [g.add("input", id="input")], id="a", channels=4, kernel=1)
    y = g.add("conv", [a], id="y", channels=4, kernel=3, groups=2)
    g.add("output", [g.add("dense", [g.add("globalpool", [y])], units=3)], id="output")
    with pytest.raises(Conflict, match="grouped"):
        remap(g.copy(), trained_looking(g, 0), {"a": [0, 1, 2, 3, 0]}, np.random.default_rng(0))
