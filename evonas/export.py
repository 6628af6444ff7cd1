"""Export a trained network of a run: TorchScript (``.pt``), ONNX (``.onnx``), or safetensors
weights with an export document (``.safetensors`` + ``.json``).

Exported networks take **raw** inputs, as the task's data files hold them: the run's
preprocessing (layout change, then per-channel ``(x - mean) / std`` with the training split's
statistics) is inside the ``.pt`` and ``.onnx`` graphs, and is recorded in the ``.json``
document and the safetensors header. Every export is read back and compared with the run's own
model on raw test inputs. Exports never write inside the run directory and never replace a file
without ``force``.
"""

from __future__ import annotations

import json
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch

from genomes import Genome, GenomeError
from objectives.tasks import Preprocessing

from evonas.store.rundir import OutputError, check_output
from .runview import Entry, RunView
from evonas.store.states import StateFileError, load_state, load_weights, save_weights

__all__ = ["EXPORT_FORMAT", "FORMATS", "ExportError", "Exported", "describe", "export",
           "load_model", "load_network", "sample_batch"]

FORMATS = {".pt": "TorchScript", ".onnx": "ONNX", ".safetensors": "safetensors + export JSON"}
EXPORT_FORMAT = "evonas.export/1"


class ExportError(Exception):
    """The individual cannot be exported (no weights, an unknown format, a refused target)."""


@dataclass(frozen=True)
class Exported:
    path: Path
    format: str
    max_difference: float | None  # None where the file could not be read back here
    checked_with: str
    extra: tuple[Path, ...] = ()
    preprocessing: Preprocessing | None = None


def load_model(view: RunView, entry: Entry) -> torch.nn.Module:
    """The individual's trained network as the run had it (standardised inputs), in eval mode."""
    if entry.weights is None and entry.saved is None:
        why = f"it {entry.status}" + (f" ({entry.reason})" if entry.reason else "")
        raise ExportError(f"individual {entry.id} has no trained weights: {why}")
    weights, problems = None, []
    for path, sha256 in ((entry.weights, entry.sha256), (entry.saved, None)):
        if path is None:
            continue
        try:  # the run's file, checked against its journaled hash; else the checkpoint's copy
            weights = load_state(path, sha256)[0].model
            break
        except StateFileError as exc:
            problems.append(str(exc))
    if weights is None:
        raise ExportError("; ".join(problems))
    net = entry.genome.build(seed=0)
    net.load_state_dict(dict(weights))
    return net.eval()


def _task(view: RunView):
    from objectives import tasks
    from .config import plugins

    task_config = view.config.task
    if "task.dataset" in plugins(view.config):  # reading a run never imports a user's module
        raise ExportError(f"the run's task is a user's own ({task_config.dataset}); evonas does "
                          f"not import it to read a run")
    return tasks.get(task_config.dataset, seed=view.config.seed, **task_config.options())


def preprocessing(view: RunView) -> Preprocessing:
    """How the run turned raw inputs into network inputs: as recorded in the run (journal or
    checkpoint), else as the task computes it on this machine's data."""
    if view.preprocessing is not None:
        return view.preprocessing
    try:
        pre = _task(view).preprocessing
    except Exception as exc:  # noqa: BLE001 - any failure to load data means "not here"
        raise ExportError(f"the run does not record how it standardised its inputs, and its data "
                          f"cannot be loaded here to recompute it ({exc})") from None
    if pre is None:
        raise ExportError("the run does not record how it standardised its inputs")
    return pre


def sample_batch(view: RunView, entry: Entry, n: int = 32) -> tuple[torch.Tensor, str]:
    """Raw inputs to compare on: the run's test split (validation where it has none) in its raw
    layout and scale, else noise of the raw data's shape, mean and spread."""
    pre = preprocessing(view)
    try:
        task = _task(view)
        split = task.test if task.test is not None else task.val
        raw = task.preprocessing.invert(split.x[:n])
        return raw, (f"{min(n, len(split))} raw {'test' if task.test is not None else 'validation'}"
                     f" samples")
    except Exception:  # noqa: BLE001 - the data may not be on this machine; the check still holds
        generator = torch.Generator().manual_seed(0)
        noise = torch.randn((n, *entry.genome.input_shape), generator=generator)
        return pre.invert(noise), f"{n} random raw inputs"


def deployable(net: torch.nn.Module, pre: Preprocessing) -> torch.nn.Module:
    """The network with its preprocessing in front: raw inputs in, logits out."""
    return torch.nn.Sequential(pre.module(), net).eval()


def export(view: RunView, ident: int, target: str | Path, *, force: bool = False) -> Exported:
    """Write individual ``ident`` of the run to ``target`` (the suffix picks the format) and
    check the written file against the run's model on raw inputs."""
    target = Path(target)
    suffix = target.suffix.lower()
    if suffix not in FORMATS:
        raise ExportError(f"cannot export to {target.name!r}: the file name must end in "
                          f"{', '.join(FORMATS)} ({', '.join(FORMATS.values())})")
    targets = [target] + ([target.with_suffix(".json")] if suffix == ".safetensors" else [])
    for path in targets:
        _check_target(view, path, force)
    entry = view.get(ident)
    net = load_model(view, entry)
    pre = preprocessing(view)
    raw, described = sample_batch(view, entry)
    with torch.no_grad():
        expected = net(pre.apply(raw))
    model = deployable(net, pre)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ExportError(f"cannot write {target}: {_why(exc)}") from None
    if suffix == ".pt":
        return _torchscript(model, raw, expected, target, described, pre)
    if suffix == ".onnx":
        return _onnx(model, raw, expected, target, described, pre)
    return _safetensors(entry, net, pre, raw, expected, target, described)


