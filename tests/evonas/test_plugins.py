"""Bring your own (issue 15): a user's objective, task, space or operator named in a config as
``package.module:Name`` or through a Python entry point, imported from outside the package; the
clear errors when it cannot be; and reading such a run never imports it."""

from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

import evonas
import objectives
import operators
from evonas.cli import main
from evonas.config import ConfigError, parse
from evonas.store import journal
from evonas.store.rundir import RunDirError
from genomes import spaces
from objectives import tasks

# A user's module: a class and a factory function for objectives, an expensive objective read
# from the learning curve, a task, a space and an operator; each is a plain module-level name.
PLUGIN = textwrap.dedent('''
    import numpy as np
    from genomes.spaces.chain import ChainSpace
    from objectives import Objective
    from objectives.tasks import prepare
    from operators import Operator

    class Depth(Objective):
        """The number of nodes, scaled."""
        name, direction = "depth", "min"

        def __init__(self, *, weight: float = 1.0):
            self.weight = weight

        def measure(self, ctx):
            return self.weight * len(ctx.genome)

    def depth(*, weight: float = 1.0) -> Depth:
        return Depth(weight=weight)

    class LastLoss(Objective):
        """The last epoch's training loss (read in the worker, after training)."""
        name, direction, cost = "last_loss", "min", "expensive"

        def measure(self, ctx):
            return ctx.curve[-1].train_loss

    def blobs(*, seed: int = 0, samples: int = 120):
        rng = np.random.default_rng(seed)
        y = np.arange(samples) % 3
        x = rng.normal(size=(samples, 1, 6, 6)) + y[:, None, None, None]
        return prepare("blobs", x, y, seed=seed)

    class Narrow(ChainSpace):
        def __init__(self, *, input_shape, num_outputs, max_layers: int = 2):
            super().__init__(input_shape=input_shape, num_outputs=num_outputs,
                             max_layers=max_layers, channels=(4,), kernels=(3,), hidden=(0,))

    class Fresh(Operator):
        name, exact, arity = "fresh", False, 0
        needs_weights = False

        def _fresh(self, space, rng, weights):
            return space.sample(rng), None, "a fresh draw"

    def not_an_objective() -> int:
        return 3
''')

SMALL = {"name": "plugins", "seed": 1, "task": {"dataset": "digits", "fraction": 0.2},
         "space": {"kind": "chain", "channels": [4], "max_layers": 2},
         "search": {"population": 3, "offspring": 3, "generations": 1, "operators": {"mutate": 1}},
         "objectives": [{"name": "val_error"}], "training": {"epochs": 1},
         "dispatch": {"backend": "inline"}}


def _module(folder: Path, name: str, text: str = PLUGIN) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.py").write_text(text)


@pytest.fixture
def plugmod(tmp_path, monkeypatch):
    """The user's module ``plugmod`` in a folder of its own, on sys.path for this test only."""
    _module(tmp_path / "user", "plugmod")
    monkeypatch.syspath_prepend(str(tmp_path / "user"))
    yield "plugmod"
    sys.modules.pop("plugmod", None)


@pytest.fixture(scope="module")
def plugin_run(tmp_path_factory):
    """A run whose objectives are a user's factory function (cheap) and class (expensive)."""
    root = tmp_path_factory.mktemp("plugin_run")
    _module(root / "user", "plugrun")
    with pytest.MonkeyPatch.context() as mp:
        mp.syspath_prepend(str(root / "user"))
        config = {**SMALL, "objectives": [{"name": "val_error"},
                                          {"name": "plugrun:depth", "weight": 2.0},
                                          {"name": "plugrun:LastLoss"}]}
        result = evonas.run(config, run_dir=root / "run", quiet=True)
    sys.modules.pop("plugrun", None)
    return root, result


def _lines(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "journal.jsonl").read_text().splitlines()]


