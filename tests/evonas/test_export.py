"""Exports take raw inputs: a network exported from a run on an npz file with ``layout: NLC``
reproduces the journaled test accuracy exactly when fed the file's raw test arrays, through
TorchScript, ONNX Runtime and the safetensors export (whose JSON records mean, std and layout).
(The quick start's digits run is checked the same way in test_quickstart.py.)"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import yaml
from click.testing import CliRunner

from evonas.cli import main
from evonas.runview import RunView


def _signals(rng: np.random.Generator, n: int, length: int = 24, channels: int = 3):
    """Three classes of noisy waves, stored samples x length x channels, far from standardised."""
    y = np.arange(n) % 3
    t = np.linspace(0, 1, length)
    x = np.empty((n, length, channels))
    for c in range(channels):
        x[:, :, c] = np.sin(2 * np.pi * (1 + y[:, None] + c) * t + rng.uniform(0, 0.5, (n, 1)))
    x += rng.normal(0, 0.4, x.shape)
    return x * np.array([10.0, 3.0, 50.0]) + np.array([200.0, -40.0, 5.0]), y


@pytest.fixture(scope="module")
def npz_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("npz")
    rng = np.random.default_rng(0)
    x, y = _signals(rng, 240)
    x_test, y_test = _signals(rng, 90)
    np.savez(root / "waves.npz", x=x, y=y, x_test=x_test, y_test=y_test)
    config = {
        "name": "waves", "seed": 1,
        "task": {"dataset": "npz", "path": str(root / "waves.npz"), "layout": "NLC"},
        "space": {"kind": "chain", "channels": [4, 8], "max_layers": 2},
        "search": {"population": 3, "offspring": 2, "generations": 1,
                   "operators": {"widen": 1, "deepen": 1}},
        "objectives": [{"name": "val_error"}, {"name": "params"}],
        "training": {"epochs": 3, "batch_size": 32},
        "dispatch": {"backend": "inline"},
    }
    (root / "waves.yaml").write_text(yaml.safe_dump(config))
    result = CliRunner().invoke(main, ["run", str(root / "waves.yaml"), "--run-dir",
                                       str(root / "run"), "--quiet"])
    assert result.exit_code == 0, result.output
    return root, x_test, y_test


@pytest.mark.parametrize("suffix", [".pt", ".onnx", ".safetensors"])
def test_an_npz_nlc_export_takes_the_files_raw_arrays(npz_run, tmp_path, suffix):
    root, x_test, y_test = npz_run
    view = RunView.load(root / "run")
    best = min(view.front(), key=lambda e: e.objectives["val_error"])
    target = tmp_path / f"net{suffix}"
    result = CliRunner().invoke(main, ["export", str(root / "run"), str(best.id), "--to", str(target)])
    assert result.exit_code == 0, result.output
    assert "raw inputs in layout NLC" in result.output
    raw = x_test.astype(np.float32)  # (samples, length, channels), as stored in the file
    if suffix == ".pt":
        with torch.no_grad():
            logits = torch.jit.load(str(target))(torch.from_numpy(raw)).numpy()
    elif suffix == ".onnx":
        ort = pytest.importorskip("onnxruntime")
        session = ort.InferenceSession(str(target), providers=["CPUExecutionProvider"])
        logits = session.run(None, {"input": raw})[0]
    else:
        document = json.loads(target.with_suffix(".json").read_text())
        pre = document["preprocessing"]
        assert pre["layout"] == "NLC" and len(pre["mean"]) == len(pre["std"]) == 3
        assert pre["mean"] == pytest.approx(x_test.mean(axis=(0, 1)), rel=0.05, abs=1.0)
        from evonas.export import load_network

        with torch.no_grad():
            logits = load_network(target)(torch.from_numpy(raw)).numpy()
    accuracy = float((logits.argmax(1) == y_test).sum()) / len(y_test)
    assert accuracy == best.reported["test_accuracy"]  # to the last digit
