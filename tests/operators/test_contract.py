"""The contract every operator keeps (like Optuna's sampler suite): a legal child inside the
parent's space, parents untouched, the same rng gives the same child, and everything pickles."""

import pickle

import numpy as np
import pytest
import torch

import operators
from genomes import spaces
from operators import NotApplicable
from tests.operators.helpers import trained_looking

ALL = operators.names()
CASES = [("multibranch", (1, 8, 8)), ("cell", (2, 16)), ("chain", (2, 10, 10)), ("multibranch", (3, 20))]


def _parents(space, genome, seed, arity):
    state = trained_looking(genome, seed)
    if arity == 0:
        return []
    if arity == 1:
        return [(genome, state)]
    relative = operators.get("mutate").propose([(genome, state)], np.random.default_rng(seed), space=space)
    return [(genome, state), tuple(relative)]


def _snapshot(parents):
    return [(g.copy(), {k: v.clone() for k, v in s.items()}) for g, s in parents]


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("case", CASES, ids=[f"{n}-{'x'.join(map(str, s))}" for n, s in CASES])
def test_operator_contract(name, case):
    space_name, shape = case
    options = {"cells_per_stage": 1, "channels": 8} if space_name == "cell" else {}
    space = spaces.get(space_name, input_shape=shape, num_outputs=3, **options)
    op = operators.get(name)
    made = 0
    for seed in range(8):
        if made == 2:
            break
        genome = space.sample(np.random.default_rng(seed))
        parents = _parents(space, genome, seed, op.arity)
        before = _snapshot(parents)
        try:
            child = op.propose(parents, np.random.default_rng(seed), space=space)
        except NotApplicable:
            continue
        made += 1
        # a legal child in the parent's space, whose weights fit its network exactly
        assert child.genome.problems() == [] and space.contains(child.genome)
        net = child.genome.build(dtype=torch.float64)
        net.load_state_dict(child.state_dict)  # strict: every key, every shape
        assert net(torch.randn(2, *shape, dtype=torch.float64)).shape == (2, 3)
        # parents untouched
        for (g, s), (g0, s0) in zip(parents, before):
            assert g == g0 and s.keys() == s0.keys() and all(torch.equal(s[k], s0[k]) for k in s)
        # same rng, same child
        again = op.propose(parents, np.random.default_rng(seed), space=space)
        assert again.genome == child.genome and again.provenance == child.provenance
        assert all(torch.equal(again.state_dict[k], v) for k, v in child.state_dict.items())
        # provenance
        p = child.provenance
        assert p.operator == name and p.exact == (name in operators.morphisms.names(exact=True))
        assert p.parents == tuple(g.canonical_hash() for g, _ in parents)
        assert all(n in parents[0][0] for n in p.site) and p.detail if parents else p.site == ()
        # everything crosses a process boundary
        back = pickle.loads(pickle.dumps(child))
        assert back.genome == child.genome and back.provenance == child.provenance
        assert type(pickle.loads(pickle.dumps(op))) is type(op)
    expected_na = name in ("add_skip", "insert_branch") and space_name == "chain"
    expected_na |= name == "replace_op" and space_name == "cell" and shape == (2, 16)
    assert made > 0 or expected_na, f"{name} never applied to {space_name}"


def test_unknown_operator():
    with pytest.raises(ValueError, match="unknown operator 'teleport'"):
        operators.get("teleport")


def test_arity_and_rng_are_checked():
    space = spaces.get("chain", input_shape=(1, 8, 8), num_outputs=3)
    g = space.sample(np.random.default_rng(0))
    with pytest.raises(ValueError, match="takes 2 parent"):
        operators.get("crossover").propose([(g, g.build().state_dict())], np.random.default_rng(0))
    with pytest.raises(TypeError, match="numpy.random.Generator"):
        operators.get("deepen").propose([(g, g.build().state_dict())], 0)
