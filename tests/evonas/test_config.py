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
    ("space option of the wrong type", _with(space__max_blocks="3"), "space.max_blocks", "must be an int"),
    ("objective option of the wrong type", _with(objectives__1={"name": "latency", "repeats": "30"}),
     "objectives[1].repeats", "must be an int"),
    ("float as a count", _with(search__population=8.5), "search.population", "integer"),
    # operators in the long form {name: {weight: w, <option>: <value>}}
    ("unknown operator option", _with(search__operators={"mutate": {"weight": 2, "rate": 0.1}}),
     "search.operators.mutate.rate", "unknown option 'rate' for operator 'mutate'; it takes no options"),
    ("operator option without a weight", _with(search__operators={"deepen": {"rate": 0.1}}),
     "search.operators.deepen.rate", "unknown option"),
    ("operator entry as a list", _with(search__operators={"deepen": [1]}), "search.operators.deepen",
     "its weight (a number) or a mapping"),
    ("operator entry as a bool", _with(search__operators={"deepen": True}), "search.operators.deepen",
     "true and false are not numbers"),
    ("zero weight in the long form", _with(search__operators={"deepen": {"weight": 0}}),
     "search.operators.deepen.weight", "> 0"),
    ("bool weight in the long form", _with(search__operators={"deepen": {"weight": True}}),
     "search.operators.deepen.weight", "true and false are not numbers"),
    ("unknown operator in the long form", _with(search__operators={"teleport": {"weight": 1}}),
     "search.operators.teleport", "deepen"),
    ("odd operator option name", _with(search__operators={"deepen": {"my-rate": 1}}),
     "search.operators.deepen.'my-rate'", "a word"),
    # budgets beside generations and max_evaluations
    ("zero seconds", _with(search__max_seconds=0), "search.max_seconds", "greater than 0"),
    ("negative seconds", _with(search__max_seconds=-5), "search.max_seconds", "greater than 0"),
    ("seconds as a bool", _with(search__max_seconds=True), "search.max_seconds",
     "true and false are not numbers"),
    ("seconds as a word", _with(search__max_seconds="long"), "search.max_seconds", "number"),
    ("zero epochs budget", _with(search__max_epochs=0), "search.max_epochs", "greater than or equal to 1"),
    ("fractional epochs budget", _with(search__max_epochs=2.5), "search.max_epochs", "integer"),
    ("epochs budget as a bool", _with(search__max_epochs=True), "search.max_epochs",
     "true and false are not numbers"),
]

INF, NAN = float("inf"), float("nan")
_SYNTHETIC = {"dataset": "synthetic"}

