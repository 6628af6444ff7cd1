"""Operators give up cleanly, before trying anything, where nothing can work, and their work
grows linearly with the width of flat tensors.

Work is counted (sites tried, candidate genomes copied, lines of operator code run), never
timed, so these hold on a busy machine; ``benchmarks/limits.py`` measures the seconds.
"""

import os
import sys

import numpy as np
import pytest

import operators
from genomes import Genome, spaces
from operators import NotApplicable, morphisms
from tests.operators.helpers import close, outputs, trained_looking


def test_a_fixed_benchmark_space_refuses_every_operator_before_trying_a_site(monkeypatch):
    space = spaces.get("nb201", input_shape=(3, 32, 32), num_outputs=10)
    genome = space.sample(np.random.default_rng(0))
    state = genome.build().state_dict()
    copies, real_copy = [], Genome.copy
    monkeypatch.setattr(Genome, "copy", lambda self: copies.append(1) or real_copy(self))
    refused = []
    for name in operators.names():
        operator = operators.get(name)
        if getattr(operator, "arity", None) != 1 or name == "mutate":  # mutate: one edge op (REA)
            continue
        listed = []
        monkeypatch.setattr(operator, "_sites", lambda parents, listed=listed: listed.append(1) or [])
        with pytest.raises(NotApplicable, match="space is fixed"):
            operator.make([(genome, state)], np.random.default_rng(0), space=space)
        assert not listed, f"{name} listed the sites before giving up"
        refused.append(name)
    assert not copies  # not one candidate child was made
    assert {"deepen", "widen", "shrink"} <= set(refused)


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


def _operator_lines(fn) -> int:
    """How many lines of the ``operators`` package ``fn()`` runs (comprehensions included): its
    work, counted the same on a busy machine as on an idle one."""
    root = os.path.dirname(operators.__file__) + os.sep
    count = 0

    def local(frame, event, arg):
        nonlocal count
        if event == "line":
            count += 1
        return local

    def enter(frame, event, arg):  # trace only frames of operators' own code
        return local if frame.f_code.co_filename.startswith(root) else None

    previous = sys.gettrace()
    sys.settrace(enter)
    try:
        fn()
    finally:
        sys.settrace(previous)
    return count


def test_widening_behind_a_flatten_does_work_linear_in_the_flat_width():
    def work(side: int) -> int:
        genome = _flatten_head(4, side)
        state = trained_looking(genome, 0)
        return _operator_lines(lambda: morphisms.apply("widen", genome, state, np.random.default_rng(0)))

    small, large = work(8), work(24)  # 256 and 2,304 flat features: 9 times as many
    # linear work grows about 8-fold here; work quadratic in the flat width (one pass over a
    # flatten's map per channel, as before the operators review) grew 79-fold
    assert large < 2 * 9 * small, (small, large)


def test_widening_behind_a_wide_flatten_stays_exact():
    genome = _flatten_head(32, 28)  # 25,088 flat features
    state = trained_looking(genome, 0)
    child = morphisms.apply("widen", genome, state, np.random.default_rng(0))
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
