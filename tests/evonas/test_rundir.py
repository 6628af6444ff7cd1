"""The run directory is the user's: a run never deletes what evonas did not write, inspection
reads what checkpoints know, and the small ways a run could lose or misreport work are closed."""

from __future__ import annotations

import errno
import json
import os
import shutil
from pathlib import Path

import pytest
import torch
import yaml
from click.testing import CliRunner

import evonas
from evonas.cli import main
from evonas.export import load_model
from evonas.runview import RunView

from tests.evonas.runs import TINY


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def events(run: Path) -> list[dict]:
    """The journal's events, read plainly (a line's checksum is just one more key here)."""
    return [json.loads(line) for line in (run / "journal.jsonl").read_text().splitlines() if line]


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    root = tmp_path_factory.mktemp("rundir")
    run = root / "run"
    evonas.run(TINY, run_dir=run)
    (root / "tiny.yaml").write_text(yaml.safe_dump(TINY))
    return root, run


def _copy(run: Path, tmp_path: Path, name: str = "copy") -> Path:
    target = tmp_path / name
    shutil.copytree(run, target)
    return target


# ---------------------------------------------------------------- 1. a run never deletes users' files
def _tree(path: Path) -> dict[str, bytes]:
    return {p.relative_to(path).as_posix(): p.read_bytes() for p in path.rglob("*") if p.is_file()}


@pytest.mark.parametrize("force", [False, True])
def test_a_folder_holding_other_files_is_refused_even_with_force(finished, tmp_path, force):
    root, _ = finished
    folder = tmp_path / "mine"
    (folder / "weights" / "sub").mkdir(parents=True)
    (folder / "weights" / "sub" / "model.pt").write_bytes(b"my model")
    (folder / "checkpoints").mkdir()
    (folder / "checkpoints" / "ckpt.bin").write_bytes(b"my checkpoint")
    (folder / "front.csv").write_text("my front")
    before = _tree(folder)
    result = invoke("run", root / "tiny.yaml", "--run-dir", folder, "--quiet",
                    *(["--force"] if force else []))
    assert result.exit_code == 2, result.output
    assert "evonas did not write" in result.output and "weights/sub/" in result.output
    assert _tree(folder) == before  # nothing deleted, replaced or added (not even a lock)


def test_a_run_that_lost_its_journal_is_refused_with_the_hint_to_resume(finished, tmp_path):
    root, run = finished
    copy = _copy(run, tmp_path)
    (copy / "journal.jsonl").unlink()
    before = _tree(copy)
    for extra in ([], ["--force"]):
        result = invoke("run", root / "tiny.yaml", "--run-dir", copy, "--quiet", *extra)
        assert result.exit_code == 2 and "evonas resume" in result.output, result.output
        assert _tree(copy) == before
    assert invoke("resume", copy, "--quiet").exit_code == 0  # and it can indeed be resumed


def test_force_replaces_a_run_evonas_wrote(finished, tmp_path):
    root, run = finished
    copy = _copy(run, tmp_path)
    refused = invoke("run", root / "tiny.yaml", "--run-dir", copy, "--quiet")
    assert refused.exit_code == 2 and "already holds a run" in refused.output
    (copy / ".front.csv.4242.tmp").write_text("left by a killed write")
    replaced = invoke("run", root / "tiny.yaml", "--run-dir", copy, "--quiet", "--set",
                      "search.generations=1", "--force")
    assert replaced.exit_code == 0, replaced.output
    assert not (copy / ".front.csv.4242.tmp").exists()
    assert max(int(e["generation"]) for e in events(copy) if e["event"] == "generation") == 1


# ---------------------------------------------------------------- 3. inspection reads checkpoints
def test_individuals_known_only_to_a_checkpoint_stay_visible(finished, tmp_path):
    _, run = finished
    reference = RunView.load(run)
    front = sorted(e.id for e in reference.front())
    lines = (run / "journal.jsonl").read_bytes().split(b"\n")
    for name, kept in (("truncated", lines[:3]), ("deleted", None)):
        copy = _copy(run, tmp_path, name)
        if kept is None:
            (copy / "journal.jsonl").unlink()
        else:
            (copy / "journal.jsonl").write_bytes(b"\n".join(kept) + b"\n")
        view = RunView.load(copy)
        assert sorted(e.id for e in view.front()) == front, name
        first = min(i for i, e in reference.entries.items() if e.generation == 0)
        shown = invoke("show", copy, first, "--format", "json")
        assert shown.exit_code == 0, shown.output
        assert json.loads(shown.output)["objectives"] == reference.get(first).objectives
        target = tmp_path / f"{name}.pt"
        exported = invoke("export", copy, front[0], "--to", target)
        assert exported.exit_code == 0, exported.output


