"""Operators give up quickly and cleanly where nothing can work, and stay fast on wide tensors."""

import time

import numpy as np
import pytest

import operators
from genomes import Genome, spaces
from operators import NotApplicable, morphisms
from tests.operators.helpers import close, outputs, trained_looking


def test_a_fixed_benchmark_space_refuses_every_operator_at_once():
    space = spaces.get("nb201", input_shape=(3, 32, 32), num_outputs=10)
    genome = space.sample(np.random.default_rng(0))
    state = genome.build().state_dict()
    for name in operators.names():
        if operators.get(name).arity != 1:
            continue
        start = time.perf_counter()
        with pytest.raises(NotApplicable, match="space is fixed"):
            operators.get(name).propose([(genome, state)], np.random.default_rng(0), space=space)
        assert time.perf_counter() - start < 1.0


def test_a_genome_at_its_node_bound_gets_no_more_nodes():
    loose = spaces.get("multibranch", input_shape=(1, 8, 8), num_outputs=3)
    genome = loose.sample(np.random.default_rng(0))
    full = spaces.get("multibranch", input_shape=(1, 8, 8), num_outputs=3, max_nodes=len(genome))
    state = trained_looking(genome, 0)
    for name in ("deepen", "add_skip", "insert_branch"):
        with pytest.raises(NotApplicable, match="no room for more nodes"):
            morphisms.apply(name, genome, state, np.random.default_rng(0), space=full)
    assert morphisms.apply("widen", genome, state, np.random.default_rng(0), space=full)


def _flatten_head(channels: int, side: int) -> Genome:
    g = Genome((1, side, side), 3)
    x = g.add("conv", [g.add("input", id="input")], id="c", channels=channels, kernel=3)
    x = g.add("flatten", [g.add("act", [x])], id="f")
    g.add("output", [g.add("dense", [x], id="d", units=3)], id="output")
    return g


def test_widening_behind_a_wide_flatten_stays_fast_and_exact():
    genome = _flatten_head(32, 28)  # 25,088 flat features
    state = trained_looking(genome, 0)
    start = time.perf_counter()
    child = morphisms.apply("widen", genome, state, np.random.default_rng(0))
    assert time.perf_counter() - start < 2.0
    x = np.random.default_rng(0).normal(size=(2, 1, 28, 28))
    import torch

    x = torch.as_tensor(x)
    assert close(outputs(child.genome, child.state_dict, x), outputs(genome, state, x)) <= 1e-5


def test_no_huge_identity_dense_layer_is_built_on_a_wide_flat_tensor():
    genome = _flatten_head(16, 20)  # 6,400 features: an identity dense layer would hold 41M weights
    state = trained_looking(genome, 0)
    space = spaces.get("chain", input_shape=(1, 20, 20), num_outputs=3)
    for seed in range(5):
        child = morphisms.apply("deepen", genome, state, np.random.default_rng(seed), space=space)
        assert child.genome.num_params() <= space.bounds.max_params


def test_shrink_skips_layers_tied_through_a_flatten():
    g = Genome((1, 4), 3)
    x = g.add("input", id="input")
    f = g.add("flatten", [g.add("conv", [x], id="c", channels=2, kernel=1)])
    d = g.add("dense", [g.add("globalpool", [x])], id="d", units=8)
    g.add("output", [g.add("dense", [g.add("identity", [f, d], merge="add")], units=3)], id="output")
    with pytest.raises(NotApplicable):
        morphisms.apply("shrink", g, trained_looking(g, 0), np.random.default_rng(0))


def test_strided_skips_also_cross_odd_sizes():
    g = Genome((2, 9, 9), 3)
    x = g.add("input", id="input")
    a = g.add("conv", [x], id="a", channels=4, kernel=3, stride=2)  # 9 -> 5
    g.add("output", [g.add("dense", [g.add("globalpool", [a])], units=3)], id="output")
    state = trained_looking(g, 0)
    children = [morphisms.apply("add_skip", g, state, np.random.default_rng(s)) for s in range(20)]
    across = [c for c in children if c.provenance.site == ("input", "n0")]  # 9x9 into 5x5
    assert across
    for child in across:
        new = [n for n in child.genome if n not in g and child.genome.op(n) == "conv"]
        assert [child.genome.params(n)["stride"] for n in new] == [2]
