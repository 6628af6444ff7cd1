"""The generated ``waveforms`` task: reproducible, a test split fixed across runs, balanced,
every bad option named, and its options moving the difficulty the way they say."""

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from objectives import DataError, tasks
from objectives.tasks import waveforms as wf

SMALL = {"samples": 480, "test_samples": 240}


def _arrays(task):
    return [s.x for s in (task.train, task.val, task.test)] + [s.y for s in (task.train, task.val, task.test)]


def test_defaults_shapes_dtypes_and_balance():
    task = tasks.get("waveforms")
    assert task.name == "waveforms" and task.input_shape == (1, 128) and task.num_classes == 8
    assert (len(task.train), len(task.val), len(task.test)) == (3200, 800, 2000)
    for split in (task.train, task.val, task.test):
        assert split.x.dtype == torch.float32 and split.y.dtype == torch.int64
        assert split.x.shape[1:] == (1, 128) and bool(torch.isfinite(split.x).all())
    assert np.bincount(task.test.y.numpy()).tolist() == [250] * 8
    pool = np.bincount(np.concatenate([task.train.y.numpy(), task.val.y.numpy()]))
    assert pool.tolist() == [500] * 8 and np.bincount(task.val.y.numpy()).tolist() == [100] * 8
    assert abs(float(task.train.x.mean())) < 1e-4 and abs(float(task.train.x.std()) - 1) < 1e-3
    assert task.preprocessing.layout == "NL"


def test_same_options_give_identical_arrays_and_data_seed_other_data():
    a, b = tasks.get("waveforms", seed=3, **SMALL), tasks.get("waveforms", seed=3, **SMALL)
    assert all(torch.equal(u, v) for u, v in zip(_arrays(a), _arrays(b)))
    other = tasks.get("waveforms", seed=3, data_seed=1, **SMALL)
    assert not torch.equal(a.test.x, other.test.x)


def test_the_test_split_is_fixed_and_the_run_seed_only_carves_validation():
    runs = [tasks.get("waveforms", seed=s, standardize=False, **SMALL) for s in (0, 1)]
    assert torch.equal(runs[0].test.x, runs[1].test.x) and torch.equal(runs[0].test.y, runs[1].test.y)
    assert not torch.equal(runs[0].val.y, runs[1].val.y)

    def pool(task):  # train + validation, as a set of rows
        x = torch.cat([task.train.x, task.val.x]).flatten(1)
        return sorted(map(tuple, x.numpy().round(5).tolist()))

    assert pool(runs[0]) == pool(runs[1])  # the same samples, carved differently
    more = tasks.get("waveforms", seed=0, standardize=False, samples=960, test_samples=240)
    assert torch.equal(more.test.x, runs[0].test.x)  # the test split does not move with samples


BAD = [
    ({"classes": 1}, "option 'classes' must be an int in [2, 56], got 1"),
    ({"classes": 57}, "option 'classes' must be an int in [2, 56], got 57"),
    ({"classes": 2.5}, "option 'classes' must be an int"),
    ({"classes": True}, "option 'classes'"),
    ({"length": 40}, "option 'length' must be an int in [64, 65536]"),
    ({"length": 20, "gap": 0, "stretch": 1}, "option 'length' must be an int in [32, 65536]"),
    ({"samples": 79}, "option 'samples' must be an int >= 10 x classes (80), so that validation"),
    ({"test_samples": 10}, "option 'test_samples' must be an int >= 2 x classes (16), got 10"),
    ({"samples": 200_000}, "option 'samples' (200000) with test_samples (2000) x length (128)"),
    ({"noise": -0.1}, "option 'noise' must be a number in [0, 100], got -0.1"),
    ({"noise": float("nan")}, "option 'noise' must"),
    ({"noise": "0.1"}, "option 'noise' must be a number"),
    ({"shift": 1.5}, "option 'shift' must be a number in [0, 1], got 1.5"),
    ({"scale": 0.5}, "option 'scale' must be a number in [1, 100], got 0.5"),
    ({"stretch": 3}, "option 'stretch' must be a number in [1, 2], got 3"),
    ({"gap": -1}, "option 'gap' must be an int in [0, 1024], got -1"),
    ({"distractors": 17}, "option 'distractors' must be an int in [0, 16], got 17"),
    ({"data_seed": -1}, "option 'data_seed' must be an int >= 0, got -1"),
    ({"val_fraction": 1.0}, "option 'val_fraction' must be in (0, 1)"),
    ({"colour": 1}, "unknown option 'colour' for task 'waveforms'"),
]


