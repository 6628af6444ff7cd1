"""Mutation and crossover change the function; children keep every weight that still fits."""

import numpy as np
import torch

import operators
from genomes import spaces
from tests.operators.helpers import trained_looking


def _space():
    return spaces.get("multibranch", input_shape=(1, 8, 8), num_outputs=3)


def test_a_mutated_child_inherits_every_tensor_whose_node_and_shape_still_match():
    space = _space()
    for seed in range(6):
        genome = space.sample(np.random.default_rng(seed))
        state = trained_looking(genome, seed)
        child = operators.get("mutate").propose([(genome, state)], np.random.default_rng(seed), space=space)
        fresh = child.genome.build(dtype=torch.float64).state_dict()
        assert child.state_dict.keys() == fresh.keys()
        inherited = [k for k, v in child.state_dict.items() if k in state and state[k].shape == v.shape]
        assert inherited and all(torch.equal(child.state_dict[k], state[k]) for k in inherited)
        changed = [k for k in child.state_dict if k not in inherited]
        assert all(child.state_dict[k].shape == fresh[k].shape for k in changed)
        assert child.genome != genome and not child.provenance.exact


def test_crossover_mixes_layers_of_relatives_and_takes_their_weights_along():
    space = _space()
    genome = space.sample(np.random.default_rng(0))
    a_state = trained_looking(genome, 0)
    mutate = operators.get("mutate")
    b = mutate.propose([(genome, a_state)], np.random.default_rng(0), space=space)  # a kernel
    b = mutate.propose([tuple(b)], np.random.default_rng(2), space=space)  # and an activation
    child = operators.get("crossover").propose([(genome, a_state), tuple(b)], np.random.default_rng(0),
                                               space=space)
    taken = child.provenance.site
    assert taken and all(child.genome.params(n) == b.genome.params(n) for n in taken)
    for key, value in child.state_dict.items():
        node = key.split(".")[0]
        donor = b.state_dict if node in taken else a_state
        if key in donor and donor[key].shape == value.shape:
            assert torch.equal(value, donor[key]), key