# Issue 11, 3.6: options are type-checked through the registries' signatures, numbers must be
# finite everywhere, and sizes have upper bounds; each of these passed validate (or ended in a
# traceback) before.
HARDENING = [
    ("fraction read by YAML as text", _with(task__fraction="1e-3"), "task.fraction",
     "must be a number, got '1e-3' (a string; YAML reads 1e-3 as text, write 0.001 or 1.0e-3)"),
    ("val_fraction as a list", _with(task__val_fraction=[0.2]), "task.val_fraction", "must be a number"),
    ("val_fraction as a string", _with(task__val_fraction="0.2"), "task.val_fraction", "without quotes"),
    ("standardize: maybe", _with(task__standardize="maybe"), "task.standardize", "true or false"),
    ("npz path as a number", _with(task={"dataset": "npz", "path": 5}), "task.path", "must be a string"),
    ("npz path as a list", _with(task={"dataset": "npz", "path": ["a.npz"]}), "task.path",
     "must be a string"),
    ("npz num_classes as a float", _with(task={"dataset": "npz", "path": "x.npz", "num_classes": 2.5}),
     "task.num_classes", "must be an int or null"),
    ("samples as a float", _with(task={**_SYNTHETIC, "samples": 240.5}), "task.samples", "must be an int"),
    ("samples as YAML text", _with(task={**_SYNTHETIC, "samples": "1e3"}), "task.samples", "write 1000"),
    ("num_classes as a string", _with(task={**_SYNTHETIC, "num_classes": "3"}), "task.num_classes",
     "must be an int"),
    ("num_classes as a bool", _with(task={**_SYNTHETIC, "num_classes": True}), "task.num_classes",
     "true and false are not numbers"),
    ("noise as a list", _with(task={**_SYNTHETIC, "noise": [1]}), "task.noise", "must be a number"),
    ("noise NaN", _with(task={**_SYNTHETIC, "noise": NAN}), "task.noise", "NaN and infinities"),
    ("input_shape of floats", _with(task={**_SYNTHETIC, "input_shape": [1, 8.0, 8]}), "task.input_shape",
     "list of ints"),
    ("infinite dispatch time-out", _with(dispatch__timeout_s=INF), "dispatch.timeout_s", "finite number"),
    ("infinite training time-out", _with(training__timeout_s=INF), "training.timeout_s", "finite number"),
    ("infinite learning rate", _with(training__lr=INF), "training.lr", "finite number"),
    ("NaN momentum", _with(training__momentum=NAN), "training.momentum", "finite number"),
    ("NaN operator weight", _with(search__operators={"deepen": NAN}), "search.operators.deepen",
     "finite number"),
    ("huge operator weight", _with(search__operators={"deepen": 1e300, "widen": 1e300}),
     "search.operators.deepen", "<= 1e+06"),
    ("NaN keep", _with(training__early_ranking={"rungs": [2, 8], "keep": NAN}),
     "training.early_ranking.keep", "finite number"),
    ("NaN time penalty", _with(objectives__0={"name": "val_error", "time_penalty": NAN}),
     "objectives[0].time_penalty", "NaN"),
    ("infinite time penalty", _with(objectives__0={"name": "val_error", "time_penalty": INF}),
     "objectives[0].time_penalty", "NaN and infinities"),
    ("bool as a count", _with(dispatch__retries=True), "dispatch.retries", "true and false are not numbers"),
    ("bool as a number", _with(training__lr=True), "training.lr", "true and false are not numbers"),
    ("huge population", _with(search__population=10**8), "search.population", "less than or equal to 10000"),
    ("huge offspring", _with(search__offspring=10**8), "search.offspring", "less than or equal to 10000"),
    ("huge generations", _with(search__generations=10**9), "search.generations", "less than or equal"),
    ("huge candidates", _with(search__candidates=10**6), "search.candidates", "less than or equal to 100"),
    ("huge tournament", _with(search__tournament=10**6), "search.tournament", "less than or equal to 1000"),
    ("huge max_evaluations", _with(search__max_evaluations=10**12), "search.max_evaluations", "less than"),
    ("infinite seconds", _with(search__max_seconds=INF), "search.max_seconds", "finite number"),
    ("NaN seconds", _with(search__max_seconds=NAN), "search.max_seconds", "finite number"),
    ("huge seconds", _with(search__max_seconds=1e12), "search.max_seconds", "less than or equal"),
    ("huge epochs budget", _with(search__max_epochs=10**15), "search.max_epochs", "less than or equal"),
    ("NaN weight in the long form", _with(search__operators={"deepen": {"weight": NAN}}),
     "search.operators.deepen.weight", "finite number"),
    ("huge weight in the long form", _with(search__operators={"deepen": {"weight": 1e300}}),
     "search.operators.deepen.weight", "<= 1e+06"),
    ("huge workers", _with(dispatch__workers_per_device=10**6), "dispatch.workers_per_device",
     "less than or equal to 64"),
    ("huge threads", _with(dispatch__threads_per_worker=10**6), "dispatch.threads_per_worker",
     "less than or equal to 256"),
    ("huge retries", _with(dispatch__retries=10**9), "dispatch.retries", "less than or equal to 100"),
    ("huge batch", _with(training__batch_size=10**9), "training.batch_size", "less than or equal to 65536"),
    ("huge epochs", _with(training__epochs=10**9, training__early_ranking=None), "training.epochs",
     "less than or equal to 10000"),
    ("huge repair", _with(training__repair_steps=10**9), "training.repair_steps", "less than or equal"),
    ("huge checkpoint count", _with(checkpoints={"keep": 10**9}), "checkpoints.keep", "less than or equal"),
    ("huge seed", _with(seed=2**70), "seed", "less than or equal"),
    ("huge channels", _with(space__channels=[8, 10**6]), "space.channels", "[1, 4,096]"),
    ("huge blocks", _with(space__max_blocks=10**6), "space.max_blocks", "100"),
    ("huge layers", _with(space={"kind": "chain", "max_layers": 10**6}), "space.max_layers", "100"),
    ("huge cell nodes", _with(space={"kind": "cell", "nodes": 1000}), "space.nodes", "[2, 10]"),
    ("huge cell channels", _with(space={"kind": "cell", "channels": 10**6}), "space.channels", "4,096"),
    ("huge max_params", _with(space__max_params=10**15), "space.max_params", "10,000,000,000"),
    ("huge samples", _with(task={**_SYNTHETIC, "samples": 2_000_000, "input_shape": [1, 2]}),
     "task.samples", "1,000,000"),
    ("huge class count", _with(task={**_SYNTHETIC, "num_classes": 10**9}), "task.num_classes", "100,000"),
    ("huge latency batch", _with(objectives__1={"name": "latency", "batch_size": 10**9}),
     "objectives[1].batch_size", "65,536"),
    ("space that draws no legal genome", _with(space__max_params=10), "space.max_params",
     "cannot draw a legal genome"),
    ("space smaller than the population", _with(space={"kind": "chain", "max_layers": 1, "channels": [8],
                                                       "kernels": [1], "ops": ["conv"], "hidden": [0],
                                                       "pool_prob": 0}),
     "search.population", "distinct"),
    ("dask security without tls", _with(dispatch__backend="dask", dispatch__scheduler="tcp://h:8786",
                                        dispatch__security={"ca_file": __file__, "client_cert": __file__}),
     "dispatch.security", "tls://"),
    ("dask security file missing", _with(dispatch__scheduler="tls://h:8786",
                                         dispatch__security={"ca_file": "/nowhere/ca.pem",
                                                             "client_cert": __file__}),
     "dispatch.security.ca_file", "does not exist"),
]


