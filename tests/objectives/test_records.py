"""Evaluation records: frozen, with a state, and a JSON form that round-trips."""

import dataclasses
import json
import math

import pytest

from objectives import EpochStats, EvalState, EvaluationRecord


def _record(**changes):
    base = dict(genome_hash="ab" * 16, state=EvalState.COMPLETE,
                objectives={"val_error": 0.1, "params": 1200.0}, reported={"test_accuracy": math.nan},
                curve=(EpochStats(1, 1.5, 0.6, 0.2), EpochStats(2, 0.9, 0.9, 0.21)), epochs=2)
    base.update(changes)
    return EvaluationRecord(**base)


def test_records_are_frozen():
    record = _record()
    with pytest.raises(dataclasses.FrozenInstanceError):
        record.state = EvalState.FAILED
    with pytest.raises(TypeError):
        record.objectives["val_error"] = 0.0


def test_json_round_trip_keeps_everything_including_nan():
    record = _record()
    back = EvaluationRecord.from_dict(json.loads(json.dumps(record.to_dict(), allow_nan=False)))
    assert back.objectives == record.objectives and back.curve == record.curve
    assert math.isnan(back.reported["test_accuracy"]) and back.state is EvalState.COMPLETE


def test_a_failure_needs_its_reason_and_pruning_keeps_the_values():
    with pytest.raises(ValueError, match="needs a reason"):
        _record(state=EvalState.FAILED)
    failed = _record(state="failed", reason="loss became nan in epoch 1")
    assert failed.state is EvalState.FAILED and not failed.ok
    pruned = _record().with_state(EvalState.PRUNED)
    assert pruned.ok and pruned.objectives == _record().objectives
