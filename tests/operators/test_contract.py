"""The contract every operator keeps (like Optuna's sampler suite): a legal child inside the
parent's space, parents untouched, the same rng gives the same child, and everything pickles;
and the proposer contract every operator (and a learning proposer) keeps: batches on request,
``tell`` with frozen results, and a state that survives a checkpoint exactly."""

import pickle

import numpy as np
import pytest
import torch

import operators
from genomes import spaces
from operators import NotApplicable
from tests.operators.helpers import trained_looking

# the single-child operators (learning proposers keep the proposer contract below)
ALL = [n for n in operators.names() if isinstance(operators.get(n), operators.Operator)]
CASES = [("multibranch", (1, 8, 8)), ("cell", (2, 16)), ("chain", (2, 10, 10)), ("multibranch", (3, 20))]


def _parents(space, genome, seed, arity):
    state = trained_looking(genome, seed)
    if arity == 0:
        return []
    if arity == 1:
        return [(genome, state)]
    relative = operators.get("mutate").make([(genome, state)], np.random.default_rng(seed), space=space)
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
            child = op.make(parents, np.random.default_rng(seed), space=space)
        except NotApplicable:
            continue
        made += 1
        # a legal child in the parent's space, whose weights fit its network exactly
        assert child.genome.problems() == [] and space.contains(child.genome)
        net = child.genome.build(dtype=torch.float64)
        if child.state_dict is None:  # inherits nothing: a fresh child, built where it trains
            assert child.treatment == "fresh" and op.arity == 0
        else:
            assert child.treatment == {True: "exact", False: op.treatment}[op.exact]
            net.load_state_dict(child.state_dict)  # strict: every key, every shape
        assert net(torch.randn(2, *shape, dtype=torch.float64)).shape == (2, 3)
        # parents untouched
        for (g, s), (g0, s0) in zip(parents, before):
            assert g == g0 and s.keys() == s0.keys() and all(torch.equal(s[k], s0[k]) for k in s)
        # same rng, same child
        again = op.make(parents, np.random.default_rng(seed), space=space)
        assert again.genome == child.genome and again.provenance == child.provenance
        assert all(torch.equal(again.state_dict[k], v) for k, v in (child.state_dict or {}).items())
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
        operators.get("crossover").make([(g, g.build().state_dict())], np.random.default_rng(0))
    with pytest.raises(TypeError, match="numpy.random.Generator"):
        operators.get("deepen").make([(g, g.build().state_dict())], 0)


# ---------------------------------------------------------------- the proposer contract
if "toy" not in operators.names():
    operators.register("toy", "tests.operators.toy:Toy")
PROPOSERS = operators.names()


def _request(space, n, seed, *, weights=True):
    from objectives import EvalState, EvaluationRecord
    from operators import Member, Request

    rng = np.random.default_rng(seed)
    genomes = space.initial(rng, 4)
    members = []
    for i, g in enumerate(genomes):
        state = trained_looking(g, seed + i)
        record = EvaluationRecord(g.canonical_hash(), EvalState.COMPLETE,
                                  {"val_error": 0.1 * (i + 1), "params": float(g.num_params())})
        members.append(Member(i, g, record, "initial", 0, lambda s=state: s))
    F = np.array([[m.record.objectives["val_error"], m.record.objectives["params"]] for m in members])
    groups = tuple((members[k % 4], members[(k + 1) % 4]) for k in range(n))
    return Request(n=n, parents=groups, population=tuple(members), objectives=F,
                   directions={"val_error": "min", "params": "min"},
                   seen=frozenset(m.genome.canonical_hash() for m in members), space=space,
                   budget={"evaluations": 10, "generations": 3, "seconds": None, "epochs": None},
                   generation=1, rng=np.random.default_rng(seed + 100), weights=weights,
                   dispatch=_inline, task=TASK, training={"epochs": 1, "batch_size": 32})


# what a proposer that trains to propose (``gradient``) trains on, its jobs run in-process
TASK = {"dataset": "synthetic", "seed": 0, "input_shape": [1, 8, 8], "num_classes": 3,
        "samples": 60}


def _inline(fn, jobs):
    return [fn(job, "cpu") for job in jobs]


@pytest.mark.parametrize("weights", [True, False], ids=["weights", "no-weights"])
@pytest.mark.parametrize("name", PROPOSERS)
def test_proposer_contract(name, weights, tmp_path):
    from evonas.store import checkpoint
    from objectives import EvalState, EvaluationRecord
    from operators import Result

    space = spaces.get("multibranch", input_shape=(1, 8, 8), num_outputs=3)
    op = operators.get(name)
    request = _request(space, 3, 7, weights=weights)
    if op.trains and not weights:  # it trains to propose: a run that trains nothing is refused
        with pytest.raises(operators.NotApplicable, match="trains nothing"):
            op.propose(request)
        return
    children = op.propose(request)
    assert len(children) <= request.n
    again = operators.get(name).propose(_request(space, 3, 7, weights=weights))
    assert [c.genome for c in again] == [c.genome for c in children]  # the request's rng decides
    for child in children:
        assert space.contains(child.genome) and child.treatment in ("exact", "approximate",
                                                                   "partial", "fresh")
        if not weights or child.treatment == "fresh":
            assert child.state_dict is None and child.treatment == "fresh"
        else:
            child.genome.build(dtype=torch.float64).load_state_dict(child.state_dict)
    # tell: frozen results, with the duplicates and unchosen ones too
    results = [Result(10 + k, c.genome, EvaluationRecord(c.genome.canonical_hash(), EvalState.COMPLETE,
                                                          {"val_error": 0.3, "params": 5.0}),
                      name, (0,), c, "evaluated", 1) for k, c in enumerate(children)]
    results.append(Result(None, request.population[0].genome, None, name, (0,), None, "duplicate", 1))
    op.tell(tuple(results))
    with pytest.raises(Exception):
        results[0].status = "changed"  # frozen
    # state: JSON and tensors, through a checkpoint and back, exactly
    data, tensors = op.state()
    import json

    json.dumps(data)
    checkpoint.write(tmp_path, 1, {"generation": 1, "population": [], "individuals": []},
                     {"format": 1, "generation": 1, "generations": 1, "next_id": 0,
                      "evaluations": 0, "seen": [], "history": [], "operators": {name: data},
                      "random": {}, "config": {}}, {},
                     tensors={f"{name}/{k}": v for k, v in tensors.items()})
    saved, notes = checkpoint.latest(tmp_path)
    assert saved is not None and not notes
    back = operators.get(name)
    loaded = {k.split("/", 1)[1]: v for k, v in saved.load_tensors().items()}
    back.load_state(saved.state["operators"][name], loaded)
    data2, tensors2 = back.state()
    assert data2 == data and tensors2.keys() == tensors.keys()
    assert all(torch.equal(tensors2[k], tensors[k]) for k in tensors)