def test_a_front_member_exports_from_its_checkpoint_copy_when_weights_are_gone(finished, tmp_path):
    _, run = finished
    copy = _copy(run, tmp_path)
    shutil.rmtree(copy / "weights")
    view = RunView.load(copy)
    best = view.front()[0]
    exported = invoke("export", copy, best.id, "--to", tmp_path / "best.pt")
    assert exported.exit_code == 0, exported.output
    x = torch.randn(4, *best.genome.input_shape)
    with torch.no_grad():  # the checkpoint's copy is the run's own trained network
        assert torch.equal(load_model(view, best)(x), load_model(RunView.load(run), best)(x))


# ---------------------------------------------------------------- 5. exports destroy nothing
def test_exports_refuse_the_run_directory_and_existing_files(finished, tmp_path):
    _, run = finished
    view = RunView.load(run)
    best = view.front()[0]
    own = run / "weights" / view.get(best.id).weights.name
    before = own.read_bytes()
    inside = invoke("export", run, best.id, "--to", own.with_suffix(".safetensors"))
    assert inside.exit_code == 2 and "inside the run directory" in inside.output
    assert own.read_bytes() == before
    neighbour = tmp_path / "model.json"
    neighbour.write_text("mine")
    clash = invoke("export", run, best.id, "--to", tmp_path / "model.safetensors")
    assert clash.exit_code == 2 and "model.json already exists" in clash.output
    assert neighbour.read_text() == "mine" and not (tmp_path / "model.safetensors").exists()
    (tmp_path / "net.pt").write_text("mine")
    again = invoke("export", run, best.id, "--to", tmp_path / "net.pt")
    assert again.exit_code == 2 and "--force" in again.output
    assert (tmp_path / "net.pt").read_text() == "mine"
    forced = invoke("export", run, best.id, "--to", tmp_path / "net.pt", "--force")
    assert forced.exit_code == 0 and (tmp_path / "net.pt").read_bytes() != b"mine"
    (tmp_path / "afile").write_text("x")
    for target, words in ((tmp_path / "afile" / "net.onnx", "is a file"),
                          (Path("/proc/evonas-test/net.onnx"), "cannot write")):
        bad = invoke("export", run, best.id, "--to", target)
        assert bad.exit_code == 2 and words in bad.output, bad.output
        assert "Traceback" not in bad.output


# ---------------------------------------------------------------- 10. minor findings
def test_a_full_disk_names_the_file(finished, tmp_path, monkeypatch):
    root, _ = finished

    real, calls = os.fsync, []

    def full(fd):  # the disk fills up once the run is under way
        calls.append(fd)
        if len(calls) > 12:
            raise OSError(errno.ENOSPC, "No space left on device")
        real(fd)

    monkeypatch.setattr(os, "fsync", full)
    result = invoke("run", root / "tiny.yaml", "--run-dir", tmp_path / "run", "--quiet")
    assert result.exit_code == 1, result.output
    assert "No space left on device" in result.output
    assert str(tmp_path / "run") in result.output and "the run directory:" not in result.output


def test_resume_clears_temporary_files_of_killed_writes(finished, tmp_path):
    _, run = finished
    copy = _copy(run, tmp_path)
    leftovers = [copy / ".front.csv.12345.tmp", copy / "weights" / ".3-e2.safetensors.999.tmp"]
    for path in leftovers:
        path.write_bytes(b"half")
    assert invoke("resume", copy, "--quiet").exit_code == 0
    assert not any(path.exists() for path in leftovers)


def test_the_stopped_event_counts_what_was_journaled(tmp_path, monkeypatch):
    from evonas import engine
    from evonas.evaluation.jobs import evaluate_job

    calls = []

    def interrupted(job, device):
        calls.append(job["id"])
        if len(calls) == 4:
            raise KeyboardInterrupt
        return evaluate_job(job, device)

    config = {**TINY, "search": {**TINY["search"], "population": 5}}
    result = engine.run(config, run_dir=tmp_path / "run", job=interrupted)
    assert result.stopped
    lines = events(tmp_path / "run")
    evaluated = [e for e in lines if e["event"] == "evaluated"]
    stopped = [e for e in lines if e["event"] == "stopped"]
    assert len(evaluated) == 3 and stopped[0]["evaluations"] == 3, stopped


def test_resume_refuses_when_nothing_shows_the_config_the_run_started_with(finished, tmp_path):
    _, run = finished
    copy = _copy(run, tmp_path)
    shutil.rmtree(copy / "checkpoints")
    (copy / "LATEST").unlink()
    kept = [line for line in (copy / "journal.jsonl").read_bytes().splitlines(keepends=True)
            if b'"event":"started"' not in line]
    (copy / "journal.jsonl").write_bytes(b"".join(kept))
    config = yaml.safe_load((copy / "config.yaml").read_text())
    config["seed"] = 99  # an edit no resume may take
    (copy / "config.yaml").write_text(yaml.safe_dump(config))
    before = (copy / "journal.jsonl").read_bytes()
    result = invoke("resume", copy, "--quiet")
    assert result.exit_code == 2 and "started" in result.output, result.output
    assert (copy / "journal.jsonl").read_bytes() == before  # no second run mixed into it


