"""Approximate morphisms shrink a network; after a short repair by distillation on digits the
child is within 2 points of its trained parent's accuracy."""

import numpy as np
import pytest
import torch

import objectives as O
from genomes import Genome, spaces
from operators import morphisms
from operators.morphisms.repair import repair
from tests.operators.helpers import close, outputs, trained_looking


@pytest.fixture(scope="module")
def trained():
    task = O.tasks.get("digits", seed=0)
    space = spaces.get("multibranch", input_shape=task.input_shape, num_outputs=task.num_classes)
    genome = space.sample(np.random.default_rng(3))  # has a site for every approximate morphism
    parent = O.train(genome, task, O.TrainConfig(epochs=10), until=10, seed=0)
    return task, space, genome, parent.state.model, O.accuracy(parent.model, task.val)


def _accuracy(genome, state, task):
    net = genome.build()
    net.load_state_dict(state)
    return O.accuracy(net, task.val)


@pytest.mark.parametrize("name", morphisms.names(exact=False))
def test_after_repair_the_child_is_within_two_points_of_its_parent(trained, name):
    task, space, genome, state, parent_accuracy = trained
    child = morphisms.apply(name, genome, state, np.random.default_rng(1), space=space)
    assert not child.provenance.exact and space.contains(child.genome)
    assert child.genome.num_params() < genome.num_params() or name == "remove_layer"
    repaired = repair(child.genome, child.state_dict, genome, state, task, steps=300, seed=0)
    assert _accuracy(child.genome, repaired, task) >= parent_accuracy - 0.02
    again = repair(child.genome, child.state_dict, genome, state, task, steps=300, seed=0)
    assert all(torch.equal(again[k], v) for k, v in repaired.items())  # reproducible


def test_removing_a_batch_norm_after_a_conv_folds_it_exactly():
    space = spaces.get("chain", input_shape=(2, 8, 8), num_outputs=3)
    genome = space.sample(np.random.default_rng(0))
    state = trained_looking(genome, 0)
    x = torch.randn(4, 2, 8, 8, dtype=torch.float64)
    for seed in range(30):
        child = morphisms.apply("remove_layer", genome, state, np.random.default_rng(seed))
        if "folded" in child.provenance.detail:
            assert close(outputs(child.genome, child.state_dict, x), outputs(genome, state, x)) <= 1e-10
            return
    pytest.fail("no batch norm was removed")


def test_replace_op_is_exact_for_rank_one_kernels():
    g = Genome((8, 6, 6), 3)
    c = g.add("conv", [g.add("input", id="input")], id="c", channels=5, kernel=3)
    g.add("output", [g.add("dense", [g.add("globalpool", [c])], units=3)], id="output")
    state = trained_looking(g, 0)
    rng = torch.Generator().manual_seed(0)
    p, d = torch.randn(5, 8, generator=rng, dtype=torch.float64), torch.randn(8, 3, 3, generator=rng, dtype=torch.float64)
    state["c.weight"] = p[:, :, None, None] * d[None]  # W[o, i] = p[o, i] * d[i]: rank one per input
    child = morphisms.apply("replace_op", g, state, np.random.default_rng(0))
    assert child.genome.op("c") == "sepconv"
    x = torch.randn(2, 8, 6, 6, dtype=torch.float64)
    assert close(outputs(child.genome, child.state_dict, x), outputs(g, state, x)) <= 1e-10