@pytest.mark.parametrize("options, words", BAD, ids=[str(o) for o, _ in BAD])
def test_bad_options_name_the_option(options, words):
    with pytest.raises(DataError) as info:
        tasks.get("waveforms", **options)
    assert words in str(info.value)


def test_bad_option_types_are_caught_without_the_registry_too():
    with pytest.raises(DataError, match="option 'distractors' must be an int"):
        wf.waveforms(distractors=2.0)


def test_a_config_names_the_task_key_at_fault():
    from evonas.config import ConfigError, parse
    from evonas.resolve import resolve

    def config(**task):
        return {"task": {"dataset": "waveforms", **task}, "space": {"kind": "multibranch"},
                "objectives": [{"name": "val_error"}]}

    with pytest.raises(ConfigError) as info:
        resolve(parse(config(noise=-1.0)))
    assert [p for p, _ in info.value.issues] == ["task.noise"]
    assert "must be a number in [0, 100], got -1.0" in str(info.value)
    with pytest.raises(ConfigError) as info:  # a wrong type is caught before the task is made
        parse(config(classes="8"))
    assert [p for p, _ in info.value.issues] == ["task.classes"]


@given(classes=st.integers(2, wf.MAX_CLASSES), stretch=st.floats(1, 2), gap=st.integers(0, 24),
       extra=st.integers(0, 40), noise=st.floats(0, 2), shift=st.floats(0, 1),
       scale=st.floats(1, 4), distractors=st.integers(0, 4), data_seed=st.integers(0, 2**32))
def test_any_valid_options_give_a_balanced_finite_task(classes, stretch, gap, extra, noise, shift,
                                                       scale, distractors, data_seed):
    length = max(32, 2 * int(np.ceil(wf.CYCLES * wf.PERIOD * stretch)) + gap) + extra
    task = tasks.get("waveforms", classes=classes, length=length, samples=10 * classes,
                     test_samples=2 * classes, noise=noise, shift=shift, scale=scale,
                     stretch=stretch, gap=gap, distractors=distractors, data_seed=data_seed)
    assert task.input_shape == (1, length) and task.num_classes == classes
    assert np.bincount(task.test.y.numpy(), minlength=classes).tolist() == [2] * classes
    assert all(bool(torch.isfinite(s.x).all()) for s in (task.train, task.val, task.test))


def test_classes_are_ordered_pairs_each_beside_its_reverse():
    assert len(set(wf.PAIRS)) == len(wf.PAIRS) == wf.MAX_CLASSES == 8 * 7
    assert all(wf.PAIRS[i] == wf.PAIRS[i + 1][::-1] for i in range(0, len(wf.PAIRS), 2))


# ------------------------------------------------------- difficulty moves with the options
def _fit(features, **options):
    """Test predictions and labels of a logistic regression on ``features`` of the signals."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    task = tasks.get("waveforms", samples=1600, test_samples=800, **options)
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    model.fit(features(task.train.x), task.train.y.numpy())
    return model.predict(features(task.test.x)), task.test.y.numpy()


def _spectrum(x):  # shift-invariant: which shapes are present, not where
    return np.abs(np.fft.rfft(x.flatten(1).numpy(), axis=1))


def _halves(x):  # the spectrum of each half: where the shapes are, roughly
    half = x.shape[-1] // 2
    return np.concatenate([_spectrum(x[..., :half]), _spectrum(x[..., half:])], axis=1)


CLEAN = {"noise": 0.0, "distractors": 0, "scale": 1.0, "stretch": 1.0}


def test_shape_features_find_the_pair_but_not_its_order():
    predicted, y = _fit(_spectrum, **CLEAN)  # classes 2k and 2k+1 are a pair and its reverse
    assert np.mean(predicted // 2 == y // 2) > 0.95  # which two shapes: always
    assert np.mean(predicted == y) < 0.6  # which comes first: a coin toss
    predicted, y = _fit(_spectrum, **{**CLEAN, "scale": 2.0, "stretch": 1.5})
    assert np.mean(predicted // 2 == y // 2) < 0.85  # random periods blur the spectrum


def test_shifts_hide_the_order_and_noise_hides_the_shapes():
    predicted, y = _fit(_halves, **CLEAN, shift=0.0)
    assert np.mean(predicted == y) > 0.95  # centred: the first burst sits in the left half
    predicted, y = _fit(_halves, **CLEAN, shift=1.0)
    assert np.mean(predicted == y) < 0.85
    predicted, y = _fit(_spectrum, **{**CLEAN, "noise": 1.5, "distractors": 4})
    assert np.mean(predicted // 2 == y // 2) < 0.5
