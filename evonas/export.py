"""Export a trained network of a run: TorchScript (``.pt``), ONNX (``.onnx``), or safetensors
weights with the genome as JSON (``.safetensors`` + ``.json``). Every export is read back and
compared with the run's own model on a batch of test inputs."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import torch

from genomes import Genome

from .runview import Entry, RunView
from .states import StateFileError, load_state, load_weights, save_weights

__all__ = ["FORMATS", "ExportError", "Exported", "describe", "export", "load_model", "sample_batch"]

FORMATS = {".pt": "TorchScript", ".onnx": "ONNX", ".safetensors": "safetensors + genome JSON"}


class ExportError(Exception):
    """The individual cannot be exported (no weights, an unknown format, a failed check)."""


@dataclass(frozen=True)
class Exported:
    path: Path
    format: str
    max_difference: float | None  # None where the file could not be read back here
    checked_with: str
    extra: tuple[Path, ...] = ()


def load_model(view: RunView, entry: Entry) -> torch.nn.Module:
    """The individual's trained network as the run had it, in eval mode."""
    if entry.weights is None:
        why = f"it {entry.status}" + (f" ({entry.reason})" if entry.reason else "")
        raise ExportError(f"individual {entry.id} has no trained weights: {why}")
    try:
        weights = load_state(entry.weights, entry.sha256)[0].model
    except StateFileError as exc:
        raise ExportError(str(exc)) from None
    net = entry.genome.build(seed=0)
    net.load_state_dict(dict(weights))
    return net.eval()


def sample_batch(view: RunView, entry: Entry, n: int = 32) -> tuple[torch.Tensor, str]:
    """Inputs to compare on: the run's test split (validation where it has none), else noise."""
    from objectives import tasks

    task_config = view.config.task
    try:
        task = tasks.get(task_config.dataset, seed=view.config.seed, **task_config.options())
        split = task.test if task.test is not None else task.val
        return split.x[:n].float(), f"{min(n, len(split))} {'test' if task.test is not None else 'validation'} samples"
    except Exception:  # the data may not be on this machine; the comparison still holds
        generator = torch.Generator().manual_seed(0)
        return torch.randn((n, *entry.genome.input_shape), generator=generator), f"{n} random inputs"


def export(view: RunView, ident: int, target: str | Path) -> Exported:
    target = Path(target)
    suffix = target.suffix.lower()
    if suffix not in FORMATS:
        raise ExportError(f"cannot export to {target.name!r}: the file name must end in "
                          f"{', '.join(FORMATS)} ({', '.join(FORMATS.values())})")
    entry = view.get(ident)
    net = load_model(view, entry)
    x, described = sample_batch(view, entry)
    with torch.no_grad():
        expected = net(x)
    target.parent.mkdir(parents=True, exist_ok=True)
    if suffix == ".pt":
        return _torchscript(net, x, expected, target, described)
    if suffix == ".onnx":
        return _onnx(net, x, expected, target, described)
    return _safetensors(entry, net, x, expected, target, described)


def _torchscript(net, x, expected, target: Path, described: str) -> Exported:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # TorchScript is deprecated upstream but still loads
        try:
            module = torch.jit.script(net)
        except Exception:
            module = torch.jit.trace(net, x)
        module.save(str(target))
        loaded = torch.jit.load(str(target))
    with torch.no_grad():
        got = loaded(x)
    return Exported(target, FORMATS[".pt"], _diff(got, expected), f"torch.jit.load on {described}")


def _onnx(net, x, expected, target: Path, described: str) -> Exported:
    kwargs = dict(input_names=["input"], output_names=["logits"],
                  dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            torch.onnx.export(net, (x,), str(target), dynamo=False, **kwargs)
        except TypeError:  # a torch without the TorchScript-based exporter
            torch.onnx.export(net, (x,), str(target), **kwargs)
        except Exception as exc:
            raise ExportError(f"ONNX export failed: {type(exc).__name__}: {exc}") from None
    try:
        import onnxruntime
    except ImportError:
        return Exported(target, FORMATS[".onnx"], None,
                        "not read back: onnxruntime is not installed (pip install onnxruntime)")
    session = onnxruntime.InferenceSession(str(target), providers=["CPUExecutionProvider"])
    got = session.run(None, {session.get_inputs()[0].name: x.numpy()})[0]
    return Exported(target, FORMATS[".onnx"], _diff(torch.from_numpy(got), expected),
                    f"onnxruntime {onnxruntime.__version__} on {described}")


def _safetensors(entry: Entry, net, x, expected, target: Path, described: str) -> Exported:
    genome_file = target.with_suffix(".json")
    genome_json = entry.genome.to_json()
    save_weights(target, net.state_dict(), {"genome": genome_json, "individual": str(entry.id)})
    genome_file.write_text(genome_json)
    genome = Genome.from_json(genome_file.read_text())
    rebuilt = genome.build(seed=1)  # a different seed: every value must come from the file
    rebuilt.load_state_dict(load_weights(target))
    with torch.no_grad():
        got = rebuilt.eval()(x)
    return Exported(target, FORMATS[".safetensors"], _diff(got, expected),
                    f"Genome.from_json + safetensors on {described}", (genome_file,))


def _diff(got: torch.Tensor, expected: torch.Tensor) -> float:
    return float((got.float() - expected.float()).abs().max())


def describe(result: Exported) -> str:
    diff = "not checked" if result.max_difference is None else f"{result.max_difference:.3g}"
    extra = "".join(f" and {p}" for p in result.extra)
    return (f"wrote {result.path}{extra} ({result.format}); max |output difference| against the "
            f"run's model: {diff} ({result.checked_with})")