@pytest.mark.parametrize("case", CASES + HARDENING, ids=[c[0] for c in CASES + HARDENING])
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


def test_operators_in_the_short_and_the_long_form():
    config = parse(_with(search__operators={"deepen": 2, "widen": {"weight": 3}, "mutate": {}}))
    assert config.search.operator_specs() == {"deepen": (2.0, {}), "widen": (3.0, {}), "mutate": (1.0, {})}
    # an entry without options is a plain weight, in the config and in what is written
    assert config.search.operators == {"deepen": 2.0, "widen": 3.0, "mutate": 1.0}
    assert config.to_dict()["search"]["operators"] == {"deepen": 2.0, "widen": 3.0, "mutate": 1.0}
    assert parse(config.to_dict()) == config
    assert parse(quickstart()).search.operator_specs()["widen_kernel"] == (0.5, {})


@pytest.fixture
def rate_option(monkeypatch):
    """``mutate`` taking a ``rate`` in [0, 1] (no operator declares an option yet)."""
    import operators

    real = operators.get

    def get(name, /, **options):
        if name == "mutate" and set(options) <= {"rate"}:
            if not 0 <= options.get("rate", 0.5) <= 1:
                raise ValueError(f"option 'rate' must be in [0, 1], got {options['rate']}")
            return real(name)
        return real(name, **options)

    monkeypatch.setattr(operators, "get", get)


