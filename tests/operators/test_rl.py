"""The ``rl`` proposer (REINFORCE): its options, determinism, exact state round trip, that it
learns a planted best cell, that its proposals are unseen members, editable-space actions, and
an engine run with it in the operator mix."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import operators
from tests.nb201 import synthetic_table
from genomes import spaces
from objectives import EvalState, EvaluationRecord
from operators import Member, Request, Result
from operators.rl import Reinforce

ROOT = Path(__file__).resolve().parents[2]
NB201 = spaces.get("nb201", input_shape=(3, 32, 32), num_outputs=10)
PLANTED = ("nor_conv_3x3", "skip_connect", "nor_conv_1x1", "avg_pool_3x3", "none",
           "nor_conv_3x3")


@pytest.fixture(scope="module")
def rl():
    if "rl" not in operators.names():
        operators.register("rl", "operators.rl:Reinforce")
    return "rl"


def request(space=NB201, n=10, seed=0, generation=1, seen=frozenset(), parents=(),
            directions=None, weights=False):
    return Request(n=n, parents=parents, population=(), objectives=np.zeros((0, 1)),
                   directions=directions or {"acc": "max"}, seen=seen, space=space,
                   budget={"evaluations": None}, generation=generation,
                   rng=np.random.default_rng(seed), weights=weights)


def record(genome, state=EvalState.COMPLETE, **values):
    return EvaluationRecord(genome.canonical_hash(), state, values,
                            reason="broke" if state is EvalState.FAILED else None)


def planted_reward(genome) -> float:
    """Edges that agree with the planted cell, plus a little noise from the architecture."""
    arch = NB201.decode(genome)
    return float(sum(a == b for a, b in zip(arch, PLANTED)))


def told(children, generation, reward=planted_reward, operator="rl", state=EvalState.COMPLETE):
    return tuple(Result(100 * generation + k, c.genome, record(c.genome, state, acc=reward(c.genome)),
                        operator, (), c, "evaluated", generation) for k, c in enumerate(children))


def planted_probability(learner: Reinforce) -> float:
    p = learner.probabilities()
    return float(np.prod([p[e, NB201.ops.index(op)] for e, op in enumerate(PLANTED)]))


def assert_same_state(a, b):
    (da, ta), (db, tb) = a, b
    assert json.dumps(da, sort_keys=True) == json.dumps(db, sort_keys=True)
    assert ta.keys() == tb.keys() and all(torch.equal(ta[k], tb[k]) for k in ta)


# ---------------------------------------------------------------- options
@pytest.mark.parametrize("option, value", [
    ("lr", 0), ("lr", -1.0), ("lr", "fast"), ("baseline_decay", 1.0), ("baseline_decay", -0.1),
    ("temperature", 0.0), ("entropy", -0.5), ("off_policy", "yes"), ("max_tries", 0),
    ("operators", []), ("operators", ["deepen", "teleport"]), ("operators", "deepen"),
])
def test_a_bad_option_is_a_value_error_naming_it(option, value):
    with pytest.raises(ValueError, match=f"option '{option}'"):
        Reinforce(**{option: value})


def test_an_operator_that_does_not_edit_one_parent_is_refused():
    space = spaces.get("multibranch", input_shape=(1, 8, 8), num_outputs=3)
    with pytest.raises(ValueError, match="option 'operators'"):
        Reinforce(operators=["crossover"]).propose(request(space, n=1))


# ---------------------------------------------------------------- fixed spaces
def test_the_same_state_and_request_give_the_same_batch():
    a, b = Reinforce(), Reinforce()
    for g in range(1, 4):
        kids_a, kids_b = a.propose(request(seed=g, generation=g)), b.propose(
            request(seed=g, generation=g))
        assert [c.genome.canonical_hash() for c in kids_a] == [c.genome.canonical_hash()
                                                               for c in kids_b]
        a.tell(told(kids_a, g))
        b.tell(told(kids_b, g))
    assert_same_state(a.state(), b.state())
    other = [c.genome.canonical_hash() for c in a.propose(request(seed=99))]
    assert other != [c.genome.canonical_hash() for c in b.propose(request(seed=98))]


def test_children_are_fresh_unseen_members_without_parents():
    learner = Reinforce()
    learner.propose(request(n=1))
    # a policy that all but insists on the planted cell, which is seen already
    learner.params["logits"][torch.arange(6), [NB201.ops.index(op) for op in PLANTED]] = 8.0
    seen = frozenset({NB201.from_arch(PLANTED).canonical_hash()})
    children = learner.propose(request(n=10, seen=seen))
    hashes = [c.genome.canonical_hash() for c in children]
    assert len(children) == 10 and len(set(hashes)) == 10 and not set(hashes) & seen
    for c in children:
        assert NB201.contains(c.genome)
        assert c.state_dict is None and c.treatment == "fresh"
        assert c.provenance.operator == "rl" and c.provenance.parents == ()
        assert not c.provenance.exact


def test_the_policy_concentrates_on_a_planted_best_cell():
    learner = Reinforce(lr=0.05)
    start = None
    for g in range(1, 16):
        children = learner.propose(request(seed=g, generation=g))
        start = start if start is not None else planted_probability(learner)
        learner.tell(told(children, g))
    assert start == pytest.approx(5.0 ** -6)
    assert planted_probability(learner) > 50 * start
    best = [NB201.ops[i] for i in learner.probabilities().argmax(axis=1)]
    assert sum(a == b for a, b in zip(best, PLANTED)) >= 5


def test_a_minimised_objective_is_learnt_the_other_way_round():
    learner = Reinforce(lr=0.05)
    for g in range(1, 16):
        children = learner.propose(request(seed=g, generation=g, directions={"acc": "min"}))
        learner.tell(told(children, g, reward=lambda genome: -planted_reward(genome)))
    assert planted_probability(learner) > 50 * 5.0 ** -6


def test_failed_children_get_the_worst_reward_and_pruned_ones_their_value():
    learner = Reinforce()
    kids = learner.propose(request())
    learner.tell(told(kids[:5], 1))
    worst = min(planted_reward(c.genome) for c in kids[:5])
    assert learner.worst == worst
    before = learner.counts["updates"]
    failed = tuple(Result(200 + k, c.genome, record(c.genome, EvalState.FAILED), "rl", (), c,
                          "evaluated", 2) for k, c in enumerate(kids[5:7]))
    learner.tell(failed + told(kids[7:], 2, state=EvalState.PRUNED))
    assert learner.counts["updates"] == before + 5 and learner.worst <= worst


def test_several_objectives_are_scalarised_by_running_min_max():
    learner = Reinforce()
    learner.propose(request(n=1, directions={"acc": "max", "size": "min"}))
    for acc, size in [(50.0, 2.0), (70.0, 1.0), (60.0, 3.0)]:
        learner._observe({"acc": acc, "size": size})
    assert learner._scalar({"acc": 70.0, "size": 1.0}) == 1.0
    assert learner._scalar({"acc": 50.0, "size": 3.0}) == 0.0
    assert learner._scalar({"acc": 60.0, "size": 2.0}) == pytest.approx(0.5)


def test_results_told_before_the_first_propose_are_learnt_from_then():
    learner = Reinforce(lr=0.05)
    initial = [type("C", (), {"genome": g})() for g in NB201.initial(np.random.default_rng(3), 10)]
    learner.tell(told(initial, 0, operator="initial"))
    assert learner.kind is None and len(learner.early) == 10
    back = Reinforce(lr=0.05)
    back.load_state(*learner.state())  # the buffer survives a checkpoint
    kids = back.propose(request())
    assert not back.early and back.counts["updates"] == 9  # the first reward starts the baseline
    assert [c.genome for c in kids] == [c.genome for c in learner.propose(request())]
    assert_same_state(back.state(), learner.state())


def test_off_policy_false_learns_only_from_its_own_children():
    learner = Reinforce(off_policy=False)
    kids = learner.propose(request())
    learner.tell(told(kids, 1, operator="mutate"))
    assert learner.counts["updates"] == 0 and learner.baseline is None
    learner.tell(told(kids, 1))
    assert learner.counts["updates"] == 9


@pytest.mark.parametrize("options", [{}, {"entropy": 0.1, "temperature": 2.0}])
def test_state_round_trips_exactly_and_a_restored_learner_goes_on_alike(options):
    learner = Reinforce(**options)
    for g in range(1, 4):
        learner.tell(told(learner.propose(request(seed=g, generation=g)), g))
    data, tensors = learner.state()
    json.dumps(data)
    back = Reinforce(**options)
    back.load_state(json.loads(json.dumps(data)), {k: v.clone() for k, v in tensors.items()})
    assert_same_state(back.state(), (data, tensors))
    for x in (learner, back):
        x.tell(told(x.propose(request(seed=7, generation=4)), 4))
    assert_same_state(back.state(), learner.state())
    assert learner.counts["updates"] > 0
    assert not torch.equal(tensors["logits"], learner.state()[1]["logits"])


# ---------------------------------------------------------------- editable spaces
def _parents(space, seed, n=3):
    genomes = space.initial(np.random.default_rng(seed), n)
    return tuple(Member(i, g, record(g, val_error=0.5), "initial", 0) for i, g in enumerate(genomes))


def test_editable_children_come_from_an_operator_at_a_site_and_learn_from_improvement():
    space = spaces.get("multibranch", input_shape=(1, 8, 8), num_outputs=3, channels=[4, 8])
    members = _parents(space, 1)
    groups = tuple((m,) for m in members)
    learner = Reinforce(operators=["deepen", "widen", "mutate"])
    kwargs = {"space": space, "n": 3, "parents": groups, "directions": {"val_error": "min"}}
    children = learner.propose(request(**kwargs))
    again = Reinforce(operators=["deepen", "widen", "mutate"]).propose(request(**kwargs))
    assert [c.genome for c in again] == [c.genome for c in children]
    assert children and len(learner.pending) == len(children)
    parent_hashes = {m.genome.canonical_hash() for m in members}
    for c in children:
        assert space.contains(c.genome) and c.provenance.operator == "rl"
        assert c.provenance.parents[0] in parent_hashes
        assert c.provenance.detail.split(":")[0] in ("deepen", "widen", "mutate")
        assert c.state_dict is None and c.treatment == "fresh"  # parents came without weights
    data, tensors = learner.state()
    back = Reinforce(operators=["deepen", "widen", "mutate"])
    back.load_state(json.loads(json.dumps(data)), tensors)
    assert_same_state(back.state(), (data, tensors))
    results = tuple(Result(10 + k, c.genome, record(c.genome, val_error=0.5 - 0.1 * k), "rl",
                           (0,), c, "evaluated", 1) for k, c in enumerate(children))
    learner.tell(results)
    assert not learner.pending and learner.counts["updates"] == len(children) - 1
    assert learner.baseline > 0  # the children improved on their parents


def test_editable_children_inherit_weights_and_the_operators_treatment():
    from tests.operators.helpers import trained_looking

    space = spaces.get("multibranch", input_shape=(1, 8, 8), num_outputs=3, channels=[4, 8])
    genomes = space.initial(np.random.default_rng(2), 2)
    members = tuple(Member(i, g, record(g, val_error=0.5), "initial", 0,
                           lambda g=g, i=i: trained_looking(g, i)) for i, g in enumerate(genomes))
    learner = Reinforce(operators=["deepen", "widen"])
    children = learner.propose(request(space=space, n=2, parents=tuple((m,) for m in members),
                                       directions={"val_error": "min"}, weights=True))
    assert children
    for c in children:
        assert c.treatment == "exact" and c.provenance.exact
        c.genome.build(dtype=torch.float64).load_state_dict(c.state_dict)


def test_editable_operator_choice_is_conditioned_on_the_parent_and_round_trips():
    """Mutating helps the weak parent and hurts the good one; the other operator gives each a
    small gain. The policy learns to prefer ``mutate`` for the weak parent only, with advantages
    against each parent's own baseline; a restored learner goes on alike."""
    space = spaces.get("multibranch", input_shape=(1, 8, 8), num_outputs=3, channels=[4, 8])
    genomes = space.initial(np.random.default_rng(3), 2)
    errors = (0.2, 0.8)  # a good parent, a weak one
    members = tuple(Member(i, g, record(g, val_error=e), "initial", 0)
                    for i, (g, e) in enumerate(zip(genomes, errors)))
    parent_of = {m.genome.canonical_hash(): m for m in members}
    learner = Reinforce(operators=["widen", "mutate"], lr=0.1)

    def error(c):
        e = parent_of[c.provenance.parents[0]].record.objectives["val_error"]
        mutated = c.provenance.detail.startswith("mutate")
        return e + (0.3 if mutated else -0.01) if e < 0.5 else e - (0.3 if mutated else 0.01)

    def step(x, g):
        children = x.propose(request(space=space, n=2, seed=g, generation=g,
                                     parents=tuple((m,) for m in members),
                                     directions={"val_error": "min"}))
        x.tell(tuple(Result(100 * g + k, c.genome, record(c.genome, val_error=error(c)), "rl",
                            (0,), c, "evaluated", g) for k, c in enumerate(children)))

    for g in range(1, 41):
        step(learner, g)
    assert len(learner.parent_rewards) == 2 and learner.parent_range == [-0.8, -0.2]
    a, w = learner.params["op_logits"].numpy(), learner.params["op_quality"].numpy()
    good, weak = _softmax_np(a + w), _softmax_np(a - w)  # quality +1 and -1; ops widen, mutate
    assert weak[1] > 0.6 and good[1] < 0.4
    data, tensors = learner.state()
    back = Reinforce(operators=["widen", "mutate"], lr=0.1)
    back.load_state(json.loads(json.dumps(data)), {k: v.clone() for k, v in tensors.items()})
    assert_same_state(back.state(), (data, tensors))
    for x in (learner, back):
        step(x, 41)
    assert_same_state(back.state(), learner.state())


