"""Run configs: every malformed one is refused before anything runs, with its dotted key path,
exit code 2 and no traceback; overrides reach any key; the shipped configs are valid."""

from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from evonas.cli import main
from evonas.config import ConfigError, apply_overrides, load, parse, quickstart

ROOT = Path(__file__).resolve().parents[2]


def _with(**changes):
    """The quick start with some keys changed; a value of ... deletes the key."""
    data = quickstart()
    for path, value in changes.items():
        node = data
        *parents, last = path.split("__")
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node.setdefault(part, {})
        if value is ...:
            del node[last]
        elif isinstance(node, list):
            node[int(last)] = value
        else:
            node[last] = value
    return data


CASES = [
    ("unknown top-level key", _with(nmae="x"), "nmae", "unknown key"),
    ("misspelt search key", _with(search__populaton=8), "search.populaton", "allowed"),
    ("wrong type", _with(search__population="many"), "search.population", "integer"),
    ("population too small", _with(search__population=1), "search.population", "greater than or equal to 2"),
    ("unknown backend", _with(search__backend="tensorflow"), "search.backend", "deap"),
    ("unknown selection", _with(search__selection="nsga4"), "search.selection", "nsga2"),
    ("nsga3 with one objective", _with(search__selection="nsga3", objectives=[{"name": "val_error"}]),
     "search.selection", "at least two objectives"),
    ("sms-emoa with one objective", _with(search__selection="sms-emoa", objectives=[{"name": "params"}]),
     "search.selection", "at least two objectives"),
    ("no objectives", _with(objectives=[]), "objectives", "at least 1"),
    ("test accuracy as an objective", _with(objectives__1={"name": "test_accuracy"}),
     "objectives[1].name", "reported only"),
    ("unknown objective", _with(objectives__0={"name": "accuracy"}), "objectives[0].name", "val_error"),
    ("unknown objective option", _with(objectives__1={"name": "latency", "batch": 3}),
     "objectives[1].batch", "batch_size"),
    ("bad objective value", _with(objectives__0={"name": "val_error", "time_penalty": -1}),
     "objectives[0].time_penalty", ">= 0"),
    ("two objectives with one key", _with(objectives=[{"name": "params"}, {"name": "params"}]),
     "objectives[1]", "its own key"),
    ("unknown space", _with(space__kind="resnet"), "space.kind", "multibranch"),
    ("unknown space option", _with(space__depth=3), "space.depth", "max_blocks"),
    ("bad space value", _with(space__channels=[]), "space.channels", "non-empty"),
    ("unknown task", _with(task__dataset="imagenet"), "task.dataset", "digits"),
    ("task seed", _with(task__seed=3), "task.seed", "top level"),
    ("missing npz file", _with(task={"dataset": "npz", "path": "nowhere.npz"}), "task.path", "does not exist"),
    ("zero epochs", _with(training__epochs=0), "training.epochs", "greater than or equal to 1"),
    ("unknown optimizer", _with(training__optimizer="rmsprop"), "training.optimizer", "adamw"),
    ("rungs past the horizon", _with(training__early_ranking={"rungs": [2, 9], "keep": 0.5}),
     "training.early_ranking.rungs", "ending at training.epochs (8)"),
    ("keep above one", _with(training__early_ranking={"rungs": [2, 8], "keep": 2}),
     "training.early_ranking.keep", "less than or equal to 1"),
    ("unknown operator", _with(search__operators={"teleport": 1}), "search.operators.teleport", "deepen"),
    ("zero operator weight", _with(search__operators={"deepen": 0}), "search.operators.deepen", "> 0"),
    ("no operators", _with(search__operators={}), "search.operators", "at least one"),
    ("unknown device", _with(dispatch__devices="tpu"), "dispatch.devices", "cpu"),
    ("dask without a scheduler", _with(dispatch__backend="dask"), "dispatch.scheduler", "tcp://HOST"),
    ("negative time-out", _with(dispatch__timeout_s=-1), "dispatch.timeout_s", "greater than 0"),
    ("lemonade without cheap objectives", _with(search__selection="lemonade",
                                               objectives=[{"name": "val_error"}]),
     "search.selection", "cheap objectives"),
    ("negative seed", _with(seed=-1), "seed", "greater than or equal to 0"),
    ("bad run name", _with(name="my run"), "name", "pattern"),
]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_malformed_configs_exit_2_naming_the_key(case, tmp_path):
    _, data, path, words = case
    file = tmp_path / "bad.yaml"
    file.write_text(yaml.safe_dump(data))
    result = CliRunner().invoke(main, ["validate", str(file)])
    assert result.exit_code == 2, result.output
    assert f"{path}:" in result.output and words in result.output, result.output
    assert "Traceback" not in result.output


@pytest.mark.parametrize("text, words", [
    ("search: [1, 2\n", "not valid YAML"),
    ("- just\n- a list\n", "a YAML mapping"),
])
def test_files_that_are_not_configs(tmp_path, text, words):
    file = tmp_path / "bad.yaml"
    file.write_text(text)
    result = CliRunner().invoke(main, ["validate", str(file)])
    assert result.exit_code == 2 and words in result.output and "Traceback" not in result.output
    missing = CliRunner().invoke(main, ["validate", str(tmp_path / "none.yaml")])
    assert missing.exit_code == 2 and "does not exist" in missing.output


def test_every_problem_is_reported_at_once():
    with pytest.raises(ConfigError) as info:
        parse(_with(seed=-1, search__population=1, search__backend="x"))
    assert {p for p, _ in info.value.issues} >= {"seed", "search.population", "search.backend"}


def test_overrides_reach_any_key_and_are_read_as_yaml():
    config = load(None, ["search.population=32", "training.epochs=2",
                         "training.early_ranking.rungs=[1, 2]", "space.channels=[4, 8]"])
    assert config.search.population == 32 and config.training.epochs == 2
    assert config.training.early_ranking.rungs == [1, 2]
    assert config.space.options()["channels"] == [4, 8]
    with pytest.raises(ConfigError, match="key.path=value"):
        apply_overrides({}, ["search.population"])
    result = CliRunner().invoke(main, ["validate", str(ROOT / "runs/quickstart.yaml"),
                                       "--set", "search.populaton=3"])
    assert result.exit_code == 2 and "search.populaton" in result.output


def test_validate_prints_the_resolved_config():
    result = CliRunner().invoke(main, ["validate", str(ROOT / "runs/quickstart.yaml")])
    assert result.exit_code == 0, result.output
    resolved = yaml.safe_load(result.output)
    assert resolved["search"]["backend"] == "pymoo" and resolved["task"]["dataset"] == "digits"
    assert "# task digits: input (1, 8, 8), 10 classes" in result.output


@pytest.mark.parametrize("name", sorted(p.name for p in (ROOT / "runs").glob("*.yaml")))
def test_shipped_configs_are_valid(name):
    load(ROOT / "runs" / name)


def test_the_built_in_quick_start_is_runs_quickstart():
    assert quickstart() == yaml.safe_load((ROOT / "runs/quickstart.yaml").read_text())
