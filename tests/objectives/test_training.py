"""Training: deterministic, resumable to the bit, and never raising for a failing network."""

from unittest import mock

import numpy as np
import pytest
import torch

from genomes import Genome, spaces
from objectives import TrainConfig, inherit, tasks, train


@pytest.fixture(scope="module")
def task():
    return tasks.get("synthetic", input_shape=(1, 8, 8), num_classes=3, samples=150, seed=0)


@pytest.fixture(scope="module")
def genome(task):
    space = spaces.get("multibranch", input_shape=task.input_shape, num_outputs=task.num_classes)
    return space.sample(np.random.default_rng(4))


def _same(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("optimizer, schedule", [("sgd", "cosine"), ("adamw", "step")])
def test_training_resumed_from_a_rung_equals_training_straight_through(task, genome, optimizer, schedule):
    config = TrainConfig(epochs=5, batch_size=32, optimizer=optimizer, schedule=schedule, lr=0.01)
    straight = train(genome, task, config, until=5, seed=7)
    rung = train(genome, task, config, until=2, seed=7)
    resumed = train(genome, task, config, until=5, seed=7, state=rung.state)
    assert not straight.failed and not resumed.failed
    assert _same(straight.state.model, resumed.state.model)
    assert [e.val_accuracy for e in straight.state.curve] == [e.val_accuracy for e in resumed.state.curve]
    assert [e.train_loss for e in straight.state.curve] == [e.train_loss for e in resumed.state.curve]
    assert resumed.state.epoch == 5 and len(resumed.state.curve) == 5


def test_training_is_deterministic_for_a_seed_and_learns(task, genome):
    config = TrainConfig(epochs=6, batch_size=32)
    a = train(genome, task, config, until=6, seed=1)
    b = train(genome, task, config, until=6, seed=1)
    c = train(genome, task, config, until=6, seed=2)
    assert _same(a.state.model, b.state.model)
    assert not _same(a.state.model, c.state.model)
    assert a.state.curve[-1].val_accuracy > 0.6  # well above chance (1/3)
    assert a.state.curve[-1].train_loss < a.state.curve[0].train_loss
    assert all(e.seconds > 0 for e in a.state.curve)


def test_inherited_weights_start_the_training(task, genome):
    config = TrainConfig(epochs=3, batch_size=32)
    parent = train(genome, task, config, until=3, seed=1)
    net = genome.build(seed=99)
    taken = inherit(net, parent.state.model)
    assert taken == list(parent.state.model)
    assert _same(net.state_dict(), dict(parent.state.model))
    child = train(genome, task, config, until=1, seed=99, weights=parent.state.model)
    assert child.state.curve[0].val_accuracy >= parent.state.curve[-1].val_accuracy - 0.1


def test_a_nan_loss_ends_the_training_with_a_reason(task, genome):
    outcome = train(genome, task, TrainConfig(epochs=3, lr=1e8, momentum=0.0), until=3)
    assert outcome.failed and "loss became" in outcome.reason and outcome.state is None


def test_an_exception_ends_the_training_with_a_reason(task, genome):
    with mock.patch.object(Genome, "build", side_effect=RuntimeError("boom")):
        outcome = train(genome, task, TrainConfig(epochs=1), until=1)
    assert outcome.failed and outcome.reason == "RuntimeError: boom"


def test_a_genome_that_does_not_fit_the_task_fails_with_both_shapes(task):
    wrong = spaces.get("chain", input_shape=(1, 64), num_outputs=3).sample(np.random.default_rng(0))
    outcome = train(wrong, task, TrainConfig(epochs=1), until=1)
    assert outcome.failed and "(1, 64)" in outcome.reason and "(1, 8, 8)" in outcome.reason


def test_weights_that_blow_up_after_the_last_finite_loss_fail_the_training(task):
    space = spaces.get("multibranch", input_shape=task.input_shape, num_outputs=task.num_classes)
    genome = space.sample(np.random.default_rng(0))  # its last step turns the weights to NaN
    outcome = train(genome, task, TrainConfig(epochs=1, lr=1e12), until=1)
    assert outcome.failed and "weights became NaN or infinite in epoch 1" in outcome.reason


def test_a_failure_keeps_the_epochs_finished_before_it(task, genome):
    config = TrainConfig(epochs=4, batch_size=32)
    good = train(genome, task, config, until=2, seed=1)
    exploding = TrainConfig(epochs=4, batch_size=32, lr=1e9, momentum=0.0, schedule="constant")
    outcome = train(genome, task, exploding, until=4, seed=1, state=good.state)
    assert outcome.failed and [e.epoch for e in outcome.curve] == [1, 2]


def test_calls_no_candidate_could_satisfy_raise(task, genome):
    config = TrainConfig(epochs=3)
    with pytest.raises(ValueError, match=r"in \[0, training.epochs=3\]"):
        train(genome, task, config, until=5)
    with pytest.raises(ValueError, match="seed must be an int >= 0"):
        train(genome, task, config, until=1, seed=-1)


def test_a_time_out_ends_the_training_with_a_reason(task, genome):
    outcome = train(genome, task, TrainConfig(epochs=50, timeout_s=0.05), until=50)
    assert outcome.failed and outcome.reason.startswith("time-out")


def test_training_sets_a_bounded_thread_count_and_restores_it(task, genome):
    before = torch.get_num_threads()
    train(genome, task, TrainConfig(epochs=1, threads=1), until=1)
    assert torch.get_num_threads() == before


@pytest.mark.parametrize("key, value, words", [
    ("epochs", 0, "training.epochs must be an int >= 1"),
    ("optimizer", "rmsprop", "training.optimizer must be one of"),
    ("schedule", "linear", "training.schedule must be one of"),
    ("lr", 0, "training.lr must be > 0"),
    ("label_smoothing", 1.0, "training.label_smoothing must be < 1"),
    ("timeout_s", -1, "training.timeout_s"),
    ("batch_size", 2.5, "training.batch_size"),
])
def test_bad_training_settings_name_the_key(key, value, words):
    with pytest.raises(ValueError, match=words):
        TrainConfig(**{key: value})


def test_learning_rate_schedules_follow_the_horizon():
    cosine = TrainConfig(epochs=10, lr=1.0)
    assert cosine.lr_at(0) == 1.0 and cosine.lr_at(5) == pytest.approx(0.5) and cosine.lr_at(10) == pytest.approx(0)
    step = TrainConfig(epochs=8, lr=1.0, schedule="step")
    assert [round(step.lr_at(e), 6) for e in (0, 3, 4, 5, 6, 7)] == [1, 1, 0.1, 0.1, 0.01, 0.01]
    assert TrainConfig(schedule="constant", lr=0.3).lr_at(7) == 0.3


def test_a_genome_with_flat_batch_norm_trains_whatever_the_last_batch_holds():
    g = Genome((1, 4), 2)
    x = g.add("input", id="input")
    x = g.add("batchnorm", [g.add("dense", [g.add("flatten", [x])], units=8)])
    g.add("output", [g.add("dense", [x], units=2)], id="output")
    small = tasks.get("synthetic", input_shape=(1, 4), num_classes=2, samples=41, with_test=False,
                      val_fraction=0.2)
    outcome = train(g, small, TrainConfig(epochs=2, batch_size=len(small.train) - 1), until=2)
    assert not outcome.failed, outcome.reason