def _check_target(view: RunView, path: Path, force: bool) -> None:
    try:
        check_output(view.path, path, force=force)
    except OutputError as exc:
        raise ExportError(str(exc)) from None


def _why(exc: OSError) -> str:
    return exc.strerror or str(exc)


def _write(target: Path, write) -> None:
    """``write(tmp)`` to a temporary name beside ``target``, then rename: a failed export leaves
    no half-written file, and an existing file is replaced only whole."""
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        write(tmp)
        os.replace(tmp, target)
    except OSError as exc:
        raise ExportError(f"cannot write {target}: {_why(exc)}") from None
    finally:
        if tmp.exists():
            tmp.unlink()


def _torchscript(model, raw, expected, target: Path, described: str, pre) -> Exported:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # TorchScript is deprecated upstream but still loads
        try:
            module = torch.jit.script(model)
        except Exception:  # noqa: BLE001 - fall back to tracing what scripting cannot read
            module = torch.jit.trace(model, raw)
        _write(target, lambda tmp: module.save(str(tmp)))
        loaded = torch.jit.load(str(target))
    with torch.no_grad():
        got = loaded(raw)
    return Exported(target, FORMATS[".pt"], _diff(got, expected), f"torch.jit.load on {described}",
                    preprocessing=pre)


def _onnx(model, raw, expected, target: Path, described: str, pre) -> Exported:
    kwargs = dict(input_names=["input"], output_names=["logits"],
                  dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}})
    x = raw.to(torch.float32)

    def write(tmp: Path) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                torch.onnx.export(model, (x,), str(tmp), dynamo=False, **kwargs)
            except TypeError:  # a torch without the TorchScript-based exporter
                torch.onnx.export(model, (x,), str(tmp), **kwargs)
            except OSError:
                raise
            except Exception as exc:  # noqa: BLE001
                raise ExportError(f"ONNX export failed: {type(exc).__name__}: {exc}") from None

    _write(target, write)
    try:
        import onnxruntime
    except ImportError:
        return Exported(target, FORMATS[".onnx"], None,
                        "not read back: onnxruntime is not installed (pip install onnxruntime)",
                        preprocessing=pre)
    session = onnxruntime.InferenceSession(str(target), providers=["CPUExecutionProvider"])
    got = session.run(None, {session.get_inputs()[0].name: x.numpy()})[0]
    return Exported(target, FORMATS[".onnx"], _diff(torch.from_numpy(got), expected),
                    f"onnxruntime {onnxruntime.__version__} on {described}", preprocessing=pre)


def _safetensors(entry: Entry, net, pre: Preprocessing, raw, expected, target: Path,
                 described: str) -> Exported:
    document = target.with_suffix(".json")
    doc = {"format": EXPORT_FORMAT, "individual": entry.id,
           "weights": target.name, "input": _input_doc(pre, entry.genome),
           "preprocessing": pre.to_dict(), "genome": entry.genome.to_dict()}
    meta = {"format": EXPORT_FORMAT, "individual": str(entry.id),
            "preprocessing": json.dumps(pre.to_dict()), "genome": entry.genome.to_json()}
    _write(target, lambda tmp: save_weights(tmp, net.state_dict(), meta))
    _write(document, lambda tmp: tmp.write_text(json.dumps(doc, indent=1) + "\n"))
    rebuilt = load_network(target)  # from the files alone: every value must come from them
    with torch.no_grad():
        got = rebuilt(raw)
    return Exported(target, FORMATS[".safetensors"], _diff(got, expected),
                    f"evonas.export.load_network on {described}", (document,), pre)


def _input_doc(pre: Preprocessing, genome: Genome) -> dict:
    return {"layout": pre.layout, "shape": ["batch", *pre.raw_shape(genome.input_shape)],
            "dtype": "float32 (any numeric type for .pt)",
            "transform": "x -> permute to channels first, then (x - mean) / std per channel"}


def load_network(path: str | Path) -> torch.nn.Module:
    """An exported ``.safetensors`` network, rebuilt from the file alone (its header holds the
    genome and the preprocessing; the ``.json`` beside it says the same for people and other
    tools) as a module that takes raw inputs. Nothing in the file is executed."""
    path = Path(path)
    try:
        weights = load_weights(path)
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
        if meta.get("format") != EXPORT_FORMAT:
            raise ExportError(f"{path} is not an evonas export (format {meta.get('format')!r})")
        genome = Genome.from_json(meta["genome"])
        pre = Preprocessing.from_dict(json.loads(meta["preprocessing"]))
        if len(pre.mean) != genome.input_shape[0]:
            raise ValueError(f"its preprocessing has {len(pre.mean)} channels, its network "
                             f"takes {genome.input_shape[0]}")
        net = genome.build(seed=1)  # a different seed: every value must come from the file
        net.load_state_dict(weights)
    except (StateFileError, GenomeError, KeyError, ValueError, RuntimeError, OSError) as exc:
        raise ExportError(f"{path} cannot be read as an evonas export: {str(exc)[:300]}") from None
    return deployable(net.eval(), pre)


def _diff(got: torch.Tensor, expected: torch.Tensor) -> float:
    return float((got.float() - expected.float()).abs().max())


def describe(result: Exported) -> str:
    diff = "not checked" if result.max_difference is None else f"{result.max_difference:.3g}"
    extra = "".join(f" and {p}" for p in result.extra)
    pre = result.preprocessing
    takes = "" if pre is None else (f"; it takes raw inputs in layout {pre.layout} and "
                                    f"standardises them itself")
    return (f"wrote {result.path}{extra} ({result.format}{takes}); max |output difference| "
            f"against the run's model: {diff} ({result.checked_with})")
