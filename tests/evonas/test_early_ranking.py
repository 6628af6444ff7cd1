"""Successive halving: the best fraction continues, multi-objective ranking, compute saved."""

import numpy as np
import pytest

import objectives as O
from evonas.evaluation.halving import SuccessiveHalving
from evonas.search.ranking import minimisation_matrix, rank
from genomes import spaces
from objectives import EvalState, EvaluationRecord, TrainConfig, evaluate, tasks


def test_rank_puts_the_non_dominated_first_then_the_most_isolated():
    values = np.array([
        [1.0, 9.0],  # 0: front 1, extreme
        [2.0, 5.0],  # 1: front 1, crowded middle
        [2.2, 4.8],  # 2: front 1, crowded middle
        [9.0, 1.0],  # 3: front 1, extreme
        [5.0, 9.5],  # 4: dominated by 1
        [9.5, 9.5],  # 5: dominated by everyone
    ])
    order = list(rank(values))
    assert set(order[:4]) == {0, 1, 2, 3} and order[4:] == [4, 5]
    assert set(order[:2]) == {0, 3}  # infinite crowding distance at the ends of the front


def test_directions_turn_into_minimisation():
    records = [EvaluationRecord("h", EvalState.COMPLETE, {"acc": 0.9, "params": 10.0})]
    assert minimisation_matrix(records, {"acc": "max", "params": "min"}).tolist() == [[-0.9, 10.0]]


def _fake(final_quality):
    """Candidates whose value at e epochs is quality + noise that shrinks with e."""
    calls = []

    def advance(i, epochs):
        calls.append((i, epochs))
        value = final_quality[i] + (0.3 if i % 2 else -0.3) / epochs
        return EvaluationRecord(f"h{i}", EvalState.COMPLETE, {"val_error": value}, epochs=epochs)

    return advance, calls


def test_only_the_kept_fraction_continues_and_the_rest_are_pruned():
    quality = np.linspace(0.05, 0.5, 12)
    advance, calls = _fake(quality)
    report = SuccessiveHalving(rungs=[1, 3, 9], keep=1 / 3).run(12, advance, {"val_error": "min"})
    assert [len(r.trained) for r in report.rungs] == [12, 4, 2]
    assert [e for _, e in calls] == [1] * 12 + [3] * 4 + [9] * 2
    assert report.epochs_trained == 12 * 1 + 4 * 2 + 2 * 6 and report.epochs_full == 12 * 9
    assert report.saved == pytest.approx(1 - 32 / 108)
    states = [r.state for r in report.records]
    assert states.count(EvalState.PRUNED) == 10 and states.count(EvalState.COMPLETE) == 2
    assert report.survivors[0] in (0, 1, 2)  # the truly best few make it
    assert report.rungs[1].kendall_tau is not None


def test_failed_candidates_are_never_promoted():
    def advance(i, epochs):
        if i == 0:
            return EvaluationRecord("h0", EvalState.FAILED, reason="loss became nan")
        return EvaluationRecord(f"h{i}", EvalState.COMPLETE, {"val_error": i / 10}, epochs=epochs)

    report = SuccessiveHalving(rungs=[1, 2], keep=0.5).run(5, advance, {"val_error": "min"})
    assert report.rungs[0].failed == (0,) and 0 not in report.rungs[0].promoted
    assert report.rungs[0].promoted == (1, 2)


@pytest.mark.parametrize("rungs, keep, words", [
    ([3, 1], 0.5, "increasing"), ([], 0.5, "increasing"), ([1, 2], 0, "keep"), ([1, 2], 1.5, "keep"),
])
def test_bad_schedules_are_refused(rungs, keep, words):
    with pytest.raises(ValueError, match=words):
        SuccessiveHalving(rungs=rungs, keep=keep)


def test_promoted_candidates_continue_their_training_rather_than_restart():
    task = tasks.get("synthetic", input_shape=(1, 8, 8), num_classes=3, samples=90)
    space = spaces.get("chain", input_shape=task.input_shape, num_outputs=3)
    genomes = space.initial(np.random.default_rng(0), 4)
    config = TrainConfig(epochs=3, batch_size=32)
    objective = [O.get("val_error"), O.get("params")]
    states = {}

    def advance(i, epochs):
        result = evaluate(genomes[i], objective, task=task, training=config, epochs=epochs, seed=i,
                          state=states.get(i))
        states[i] = result.state
        return result.record

    report = SuccessiveHalving(rungs=[1, 3], keep=0.5).run(4, advance, {"val_error": "min", "params": "min"})
    for i in report.rungs[1].trained:
        straight = evaluate(genomes[i], objective, task=task, training=config, epochs=3, seed=i)
        assert report.records[i].objectives == straight.record.objectives
        assert len(report.records[i].curve) == 3


def test_directions_are_checked():
    records = [EvaluationRecord("h", EvalState.COMPLETE, {"acc": 0.9})]
    for bad in ({}, {"acc": "maximize"}):
        with pytest.raises(ValueError, match="'min' or 'max'"):
            minimisation_matrix(records, bad)
    with pytest.raises(ValueError, match="no value for objective 'params'"):
        minimisation_matrix(records, {"acc": "max", "params": "min"})


def test_edge_cases_no_candidates_all_failing_one_rung():
    schedule = SuccessiveHalving(rungs=[2], keep=0.5)
    empty = schedule.run(0, lambda i, e: None, {"v": "min"})
    assert empty.epochs_trained == 0 and empty.survivors == ()
    failing = SuccessiveHalving(rungs=[1, 2], keep=0.5).run(
        3, lambda i, e: EvaluationRecord(f"h{i}", EvalState.FAILED, reason="boom"), {"v": "min"})
    assert failing.rungs[0].failed == (0, 1, 2) and failing.survivors == ()
    assert failing.epochs_trained == 3