def _set_directions(run: Path, directions: dict[str, str] | None) -> None:
    """Write the journal's started line with (or, for None, without) the objectives'
    directions, as an engine that records them does (and an older one does not)."""
    path = run / "journal.jsonl"
    raw = path.read_bytes().splitlines()
    first = json.loads(raw[0])
    assert first["event"] == "started"
    first.pop("directions", None)
    if directions is not None:
        first["directions"] = directions
    path.write_bytes(b"\n".join([journal.encode(first), *raw[1:]]) + b"\n")


def test_a_users_objectives_reach_the_journal_and_the_front(plugin_run):
    root, result = plugin_run
    done = [line for line in _lines(root / "run") if line["event"] == "evaluated"]
    assert done
    for line in done:  # the factory's option reached it; the worker measured the curve's loss
        nodes = len(line["genome"]["nodes"])
        assert line["objectives"]["depth"] == 2.0 * nodes
        assert line["objectives"]["last_loss"] == pytest.approx(line["curve"][-1][1])
    assert result.front and all({"val_error", "depth", "last_loss"} <= set(f.record.objectives)
                                for f in result.front)
    front_csv = (root / "run" / "front.csv").read_text().splitlines()
    assert front_csv[0].split(",")[:6] == ["id", "generation", "operator", "val_error", "depth",
                                           "last_loss"]
    by_id = {int(row.split(",")[0]): row.split(",") for row in front_csv[1:]}
    assert sorted(by_id) == sorted(f.id for f in result.front)
    for f in result.front:
        assert float(by_id[f.id][4]) == f.record.objectives["depth"]


def test_reading_a_run_never_imports_the_users_code(plugin_run, tmp_path, monkeypatch):
    root, result = plugin_run
    run = tmp_path / "run"
    import shutil

    shutil.copytree(root / "run", run)
    # the module, if imported now, would leave a mark: reading the run must not import it
    marker = tmp_path / "imported"
    _module(tmp_path / "user", "plugrun", f"open({str(marker)!r}, 'w').close()\n" + PLUGIN)
    monkeypatch.syspath_prepend(str(tmp_path / "user"))
    monkeypatch.delitem(sys.modules, "plugrun", raising=False)

    _set_directions(run, None)  # a run that does not say which way its own objectives go
    with pytest.raises(RunDirError, match=r"objectives\[1\]: 'plugrun:depth' is a user's own "
                                          r"objective and the run does not record its direction"):
        evonas.load(run)
    out = CliRunner().invoke(main, ["front", str(run)])
    assert out.exit_code == 2 and "Traceback" not in out.output

    _set_directions(run, {"val_error": "min", "depth": "min", "last_loss": "min"})
    view = evonas.load(run)
    assert sorted(e.id for e in view.front()) == sorted(f.id for f in result.front)
    out = CliRunner().invoke(main, ["front", str(run), "--format", "json"])
    assert out.exit_code == 0, out.output
    assert sorted(r["id"] for r in json.loads(out.output)) == sorted(f.id for f in result.front)
    assert not marker.exists() and "plugrun" not in sys.modules


def test_an_entry_point_names_an_objective_and_an_operator(tmp_path, monkeypatch):
    site = tmp_path / "site"
    _module(site, "epmod")
    info = site / "epmod-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: epmod\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[evonas.objectives]\ndepth_ep = epmod:Depth\n\n"
                                           "[evonas.operators]\nfresh_ep = epmod:Fresh\n\n"
                                           "[evonas.tasks]\nblobs_ep = epmod:blobs\n\n"
                                           "[evonas.spaces]\nnarrow_ep = epmod:Narrow\n")
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.delitem(sys.modules, "epmod", raising=False)
    assert "depth_ep" in objectives.names() and "fresh_ep" in operators.names()
    assert "blobs_ep" in tasks.names() and "narrow_ep" in spaces.names()
    assert "epmod" not in sys.modules  # listing names imports nothing
    # cheap objectives only: nothing trains, so the run takes a moment
    config = {**SMALL, "task": {"dataset": "blobs_ep", "samples": 90},
              "space": {"kind": "narrow_ep"},
              "search": {**SMALL["search"], "generations": 2, "operators": {"fresh_ep": 1}},
              "objectives": [{"name": "params"}, {"name": "depth_ep", "weight": 0.5}]}
    result = evonas.run(config, run_dir=None, quiet=True)
    assert len(result.individuals) == 9
    assert all(i.record.objectives["depth"] == 0.5 * len(i.genome) for i in result.individuals)
    assert {i.operator for i in result.individuals if i.generation > 0} == {"fresh_ep"}
    assert result.front
    sys.modules.pop("epmod", None)


