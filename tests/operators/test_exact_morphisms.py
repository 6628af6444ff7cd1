"""Exact morphisms keep the parent's function to 1e-5 in float64 eval mode, alone and chained
twenty times, leave untouched nodes' weights alone, and keep children in the parent's space."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from operators import NotApplicable, morphisms
from tests.operators.helpers import close, outputs, parents

EXACT = morphisms.names(exact=True)


def test_the_exact_set():
    assert set(EXACT) == {"deepen", "widen", "add_skip", "widen_kernel", "insert_branch"}
    assert set(morphisms.names(exact=False)) == {"remove_layer", "shrink", "replace_op"}


def _untouched(parent, child, site):
    """Nodes the morphism had no reason to touch: same op, parameters and input shape, and not
    at its site."""
    p_io, c_io = parent.io_shapes(), child.io_shapes()
    return [n for n in parent if n in child and n not in site and parent.op(n) == child.op(n)
            and parent.params(n) == child.params(n) and p_io[n][0] == c_io[n][0]]


@settings(max_examples=60)
@given(parents(), st.sampled_from(EXACT), st.integers(0, 2**31))
def test_every_exact_morphism_preserves_the_function(parent, name, seed):
    space, genome, state, x = parent
    try:
        child = morphisms.apply(name, genome, state, np.random.default_rng(seed), space=space)
    except NotApplicable:
        return
    assert space.contains(child.genome) and child.provenance.exact
    assert close(outputs(child.genome, child.state_dict, x), outputs(genome, state, x)) <= 1e-5
    for node in _untouched(genome, child.genome, child.provenance.site):
        for key in [k for k in state if k.startswith(node + ".")]:
            assert torch.equal(child.state_dict[key], state[key]), key


@settings(max_examples=15)
@given(parents(room=True), st.integers(0, 2**31))
def test_twenty_random_exact_morphisms_in_a_row_preserve_the_function(parent, seed):
    space, genome, state, x = parent
    expected = outputs(genome, state, x)
    rng = np.random.default_rng(seed)
    applied = []
    for _ in range(20):
        for name in rng.permutation(EXACT):
            try:
                genome, state = morphisms.apply(str(name), genome, state, rng, space=space)
                applied.append(str(name))
                break
            except NotApplicable:
                continue
    assert len(applied) == 20
    assert space.contains(genome)
    assert close(outputs(genome, state, x), expected) <= 1e-5


def test_a_child_unpacks_and_says_where_it_came_from():
    from genomes import spaces
    from tests.operators.helpers import trained_looking

    space = spaces.get("chain", input_shape=(1, 8, 8), num_outputs=3)
    genome = space.sample(np.random.default_rng(0))
    child = morphisms.apply("deepen", genome, trained_looking(genome, 0), np.random.default_rng(0))
    g, state = child
    assert g is child.genome and state is child.state_dict
    p = child.provenance
    assert p.operator == "deepen" and p.parents == (genome.canonical_hash(),) and p.exact
    assert len(p.site) == 2 and all(n in genome for n in p.site) and "between" in p.detail


def test_branching_morphisms_do_not_apply_inside_a_chain_space():
    from genomes import spaces
    from tests.operators.helpers import trained_looking

    space = spaces.get("chain", input_shape=(1, 8, 8), num_outputs=3)
    genome = space.sample(np.random.default_rng(0))
    for name in ("add_skip", "insert_branch"):
        with pytest.raises(NotApplicable, match="chain space has no branches"):
            morphisms.apply(name, genome, trained_looking(genome, 0), np.random.default_rng(0),
                            space=space)
