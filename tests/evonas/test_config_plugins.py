"""A user's plugin that cannot be used as one (a builtin type with no signature, a constructor
that raises) is a config error at its key, exit 2, naming the target and what went wrong; a
built-in factory's own exception still surfaces unchanged, so the package's bugs stay visible."""

from __future__ import annotations

import sys
import textwrap

import pytest
import yaml
from click.testing import CliRunner

from evonas.cli import main
from evonas.config import ConfigError, parse, quickstart
from genomes.registry import Registry

# A user's module whose every constructor fails, each in its own way.
FAILING = textwrap.dedent('''
    class Obj:
        def __init__(self):
            raise RuntimeError("ctor boom")

    class Op:
        def __init__(self):
            raise RuntimeError("op boom")

    def task(*, seed: int = 0):
        raise ValueError("no such data here")

    class Space:
        def __init__(self, *, input_shape, num_outputs):
            raise KeyError("space boom")
''')


@pytest.fixture
def failmod(tmp_path, monkeypatch):
    """The module ``cfgfailmod`` on sys.path for this test only."""
    (tmp_path / "cfgfailmod.py").write_text(FAILING)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield "cfgfailmod"
    sys.modules.pop("cfgfailmod", None)


def _validate(tmp_path, data: dict):
    file = tmp_path / "c.yaml"
    file.write_text(yaml.safe_dump(data))
    return CliRunner().invoke(main, ["validate", str(file)])


def _with(change: dict) -> dict:
    data = quickstart()
    for key, value in change.items():
        section, _, leaf = key.partition(".")
        if leaf:
            data[section] = {**data.get(section, {}), leaf: value}
        else:
            data[key] = value
    return data


@pytest.mark.parametrize("change, key, target", [
    ({"space": {"kind": "collections:OrderedDict"}}, "space.kind", "collections:OrderedDict"),
    ({"task": {"dataset": "builtins:dict"}}, "task.dataset", "builtins:dict"),
    ({"objectives": [{"name": "builtins:dict"}]}, "objectives[0].name", "builtins:dict"),
    ({"search.operators": {"builtins:dict": 1}}, "search.operators.builtins:dict", "builtins:dict"),
])
def test_a_target_without_a_signature_is_named_at_its_key(tmp_path, change, key, target):
    result = _validate(tmp_path, _with(change))
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert (f"  {key}: " in result.output and f"{target!r} has no inspectable signature; a plugin "
            f"must be a class or function taking keyword options" in result.output), result.output
    assert "no signature found for builtin type" not in result.output  # not inspect's own words


@pytest.mark.parametrize("change, key, words", [
    ({"objectives": [{"name": "val_error"}, {"name": "cfgfailmod:Obj"}]}, "objectives[1]",
     "objective 'cfgfailmod:Obj': building it failed: RuntimeError: ctor boom"),
    ({"search.operators": {"deepen": 1, "cfgfailmod:Op": 2}}, "search.operators.cfgfailmod:Op",
     "operator 'cfgfailmod:Op': building it failed: RuntimeError: op boom"),
    ({"task": {"dataset": "cfgfailmod:task"}}, "task.dataset",
     "task 'cfgfailmod:task': building it failed: ValueError: no such data here"),
    ({"space": {"kind": "cfgfailmod:Space"}}, "space",
     "search space 'cfgfailmod:Space': building it failed: KeyError: 'space boom'"),
])
def test_a_plugin_whose_constructor_raises_is_a_config_error(tmp_path, failmod, change, key, words):
    result = _validate(tmp_path, _with(change))
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert f"  {key}: {words}\n" in result.output, result.output


def test_parse_reports_a_failing_objective_plugin_at_its_entry(failmod):
    data = _with({"objectives": [{"name": "val_error"}, {"name": "cfgfailmod:Obj"}]})
    with pytest.raises(ConfigError) as info:
        parse(data)
    assert dict(info.value.issues)["objectives[1]"] == (
        "objective 'cfgfailmod:Obj': building it failed: RuntimeError: ctor boom")


def test_only_a_users_factory_is_wrapped(failmod):
    # the same failing class, once as the package's own entry and once as a user's target
    registry = Registry("thing", {"own": "cfgfailmod:Obj"})
    with pytest.raises(RuntimeError, match="ctor boom"):  # a bug in the package shows as itself
        registry.build("own")
    with pytest.raises(ValueError, match=r"^thing 'cfgfailmod:Obj': building it failed: "
                                         r"RuntimeError: ctor boom$") as info:
        registry.build("cfgfailmod:Obj")
    assert isinstance(info.value.__cause__, RuntimeError)  # the user's traceback is kept for them
    registry.add("alias", "cfgfailmod:Obj")  # a name standing for a user's target names both
    with pytest.raises(ValueError, match=r"^thing 'alias' \('cfgfailmod:Obj'\): building it failed"):
        registry.build("alias")