def test_files_that_only_look_like_evonas_files_are_never_replaced_without_force(finished, tmp_path):
    root, _ = finished
    for name, content in (("front.csv", b"my front"), ("operators.json", b"{}"), ("lock", b"mine"),
                          (".front.csv.123.tmp", b"mine")):
        folder = tmp_path / name.strip(".")
        folder.mkdir()
        (folder / name).write_bytes(content)
        result = invoke("run", root / "tiny.yaml", "--run-dir", folder, "--quiet")
        assert result.exit_code == 2 and "--force" in result.output, (name, result.output)
        assert _tree(folder) == {name: content}
    inside_tmp = tmp_path / "tmpfolder"
    (inside_tmp / "checkpoints" / ".gen-000009.77.tmp" / "mystuff").mkdir(parents=True)
    (inside_tmp / "checkpoints" / ".gen-000009.77.tmp" / "mystuff" / "thesis.tex").write_text("!")
    result = invoke("run", root / "tiny.yaml", "--run-dir", inside_tmp, "--quiet", "--force")
    assert result.exit_code == 2 and "mystuff" in result.output, result.output
    assert (inside_tmp / "checkpoints" / ".gen-000009.77.tmp" / "mystuff" / "thesis.tex").exists()


def test_an_unreadable_journal_is_an_error_not_a_traceback(finished, tmp_path):
    _, run = finished
    copy = _copy(run, tmp_path)
    (copy / "journal.jsonl").unlink()
    (copy / "journal.jsonl").mkdir()
    for args in (["front", copy], ["show", copy, 0], ["resume", copy, "--quiet"]):
        result = invoke(*args)
        assert result.exit_code == 2 and "journal.jsonl" in result.output, (args, result.output)
        assert "Traceback" not in result.output


def test_plots_get_the_same_guards_as_exports(finished, tmp_path):
    _, run = finished
    before = (run / "front.csv").read_bytes()
    refused = {
        str(run / "front.csv"): "cannot draw to 'front.csv'",
        str(run / "front.png"): "inside the run directory",
        str(run / "weights" / "0-e2.png"): "inside the run directory",
        str(tmp_path / "front.xyz"): "must end in one of",
    }
    (tmp_path / "thesis.pdf").write_text("thesis")
    refused[str(tmp_path / "thesis.pdf")] = "--force"
    (tmp_path / "afile").write_text("x")
    refused[str(tmp_path / "afile" / "x.png")] = "is a file"
    for target, words in refused.items():
        for args in (["front", run, "--plot", target], ["show", run, 0, "--graph", target]):
            result = invoke(*args)
            assert result.exit_code == 2 and words in result.output, (args, result.output)
            assert "Traceback" not in result.output
    assert (run / "front.csv").read_bytes() == before
    assert (tmp_path / "thesis.pdf").read_text() == "thesis"
    assert not (run / "weights" / "0-e2.png").exists() and not (run / "front.png").exists()
    drawn = invoke("front", run, "--plot", tmp_path / "frontX")
    assert drawn.exit_code == 0 and f"plot: {tmp_path / 'frontX.png'}" in drawn.output
    assert (tmp_path / "frontX.png").exists()
    forced = invoke("front", run, "--plot", tmp_path / "thesis.pdf", "--force")
    assert forced.exit_code == 0 and (tmp_path / "thesis.pdf").read_bytes()[:4] == b"%PDF"


def test_load_network_refuses_what_does_not_fit_with_an_export_error(finished, tmp_path):
    from safetensors.torch import load_file, save_file

    from evonas.export import ExportError, load_network

    _, run = finished
    best = RunView.load(run).front()[0]
    target = tmp_path / "net.safetensors"
    assert invoke("export", run, best.id, "--to", target).exit_code == 0
    from safetensors import safe_open

    with safe_open(str(target), framework="pt") as f:
        meta = f.metadata()
    tensors = load_file(target)
    first = next(iter(tensors))
    broken = tmp_path / "broken.safetensors"
    save_file({**tensors, first: torch.zeros(3, 3)}, broken, metadata=meta)  # a wrong shape
    two = tmp_path / "two.safetensors"
    pre = json.loads(meta["preprocessing"])
    save_file(tensors, two, metadata={**meta, "preprocessing": json.dumps(
        {**pre, "mean": pre["mean"] * 2, "std": pre["std"] * 2})})  # two channels for one
    for path in (broken, two, tmp_path / "missing.safetensors"):
        with pytest.raises(ExportError):
            load_network(path)
