"""The command line: version, the search-space demo, and exit code 2 for bad usage."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
from click.testing import CliRunner

from evonas import __version__
from evonas.cli import main
from genomes import spaces


def test_version():
    result = CliRunner().invoke(main, ["--version"])
    assert result.exit_code == 0 and __version__ in result.output


def test_spaces_demo_samples_builds_and_counts_every_space():
    result = CliRunner().invoke(main, ["spaces", "--format", "json", "--seed", "3"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    assert [r["space"] for r in rows] == spaces.names()
    for row in rows:
        space = spaces.get(row["space"], input_shape=row["input_shape"], num_outputs=10)
        genome = space.sample(np.random.default_rng(3))
        assert row["params"] == genome.num_params() > 0
        assert row["hash"] == genome.canonical_hash()
        assert row["output"] == [8, 10]


def test_spaces_demo_on_a_1d_signal_as_a_table():
    result = CliRunner().invoke(main, ["spaces", "--space", "chain", "--space", "cell",
                                       "--input-shape", "2,64", "--outputs", "4"])
    assert result.exit_code == 0, result.output
    assert "chain" in result.output and "cell" in result.output and "2x64" in result.output


def test_bad_usage_exits_2_with_a_message_and_no_traceback():
    runner = CliRunner()
    for args, words in [(["spaces", "--space", "resnet"], "unknown space 'resnet'"),
                        (["spaces", "--input-shape", "1,x"], "comma-separated"),
                        (["spaces", "--input-shape", "5"], "(C, L) or (C, H, W)"),
                        (["spaces", "--seed", "-1"], "--seed"),
                        (["spaces", "--space", "nb201", "--input-shape", "3,64"], "space 'nb201'"),
                        (["frobnicate"], "No such command")]:
        result = runner.invoke(main, args)
        assert result.exit_code == 2, (args, result.output)
        assert words in result.output
        assert "Traceback" not in result.output


def test_console_script_is_installed():
    script = Path(sys.executable).with_name("evonas")
    out = subprocess.run([str(script), "--version"], capture_output=True, text=True, check=True)
    assert __version__ in out.stdout


def test_report_prints_the_file_written_and_exits_2_on_a_refusal(monkeypatch, tmp_path):
    """The wiring only (the report's content is tested with it): run dirs, --out and --force
    reach ``write_report``; its path is printed; OutputError and RunDirError exit 2."""
    import types

    from evonas.store.rundir import OutputError, RunDirError

    calls = []

    def write_report(run_dirs, out=None, *, force=False):
        calls.append((list(run_dirs), out, force))
        if "refused" in run_dirs[0]:
            raise OutputError(f"{out} already exists; pass --force to replace it")
        if "missing" in run_dirs[0]:
            raise RunDirError(f"{run_dirs[0]!r} is not a run directory")
        return tmp_path / "report.html"

    monkeypatch.setitem(sys.modules, "evonas.report",
                        types.SimpleNamespace(write_report=write_report))
    runner = CliRunner()
    done = runner.invoke(main, ["report", "a", "b", "--out", "r.html", "--force"])
    assert done.exit_code == 0, done.output
    assert calls[-1] == (["a", "b"], "r.html", True)
    assert done.output.strip() == str(tmp_path / "report.html")
    assert runner.invoke(main, ["report", "a"]).exit_code == 0 and calls[-1] == (["a"], None, False)
    for name, words in (("refused", "already exists"), ("missing", "not a run directory")):
        result = runner.invoke(main, ["report", name, "--out", "r.html"])
        assert result.exit_code == 2 and "error: " in result.output and words in result.output
        assert "Traceback" not in result.output
    assert runner.invoke(main, ["report"]).exit_code == 2  # at least one run directory


def test_an_input_shape_some_spaces_cannot_take_skips_them_saying_so():
    """No --space: the spaces that take a 1-D signal are shown, nb201 (images only) is skipped
    with its reason, and the command succeeds; asked for by name, nb201 stays an error."""
    table = CliRunner().invoke(main, ["spaces", "--input-shape", "2,64", "--outputs", "4"])
    assert table.exit_code == 0, table.output
    for name in spaces.names():
        if name != "nb201":
            assert name in table.stdout and "2x64" in table.stdout
    assert "skipped space 'nb201': it cannot take input shape 2,64 (option 'input_shape' must " \
           "be (C, H, W)" in table.stderr, table.stderr
    assert "nb201" not in table.stdout
    as_json = CliRunner().invoke(main, ["spaces", "--input-shape", "2,64", "--format", "json"])
    assert as_json.exit_code == 0, as_json.output
    rows = {r["space"]: r for r in json.loads(as_json.stdout)}
    assert list(rows) == spaces.names()
    assert rows["nb201"]["skipped"].startswith("option 'input_shape' must be (C, H, W)")
    assert rows["nb201"]["params"] is None
    assert all(r["skipped"] is None and r["params"] > 0 for n, r in rows.items() if n != "nb201")
    named = CliRunner().invoke(main, ["spaces", "--space", "nb201", "--input-shape", "2,64"])
    assert named.exit_code == 2 and "space 'nb201'" in named.output
    nothing = CliRunner().invoke(main, ["spaces", "--input-shape", "1,2,3,4"])
    assert nothing.exit_code == 2 and "no search space takes input shape 1,2,3,4" in nothing.output


def test_validate_says_one_generation_in_the_singular():
    quickstart = Path(__file__).resolve().parents[2] / "runs" / "quickstart.yaml"
    result = CliRunner().invoke(main, ["validate", str(quickstart), "--set",
                                       "search.generations=1"])
    assert result.exit_code == 0, result.output
    assert ", in 1 generation after the initial population" in result.output, result.output


def test_runs_passes_over_folders_that_are_not_runs_in_silence(tmp_path):
    """A broad folder: another tool's config.yaml or a stray LATEST is no run and is not
    listed; a folder with a journal that cannot be read is, as damaged."""
    (tmp_path / "project").mkdir()
    (tmp_path / "project" / "config.yaml").write_text("lr: 0.1\n")
    (tmp_path / "stray" / "deep").mkdir(parents=True)
    (tmp_path / "stray" / "deep" / "LATEST").write_text("x\n")
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "journal.jsonl").write_text("not json\n")
    result = CliRunner().invoke(main, ["runs", str(tmp_path), "--format", "json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert [r["name"] for r in rows] == ["broken"] and rows[0]["status"] == "damaged"
    table = CliRunner(env={"COLUMNS": "200"}).invoke(main, ["runs", str(tmp_path)])
    assert table.exit_code == 0 and "broken" in table.output, table.output
    assert "project" not in table.output and "stray" not in table.output, table.output
    alone = CliRunner().invoke(main, ["runs", str(tmp_path / "project"), "--format", "json"])
    assert [r["status"] for r in json.loads(alone.stdout)] == ["damaged"]  # asked for by name
