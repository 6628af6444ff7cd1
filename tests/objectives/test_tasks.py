"""Tasks: built-in data, user files in every layout, and a clear error for each kind of bad data."""

import gzip
import os
import pickle
import re

import numpy as np
import pytest
import torch

from objectives import DataError, tasks


def test_digits_is_embedded_and_split_three_ways():
    task = tasks.get("digits", seed=0)
    assert task.input_shape == (1, 8, 8) and task.num_classes == 10
    assert len(task.train) + len(task.val) + len(task.test) == 1797
    assert abs(float(task.train.x.mean())) < 1e-5 and abs(float(task.train.x.std()) - 1) < 1e-3
    other = tasks.get("digits", seed=1)
    assert torch.equal(task.test.y, other.test.y)  # the test split is fixed
    assert not torch.equal(task.val.y, other.val.y)  # validation moves with the run seed


def _save(tmp_path, name="data.npz", **arrays):
    path = tmp_path / name
    np.savez(path, **arrays)
    return str(path)


def _xy(shape, n=60, k=3, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, *shape)), np.arange(n) % k


@pytest.mark.parametrize("shape, layout, expected", [
    ((32,), "auto", (1, 32)),
    ((2, 32), "auto", (2, 32)),
    ((3, 6, 5), "auto", (3, 6, 5)),
    ((32, 2), "NLC", (2, 32)),
    ((6, 5, 3), "NHWC", (3, 6, 5)),
    ((6, 5), "NHW", (1, 6, 5)),
])
def test_npz_layouts(tmp_path, shape, layout, expected):
    x, y = _xy(shape)
    task = tasks.get("npz", path=_save(tmp_path, x=x, y=y), layout=layout)
    assert task.input_shape == expected and task.test is None
    assert len(task.train) == 48 and len(task.val) == 12
    assert sorted(np.bincount(task.val.y.numpy())) == [4, 4, 4]  # stratified


def test_npz_validation_and_test_splits_are_used_and_standardised_with_training_stats(tmp_path):
    x, y = _xy((4,))
    x_val, y_val = _xy((4,), n=30, seed=1)
    x_test, y_test = _xy((4,), n=30, seed=2)
    path = _save(tmp_path, x=x + 10, y=y, x_val=x_val + 20, y_val=y_val, x_test=x_test, y_test=y_test)
    task = tasks.get("npz", path=path)
    assert len(task.train) == 60 and len(task.val) == 30 and len(task.test) == 30
    assert abs(float(task.train.x.mean())) < 1e-5
    assert float(task.val.x.mean()) > 5  # shifted by the *training* statistics, not its own


def test_fraction_is_a_lower_fidelity_and_reproducible(tmp_path):
    x, y = _xy((8,), n=200, k=4)
    path = _save(tmp_path, x=x, y=y)
    a = tasks.get("npz", path=path, fraction=0.25, seed=3)
    b = tasks.get("npz", path=path, fraction=0.25, seed=3)
    assert len(a.train) == 40 and torch.equal(a.train.x, b.train.x)