def _softmax_np(x):
    z = np.exp(x - x.max())
    return z / z.sum()


# ---------------------------------------------------------------- the engine
class Dying(Reinforce):
    """``rl`` that kills its process in ``tell`` of generation ``EVONAS_RL_DIE`` (a kill test)."""

    def tell(self, results):
        if results and os.environ.get("EVONAS_RL_DIE") == str(results[0].generation):
            os.kill(os.getpid(), signal.SIGKILL)
        super().tell(results)


def _config(table: Path) -> dict:
    return {"name": "rl", "seed": 3,
            "task": {"dataset": "synthetic", "input_shape": [3, 32, 32], "num_classes": 10,
                     "samples": 100},
            "space": {"kind": "nb201"},
            "search": {"population": 6, "offspring": 4, "generations": 5,
                       "operators": {"rl": {"weight": 2, "lr": 0.1}, "random": 1}},
            "objectives": [{"name": "tabular", "path": str(table), "value_column": "acc"}]}


def _table(path: Path) -> Path:
    return synthetic_table(path)


def test_an_engine_run_with_rl_in_the_mix(rl, tmp_path):
    from evonas import Search, engine

    config = _config(_table(tmp_path / "t.csv"))
    with Search(config, run_dir=tmp_path / "run") as search:
        engine.drive(search)
        learner = search.strategy.proposers["rl"]
        accounts = search.strategy.accounts()
        result = search.result()
    assert learner.lr == 0.1 and learner.directions == {"acc": "max"}
    assert "rl" in accounts and accounts["rl"]["evaluated"] > 0
    assert any(i.operator == "rl" for i in result.individuals)
    assert learner.counts["updates"] >= len(result.individuals) - 2
    lines = [json.loads(x) for x in (tmp_path / "run/journal.jsonl").read_text().splitlines()]
    assert lines[-1]["event"] == "finished"


