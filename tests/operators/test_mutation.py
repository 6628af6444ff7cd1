"""Mutation and crossover change the function; children keep every weight that still fits. On
the fixed spaces (NB201, a strict cell space) mutation changes one edge op, as regularised
evolution does."""

import numpy as np
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import operators
from genomes import spaces
from operators.proposer import FRESH, PARTIAL
from tests.operators.helpers import trained_looking


def _space():
    return spaces.get("multibranch", input_shape=(1, 8, 8), num_outputs=3)


def test_a_mutated_child_inherits_every_tensor_whose_node_and_shape_still_match():
    space = _space()
    for seed in range(6):
        genome = space.sample(np.random.default_rng(seed))
        state = trained_looking(genome, seed)
        child = operators.get("mutate").make([(genome, state)], np.random.default_rng(seed), space=space)
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
    b = mutate.make([(genome, a_state)], np.random.default_rng(0), space=space)  # a kernel
    b = mutate.make([tuple(b)], np.random.default_rng(2), space=space)  # and an activation
    child = operators.get("crossover").make([(genome, a_state), tuple(b)], np.random.default_rng(0),
                                               space=space)
    taken = child.provenance.site
    assert taken and all(child.genome.params(n) == b.genome.params(n) for n in taken)
    for key, value in child.state_dict.items():
        node = key.split(".")[0]
        donor = b.state_dict if node in taken else a_state
        if key in donor and donor[key].shape == value.shape:
            assert torch.equal(value, donor[key]), key


# ---- regularised evolution's mutation on the fixed spaces: one edge op changes -----------------
def _fixed(name):
    if name == "nb201":
        return spaces.get("nb201", input_shape=(3, 12, 12), num_outputs=3)
    return spaces.get("cell", input_shape=(2, 16), num_outputs=3, channels=4, cells_per_stage=2,
                      strict=True)


def _arch_parent(space, index, relabel):
    arch = tuple(space.ops[(index // len(space.ops) ** e) % len(space.ops)]
                 for e in range(len(space.edges())))
    genome = space.from_arch(arch)
    if relabel:  # the operator must not rely on the encoding's node ids
        genome = genome.relabel({n: f"q{k}" for k, n in enumerate(reversed(genome.nodes))})
    return genome


def _one_edge_apart(space, parent, child):
    a, b = space.decode(parent), space.decode(child)
    return sum(x != y for x, y in zip(a, b)) == 1


@settings(max_examples=25, deadline=None)
@given(st.sampled_from(["nb201", "strict cell"]), st.integers(0, 7**6 - 1), st.booleans(),
       st.integers(0, 2**32 - 1))
def test_on_a_fixed_space_mutation_changes_exactly_one_edge_op(name, index, relabel, seed):
    space = _fixed(name)
    assert not space.editable and space.edge_mutation
    parent = _arch_parent(space, index % len(space.ops) ** 6, relabel)
    before = parent.copy()
    child = operators.get("mutate").make([(parent, None)], np.random.default_rng(seed), space=space)
    assert parent == before
    assert space.contains(child.genome) and _one_edge_apart(space, parent, child.genome)
    assert child.state_dict is None and child.treatment == FRESH  # no weights in, none out
    p = child.provenance
    assert p.site and all(n in parent for n in p.site) and p.detail.startswith("edge ")
    gone = set(parent.nodes) - set(child.genome.nodes)  # off the edge, nodes keep their ids
    assert gone <= set(p.site)


@settings(max_examples=8, deadline=None)
@given(st.sampled_from(["nb201", "strict cell"]), st.integers(0, 7**6 - 1), st.integers(0, 2**32 - 1))
def test_a_mutated_fixed_space_child_inherits_every_parent_tensor_that_still_fits(name, index, seed):
    space = _fixed(name)
    parent = _arch_parent(space, index % len(space.ops) ** 6, relabel=False)
    state = trained_looking(parent, seed % 1000)
    child = operators.get("mutate").make([(parent, state)], np.random.default_rng(seed), space=space)
    assert _one_edge_apart(space, parent, child.genome)
    fresh = child.genome.build(dtype=torch.float64).state_dict()
    assert child.state_dict.keys() == fresh.keys()
    assert all(child.state_dict[k].shape == v.shape for k, v in fresh.items())
    kept = [k for k, v in state.items() if k in fresh and fresh[k].shape == v.shape]
    assert "stem_conv.weight" in kept
    assert all(torch.equal(child.state_dict[k], state[k]) for k in kept)
    assert child.treatment == PARTIAL


def test_repeated_mutation_of_one_nb201_parent_reaches_all_24_neighbours():
    space = _fixed("nb201")
    parent = space.from_arch_string(
        "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|none~2|")
    neighbours = set(space.neighbours(parent))
    assert len(neighbours) == 6 * 4 and space.decode(parent) not in neighbours
    mutate, seen = operators.get("mutate"), set()
    for seed in range(400):
        if seen == neighbours:
            break
        child = mutate.make([(parent, None)], np.random.default_rng(seed), space=space)
        seen.add(space.decode(child.genome))
    assert seen == neighbours


def test_mutation_keeps_editing_layers_on_editable_spaces():
    space = spaces.get("cell", input_shape=(2, 16), num_outputs=3, channels=4)
    parent = space.sample(np.random.default_rng(0))
    child = operators.get("mutate").make([(parent, None)], np.random.default_rng(0), space=space)
    assert not child.provenance.detail.startswith("edge ") and child.state_dict is None
    assert space.contains(child.genome)