BAD = {
    "rank-5 inputs": (dict(x=np.zeros((10, 1, 2, 2, 2)), y=np.arange(10) % 2), "has shape (10, 1, 2, 2, 2)"),
    "1-D inputs": (dict(x=np.zeros(10), y=np.arange(10) % 2), "has shape (10,)"),
    "length mismatch": (dict(x=np.zeros((10, 4)), y=np.arange(9) % 2), "x has 10 samples but y has 9"),
    "labels not a vector": (dict(x=np.zeros((10, 4)), y=np.zeros((10, 2))), "vector of class labels"),
    "fractional labels": (dict(x=np.zeros((10, 4)), y=np.arange(10) / 3), "integer class labels"),
    "negative label": (dict(x=np.zeros((10, 4)), y=np.arange(10) % 3 - 1), "labels outside"),
    "NaN input": (dict(x=np.where(np.eye(10, 4) > 0, np.nan, 0.0), y=np.arange(10) % 2), "4 NaN or infinite"),
    "inf in validation": (dict(x=np.zeros((10, 4)), y=np.arange(10) % 2,
                               x_val=np.full((4, 4), np.inf), y_val=np.arange(4) % 2), "x_val holds 16 NaN"),
    "single class": (dict(x=np.zeros((10, 4)), y=np.zeros(10, dtype=int)), "y holds a single class"),
    "single-class validation": (dict(x=np.zeros((10, 4)), y=np.arange(10) % 2,
                                     x_val=np.zeros((4, 4)), y_val=np.ones(4, dtype=int)), "y_val holds a single class"),
    "shape disagreement": (dict(x=np.zeros((10, 4)), y=np.arange(10) % 2,
                                x_val=np.zeros((4, 5)), y_val=np.arange(4) % 2), "disagree on the input shape"),
    "half a split": (dict(x=np.zeros((10, 4)), y=np.arange(10) % 2, x_val=np.zeros((4, 4))), "both x_val and y_val"),
    "text inputs": (dict(x=np.array([["a"] * 4] * 10), y=np.arange(10) % 2), "must hold numbers"),
    "unknown array": (dict(x=np.zeros((10, 4)), y=np.arange(10) % 2, z=np.zeros(3)), "unknown arrays ['z']"),
    "no labels": (dict(x=np.zeros((10, 4))), "has no array 'y'"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_data_is_refused_before_training_with_a_clear_message(tmp_path, case):
    arrays, words = BAD[case]
    path = _save(tmp_path, **arrays)
    with pytest.raises(DataError, match=re.escape(words)) as info:
        tasks.get("npz", path=path)
    assert not isinstance(info.value, SystemExit)


def test_labels_beyond_the_declared_class_count(tmp_path):
    x, y = _xy((4,), k=3)
    with pytest.raises(DataError, match=r"labels outside \[0, 1\]"):
        tasks.get("npz", path=_save(tmp_path, x=x, y=y), num_classes=2)


def test_missing_file_and_files_that_are_not_npz(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        tasks.get("npz", path=str(tmp_path / "nowhere.npz"))
    text = tmp_path / "notes.npz"
    text.write_text("not an archive")
    with pytest.raises(DataError, match="not a readable .npz"):
        tasks.get("npz", path=str(text))
    pickled = tmp_path / "objects.npz"
    np.savez(pickled, x=np.array([{"a": 1}] * 4, dtype=object), y=np.arange(4))
    with pytest.raises(DataError, match="not a readable .npz"):
        tasks.get("npz", path=str(pickled))  # object arrays would need pickle: refused


def test_unknown_task_and_options_name_the_problem():
    with pytest.raises(DataError, match="unknown task 'imagenet'"):
        tasks.get("imagenet")
    with pytest.raises(DataError, match="unknown option 'colour' for task 'digits'"):
        tasks.get("digits", colour=1)
    with pytest.raises(DataError, match="needs option 'path'"):
        tasks.get("npz")
    with pytest.raises(DataError, match="option 'val_fraction'"):
        tasks.get("digits", val_fraction=1.5)
    with pytest.raises(DataError, match="option 'layout'"):
        tasks.prepare("t", np.zeros((4, 2)), np.arange(4) % 2, layout="XYZ")


def test_synthetic_task_is_learnable_shaped_and_seeded():
    a = tasks.get("synthetic", input_shape=(2, 16), num_classes=4, samples=80, seed=1)
    b = tasks.get("synthetic", input_shape=(2, 16), num_classes=4, samples=80, seed=1)
    assert a.input_shape == (2, 16) and a.num_classes == 4
    assert torch.equal(a.train.x, b.train.x)


# ---------------------------------------------------------------- torchvision's folder layout
def _idx(array: np.ndarray) -> bytes:
    header = bytes([0, 0, 8, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    return header + array.astype(np.uint8).tobytes()


def test_mnist_files_are_read_without_torchvision(tmp_path):
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for prefix, n in (("train", 50), ("t10k", 20)):
        (raw / f"{prefix}-images-idx3-ubyte.gz").write_bytes(gzip.compress(_idx(rng.integers(0, 255, (n, 28, 28)))))
        (raw / f"{prefix}-labels-idx1-ubyte").write_bytes(_idx(np.arange(n) % 10))
    task = tasks.get("torchvision", name="MNIST", root=str(tmp_path), val_fraction=0.2)
    assert task.input_shape == (1, 28, 28) and task.num_classes == 10
    assert len(task.train) == 40 and len(task.val) == 10 and len(task.test) == 20


def _cifar_batch(path, n, rng):
    with open(path, "wb") as f:
        pickle.dump({b"data": rng.integers(0, 255, (n, 3072), dtype=np.uint8),
                     b"labels": list(np.arange(n) % 10)}, f, protocol=2)


def test_cifar_batches_are_read_through_an_array_only_unpickler(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(1, 6):
        _cifar_batch(folder / f"data_batch_{i}", 20, rng)
    _cifar_batch(folder / "test_batch", 20, rng)
    task = tasks.get("torchvision", name="cifar10", root=str(tmp_path))
    assert task.input_shape == (3, 32, 32) and len(task.test) == 20 and len(task.train) == 90


class _Payload:
    def __reduce__(self):
        return (os.system, ("touch pwned_by_pickle",))


def test_a_planted_pickle_payload_is_refused_and_never_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    folder = tmp_path / "cifar-100-python"
    folder.mkdir()
    for name in ("train", "test"):
        (folder / name).write_bytes(pickle.dumps({b"data": _Payload(), b"fine_labels": [0, 1]}))
    with pytest.raises(DataError, match="refusing to load"):
        tasks.get("torchvision", name="cifar100", root=str(tmp_path))
    assert not (tmp_path / "pwned_by_pickle").exists()


def test_damaged_cifar_batches_never_escape_as_raw_exceptions(tmp_path):
    from objectives.tasks.vision import _batch

    good = pickle.dumps({b"data": np.arange(64, dtype=np.uint8).reshape(2, 32), b"labels": [0, 1]},
                        protocol=2)
    rng = np.random.default_rng(0)
    path = tmp_path / "batch"
    outcomes = {"read": 0, "refused": 0}
    for _ in range(300):
        damaged = bytearray(good)
        for pos in rng.integers(len(damaged), size=int(rng.integers(1, 4))):
            damaged[pos] = int(rng.integers(256))
        path.write_bytes(bytes(damaged))
        try:
            _batch(path)
            outcomes["read"] += 1
        except DataError:
            outcomes["refused"] += 1
    assert outcomes["refused"] > 0 and sum(outcomes.values()) == 300


def test_missing_vision_data_says_where_and_how(tmp_path):
    with pytest.raises(DataError, match="not under .*set download: true"):
        tasks.get("torchvision", name="fashionmnist", root=str(tmp_path))
    with pytest.raises(DataError, match="option 'name'"):
        tasks.get("torchvision", name="svhn", root=str(tmp_path))


def test_fraction_close_to_one_keeps_every_class(tmp_path):
    x, y = _xy((4,), n=1000, k=10)
    task = tasks.get("npz", path=_save(tmp_path, x=x, y=y), fraction=0.995)
    assert len(task.train) == 800 and len(np.unique(task.train.y.numpy())) == 10
    assert len(tasks.get("digits", fraction=0.999).train) == 1149


def test_label_problems_beyond_range(tmp_path):
    x = np.zeros((10, 4))
    with pytest.raises(DataError, match=r"none of \[1, 2, 3, 4\]"):
        tasks.prepare("t", x, np.array([0, 5] * 5))  # a gap: labels must be 0..k-1
    with pytest.raises(DataError, match="y is empty"):
        tasks.prepare("t", np.zeros((3, 4)), np.array([]))
    with pytest.raises(DataError, match="x is empty"):
        tasks.prepare("t", np.zeros((0, 4)), np.array([]))
    with pytest.raises(DataError, match="option 'num_classes'"):
        tasks.prepare("t", x, np.arange(10) % 2, num_classes="2")
    with pytest.raises(DataError, match="option 'seed'"):
        tasks.prepare("t", x, np.arange(10) % 2, seed=-1)


def test_damaged_files_give_data_errors(tmp_path):
    single = tmp_path / "one.npz"
    with open(single, "wb") as f:
        np.save(f, np.zeros(3))  # an .npy payload under an .npz name
    with pytest.raises(DataError, match="single array"):
        tasks.get("npz", path=str(single))
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    (raw / "train-images-idx3-ubyte.gz").write_bytes(b"not gzip at all")
    with pytest.raises(DataError, match="cannot be read"):
        tasks.get("torchvision", name="mnist", root=str(tmp_path))
    (raw / "train-images-idx3-ubyte.gz").unlink()
    (raw / "train-images-idx3-ubyte").write_bytes(bytes([0, 0, 8, 3, 0, 0]))
    with pytest.raises(DataError, match="not an idx file"):
        tasks.get("torchvision", name="mnist", root=str(tmp_path))



# ---------------------------------------------------------------- untrusted input (issue 11, 3.6-3.7)
def _npy(array=None, *, descr="<f8", shape=(4,), data=b"") -> bytes:
    """An .npy member: a real array's bytes, or a header declaring ``shape`` before ``data``."""
    import io

    out = io.BytesIO()
    if array is not None:
        np.save(out, array)
        return out.getvalue()
    np.lib.format.write_array_header_1_0(out, {"descr": descr, "fortran_order": False, "shape": shape})
    return out.getvalue() + data


def _zip(path, members, compression=None):
    import zipfile

    with zipfile.ZipFile(path, "w", compression or zipfile.ZIP_STORED) as archive:
        for name, blob in members.items():
            archive.writestr(name, blob)
    return str(path)


def test_npz_headers_are_checked_before_anything_is_allocated(tmp_path):
    lie = _zip(tmp_path / "lie.npz", {"x.npy": _npy(descr="|u1", shape=(2**37,), data=b"1234"),
                                      "y.npy": _npy(np.arange(4) % 2)})  # declares 128 GiB
    with pytest.raises(DataError, match=r"array 'x' in '.*lie.npz' declares shape \(137438953472,\)"):
        tasks.get("npz", path=lie)
    short = _zip(tmp_path / "short.npz", {"x.npy": _npy(shape=(10, 4), data=bytes(8 * 39)),
                                          "y.npy": _npy(np.arange(10) % 2)})
    with pytest.raises(DataError, match="declares shape .* the archive is damaged"):
        tasks.get("npz", path=short)


def test_npz_object_arrays_are_refused_from_their_header(tmp_path):
    objects = _zip(tmp_path / "objects.npz", {"x.npy": _npy(descr="|O", shape=(4,), data=b"\x80"),
                                              "y.npy": _npy(np.arange(4) % 2)})
    with pytest.raises(DataError, match="not a readable .npz archive: array 'x' holds Python objects"):
        tasks.get("npz", path=objects)


def test_npz_beyond_the_memory_cap_is_refused_before_it_is_read(tmp_path, monkeypatch):
    import zipfile

    import objectives.tasks.npz as npz_task

    x = np.zeros((2**16, 64), dtype=np.uint8)  # 4 MiB of zeros, a few kB compressed
    path = _zip(tmp_path / "bomb.npz", {"x.npy": _npy(x), "y.npy": _npy(np.arange(2**16) % 2)},
                zipfile.ZIP_DEFLATED)
    monkeypatch.setattr(npz_task, "MAX_BYTES", 2**20)
    with pytest.raises(DataError, match=r"holds 4,259,840 values .* at most 1.0 MiB are loaded"):
        tasks.get("npz", path=path)
    assert 2**30 <= npz_task._memory_cap() <= 16 * 2**30


def test_npz_error_messages_stay_short(tmp_path):
    members = {"x.npy": _npy(np.zeros((4, 2))), "y.npy": _npy(np.arange(4) % 2)}
    members |= {f"junk_{'z' * 50}_{i}.npy": _npy(np.zeros(1)) for i in range(300)}
    with pytest.raises(DataError, match="unknown arrays") as info:
        tasks.get("npz", path=_zip(tmp_path / "many.npz", members))
    assert len(str(info.value)) < 600


def test_labels_are_bounded_before_anything_is_sized_by_them():
    x, y = np.zeros((10, 4)), np.array([0, 1] * 4 + [0, 200_000])
    with pytest.raises(DataError, match="at most 100,000 classes"):
        tasks.prepare("t", x, y)  # used to build a set of every label up to the largest
    with pytest.raises(DataError, match=r"option 'num_classes' must be an int in \[2, 100,000\]"):
        tasks.prepare("t", x, np.arange(10) % 2, num_classes=10**9)


@pytest.mark.parametrize("options, words", [
    ({"fraction": "1e-3"}, "option 'fraction' must be a number, got '1e-3'"),
    ({"val_fraction": [0.2]}, "option 'val_fraction' must be a number"),
    ({"standardize": "maybe"}, "option 'standardize' must be true or false"),
    ({"layout": ["NCL"]}, "option 'layout' must be a string"),
    ({"fraction": float("nan")}, "option 'fraction' must be a number, got nan"),
])
def test_prepare_checks_option_types_first(options, words):
    with pytest.raises(DataError) as info:
        tasks.prepare("t", np.zeros((10, 4)), np.arange(10) % 2, **options)
    assert words in str(info.value)


def test_synthetic_sizes_are_bounded(monkeypatch):
    import objectives.tasks.synthetic as synthetic_task

    with pytest.raises(DataError, match=r"option 'samples' .* <= 1,000,000"):
        tasks.get("synthetic", input_shape=(1, 2), samples=2_000_000)
    monkeypatch.setattr(synthetic_task, "MAX_VALUES", 10_000)
    with pytest.raises(DataError, match=r"makes 19,200 values with the test split; at most 10,000"):
        tasks.get("synthetic", input_shape=(1, 8, 8))


def test_idx_files_are_read_only_as_far_as_their_checked_header_says(tmp_path, monkeypatch):
    import objectives.tasks.npz as npz_task
    from objectives.tasks.vision import _idx as read_idx

    path = tmp_path / "train-images-idx3-ubyte.gz"
    path.write_bytes(gzip.compress(_idx(np.zeros((2000, 28, 28)))))  # 1.5 MiB of zeros
    monkeypatch.setattr(npz_task, "MAX_BYTES", 2**20)
    with pytest.raises(DataError, match=r"declares shape \(2000, 28, 28\)"):
        read_idx(path)
    monkeypatch.undo()
    assert read_idx(path).shape == (2000, 28, 28)
    longer = tmp_path / "longer.gz"
    longer.write_bytes(gzip.compress(_idx(np.zeros((2, 2))) + bytes(10**6)))
    with pytest.raises(DataError, match="more bytes than its shape"):
        read_idx(longer)


def test_cifar_batches_must_hold_arrays_not_nested_lists(tmp_path):
    folder = tmp_path / "cifar-100-python"
    folder.mkdir()
    row = [0] * 3072
    for name in ("train", "test"):  # shared rows: small as a pickle, large as an array
        (folder / name).write_bytes(pickle.dumps({b"data": [row] * 500, b"fine_labels": [0, 1] * 250},
                                                 protocol=2))
    with pytest.raises(DataError, match="holds 'data' as list; expected uint8 images"):
        tasks.get("torchvision", name="cifar100", root=str(tmp_path))
    nested = [[0, 1]] * 250
    for name in ("train", "test"):
        (folder / name).write_bytes(pickle.dumps({b"data": np.zeros((500, 3072), np.uint8),
                                                  b"fine_labels": nested}, protocol=2))
    with pytest.raises(DataError, match="labels that are not 500 integers"):
        tasks.get("torchvision", name="cifar100", root=str(tmp_path))