def _issues(config: dict) -> dict[str, str]:
    with pytest.raises(ConfigError) as info:
        parse(config)
    return dict(info.value.issues)


@pytest.mark.parametrize("change, key, words", [
    ({"objectives": [{"name": "val_error"}, {"name": "no_such_module_xyz:Depth"}]},
     "objectives[1].name", "cannot import module 'no_such_module_xyz': ModuleNotFoundError"),
    ({"objectives": [{"name": "val_error"}, {"name": "plugmod:Nope"}]},
     "objectives[1].name", "module 'plugmod' has no attribute 'Nope'"),
    ({"objectives": [{"name": "val_error"}, {"name": "plugmod:Depth", "wieght": 2}]},
     "objectives[1].wieght", "unknown option for objective 'plugmod:Depth'; allowed: ['weight']"),
    ({"objectives": [{"name": "val_error"}, {"name": "plugmod:Depth", "weight": "heavy"}]},
     "objectives[1].weight", "must be a number, got 'heavy'"),
    ({"objectives": [{"name": "val_error"}, {"name": "plugmod:not_an_objective"}]},
     "objectives[1]", "gave an int, not an Objective"),
    ({"task": {"dataset": "plugmod:missing"}}, "task.dataset", "has no attribute 'missing'"),
    ({"space": {"kind": "no_such_module_xyz.spaces:Big"}}, "space.kind",
     "cannot import module 'no_such_module_xyz.spaces'"),
    ({"search": {"operators": {"plugmod:Absent": 1}}}, "search.operators.plugmod:Absent",
     "module 'plugmod' has no attribute 'Absent'"),
    ({"objectives": [{"name": "val_error"}, {"name": "depth_nowhere"}]}, "objectives[1].name",
     "unknown objective 'depth_nowhere'"),
])
def test_a_plugin_that_cannot_be_used_is_a_config_error_naming_key_and_target(plugmod, change, key,
                                                                             words):
    issues = _issues({**SMALL, **change})
    assert key in issues, issues
    assert words in issues[key]


def test_a_module_that_fails_on_import_is_named_with_its_error(tmp_path, monkeypatch):
    _module(tmp_path, "brokenmod", "raise RuntimeError('no GPU here')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    issues = _issues({**SMALL, "objectives": [{"name": "brokenmod:Thing"}]})
    assert issues["objectives[0].name"] == ("objective 'brokenmod:Thing': cannot import module "
                                            "'brokenmod': RuntimeError: no GPU here")


def test_code_inside_a_run_directory_is_never_imported(plugin_run, tmp_path, monkeypatch):
    root, _ = plugin_run
    marker = tmp_path / "imported"
    _module(root / "run", "planted", f"open({str(marker)!r}, 'w').close()\n" + PLUGIN)
    monkeypatch.syspath_prepend(str(root / "run"))
    try:
        issues = _issues({**SMALL, "objectives": [{"name": "planted:Depth"}]})
    finally:
        (root / "run" / "planted.py").unlink()
    assert "is inside the run directory" in issues["objectives[0].name"]
    assert not marker.exists()


def test_the_cli_says_what_is_wrong_with_a_plugin_and_exits_2(tmp_path):
    import yaml

    (tmp_path / "c.yaml").write_text(yaml.safe_dump(
        {**SMALL, "objectives": [{"name": "no_such_module_xyz:Depth"}]}))
    out = CliRunner().invoke(main, ["validate", str(tmp_path / "c.yaml")])
    assert out.exit_code == 2
    assert "objectives[0].name: objective 'no_such_module_xyz:Depth': cannot import module" in out.output
    assert "Traceback" not in out.output