def test_operator_options_are_kept_checked_and_round_trip(rate_option, tmp_path):
    config = parse(_with(search__operators={"deepen": 1, "mutate": {"rate": 0.25}}))
    assert config.search.operator_specs() == {"deepen": (1.0, {}), "mutate": (1.0, {"rate": 0.25})}
    written = config.to_dict()
    assert written["search"]["operators"] == {"deepen": 1.0, "mutate": {"weight": 1.0, "rate": 0.25}}
    assert parse(written) == config
    assert parse(yaml.safe_load(yaml.safe_dump(written))).search.operator_specs() \
        == config.search.operator_specs()
    with pytest.raises(ConfigError) as info:
        parse(_with(search__operators={"mutate": {"weight": 2, "rate": 5}}))
    assert info.value.issues == [("search.operators.mutate.rate", "must be in [0, 1], got 5")]
    # overrides reach an option of an entry in the long form
    loaded = load(None, ["search.operators.mutate={weight: 2, rate: 0.5}",
                         "search.operators.mutate.rate=0.75"])
    assert loaded.search.operator_specs()["mutate"] == (2.0, {"rate": 0.75})


def test_overrides_of_operator_weights():
    config = load(None, ["search.operators.mutate=2", "search.operators.crossover=0.5",
                         "search.operators.random.weight=3"])
    specs = config.search.operator_specs()
    assert specs["mutate"] == (2.0, {}) and specs["crossover"] == (0.5, {}) and specs["random"] == (3.0, {})
    assert config.search.operators["mutate"] == 2.0  # what the engine reads today
    whole = load(None, ["search.operators={deepen: {weight: 2}, widen: 1}"])
    assert whole.search.operator_specs() == {"deepen": (2.0, {}), "widen": (1.0, {})}
    result = CliRunner().invoke(main, ["validate", str(ROOT / "runs/quickstart.yaml"),
                                       "--set", "search.operators.shrink={weight: 1, depth: 2}"])
    assert result.exit_code == 2 and "search.operators.shrink.depth:" in result.output, result.output
    assert "Traceback" not in result.output
    result = CliRunner().invoke(main, ["validate", str(ROOT / "runs/quickstart.yaml"),
                                       "--set", "search.operators.mutate=0"])
    assert result.exit_code == 2 and "search.operators.mutate: weight must be > 0" in result.output


def test_budgets_are_read_and_written():
    config = parse(_with(search__max_seconds=600, search__max_epochs=400))
    assert config.search.max_seconds == 600.0 and config.search.max_epochs == 400
    assert parse(config.to_dict()) == config
    default = parse(quickstart()).search
    assert default.max_seconds is None and default.max_epochs is None


def test_validate_prints_what_the_config_plans_to_spend(tmp_path):
    quick = str(ROOT / "runs/quickstart.yaml")
    # 8 x 8 epochs, then 6 generations of 8 children x 2 epochs + 4 of them x 6 more
    result = CliRunner().invoke(main, ["validate", quick])
    assert result.exit_code == 0, result.output
    assert "# budget: plans 56 evaluations, 304 training epochs (at most)" in result.output
    assert "stops after" not in result.output
    timed = CliRunner().invoke(main, ["validate", quick, "--set", "search.max_seconds=600",
                                      "--set", "search.max_epochs=100",
                                      "--set", "search.max_evaluations=20"])
    assert timed.exit_code == 0, timed.output
    assert "plans 20 evaluations, 100 training epochs (at most)" in timed.output
    assert "search.max_evaluations (20) binds" in timed.output
    assert "search.max_epochs (100) binds" in timed.output
    assert "stops at the first generation end past 600 s" in timed.output
    cheap = CliRunner().invoke(main, ["validate", quick, "--set", "objectives=[{name: params}]"])
    assert cheap.exit_code == 0 and "plans 56 evaluations, no training" in cheap.output, cheap.output