def test_a_kill_then_resume_gives_the_same_run_and_policy(rl, tmp_path):
    from evonas import Search, engine

    if "rl_dying" not in operators.names():  # ``rl`` with a kill hook, under its own name
        operators.register("rl_dying", "tests.operators.test_rl:Dying")
    config = _config(_table(tmp_path / "t.csv"))
    config["search"]["operators"] = {"rl_dying": config["search"]["operators"]["rl"], "random": 1}
    with Search(config, run_dir=tmp_path / "reference") as search:
        engine.drive(search)
        reference = search.strategy.proposers["rl_dying"].state(), search.result()
    (tmp_path / "c.json").write_text(json.dumps(config))
    run = tmp_path / "run"
    script = (f"import json, sys; sys.path.insert(0, {str(ROOT)!r})\n"
              f"import operators, evonas\n"
              f"operators.register('rl_dying', 'tests.operators.test_rl:Dying')\n"
              f"evonas.run(json.load(open({str(tmp_path / 'c.json')!r})), run_dir={str(run)!r})\n")
    proc = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True,
                          text=True, timeout=120, check=False, env={**os.environ, "EVONAS_RL_DIE": "3"})
    assert proc.returncode == -9, proc.stderr[-2000:]
    with Search.resume(run) as search:
        engine.drive(search)
        state, result = search.strategy.proposers["rl_dying"].state(), search.result()
    assert_same_state(state, reference[0])
    assert [(i.id, i.genome.canonical_hash(), i.operator) for i in result.individuals] == [
        (i.id, i.genome.canonical_hash(), i.operator) for i in reference[1].individuals]
