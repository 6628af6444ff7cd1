"""Run configs: YAML read with ``yaml.safe_load``, overridden with ``--set key.path=value``,
validated by a pydantic schema and then against the registries, so every mistake is reported
before anything runs, with its dotted key path and what is allowed.
"""

from __future__ import annotations

import copy
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal, Sequence

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

__all__ = ["ConfigError", "RunConfig", "diff", "load", "parse", "quickstart"]

SELECTIONS = ("nsga2", "nsga3", "spea2", "sms-emoa", "lemonade", "aging")


class ConfigError(Exception):
    """Everything wrong with a config, as (dotted key path, message) pairs."""

    def __init__(self, issues: list[tuple[str, str]]):
        self.issues = issues
        super().__init__("\n".join(f"{path}: {message}" for path, message in issues))


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class _Open(BaseModel):
    """A section whose extra keys are the options of a named thing (checked against it later)."""

    model_config = ConfigDict(extra="allow")

    def options(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class TaskConfig(_Open):
    dataset: str = "digits"


class SpaceConfig(_Open):
    kind: str = "chain"


class ObjectiveConfig(_Open):
    name: str


class EarlyRanking(_Strict):
    rungs: list[int] = Field(min_length=1)
    keep: float = Field(1 / 3, gt=0, le=1)


class TrainingConfig(_Strict):
    epochs: int = Field(8, ge=1)
    batch_size: int = Field(64, ge=1)
    optimizer: Literal["sgd", "adam", "adamw"] = "sgd"
    lr: float = Field(0.05, gt=0)
    momentum: float = Field(0.9, ge=0)
    weight_decay: float = Field(5e-4, ge=0)
    schedule: Literal["cosine", "constant", "step"] = "cosine"
    label_smoothing: float = Field(0.0, ge=0, lt=1)
    timeout_s: float | None = Field(None, gt=0)
    early_ranking: EarlyRanking | None = None
    inherited_lr_scale: float = Field(0.2, gt=0, le=1)  # children with inherited weights
    repair_steps: int = Field(100, ge=0)  # distillation after an approximate morphism


class SearchConfig(_Strict):
    backend: Literal["deap", "pymoo"] = "pymoo"
    selection: Literal["nsga2", "nsga3", "spea2", "sms-emoa", "lemonade", "aging"] = "nsga2"
    population: int = Field(10, ge=2)
    offspring: int = Field(10, ge=1)
    generations: int = Field(5, ge=0)
    max_evaluations: int | None = Field(None, ge=1)
    operators: dict[str, float] = Field(default_factory=lambda: {"deepen": 1.0, "widen": 1.0})
    tournament: int = Field(4, ge=2)  # aging: tournament size
    candidates: int = Field(3, ge=1)  # lemonade: proposals per trained child


class DispatchConfig(_Strict):
    devices: Literal["auto", "cpu"] | list[Annotated[int, Field(ge=0)]] = "cpu"
    workers_per_device: int = Field(1, ge=1)
    threads_per_worker: int = Field(1, ge=1)
    backend: Literal["local", "inline", "dask"] = "local"
    scheduler: str | None = None  # dask: tcp://HOST:PORT
    timeout_s: float | None = Field(None, gt=0)  # an evaluation running longer fails
    retries: int = Field(2, ge=0)  # a job whose worker died runs again on a fresh one


class CheckpointConfig(_Strict):
    keep: int = Field(3, ge=1)  # how many generation checkpoints stay on disk


class RunConfig(_Strict):
    name: str = Field("run", pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    seed: int = Field(0, ge=0)
    task: TaskConfig = Field(default_factory=TaskConfig)
    space: SpaceConfig = Field(default_factory=SpaceConfig)
    search: SearchConfig = Field(default_factory=SearchConfig)
    objectives: list[ObjectiveConfig] = Field(min_length=1)
    training: TrainingConfig = Field(default_factory=TrainingConfig)
    dispatch: DispatchConfig = Field(default_factory=DispatchConfig)
    checkpoints: CheckpointConfig = Field(default_factory=CheckpointConfig)

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


def quickstart() -> dict[str, Any]:
    """The built-in quick start: a few minutes on digits on two CPU cores."""
    text = resources.files("evonas").joinpath("quickstart.yaml").read_text()
    return yaml.safe_load(text)


def load(path: str | Path | None, overrides: Sequence[str] = ()) -> RunConfig:
    """Read a config file (the quick start when ``path`` is None), apply ``key.path=value``
    overrides, and validate it; ``ConfigError`` lists every problem."""
    if path is None:
        data = quickstart()
    else:
        file = Path(path)
        if not file.is_file():
            raise ConfigError([(str(path), "config file does not exist")])
        try:
            data = yaml.safe_load(file.read_text())
        except yaml.YAMLError as exc:
            raise ConfigError([(str(path), f"not valid YAML: {exc}")]) from None
        if not isinstance(data, dict):
            raise ConfigError([(str(path), "a config is a YAML mapping of sections (name, seed, task, ...)")])
    return parse(apply_overrides(data, overrides))


def diff(before: Any, after: Any, ignore: Sequence[str] = (), _at: str = "") -> list[tuple[str, Any, Any]]:
    """The dotted keys whose values differ between two config dicts, with both values; keys
    equal to or under an ``ignore`` entry (a trailing dot means the whole section) are skipped."""
    if any(_at == i or (i.endswith(".") and _at.startswith(i)) for i in ignore):
        return []
    if isinstance(before, dict) and isinstance(after, dict):
        found = []
        for key in list(before) + [k for k in after if k not in before]:
            found += diff(before.get(key), after.get(key), ignore, f"{_at}.{key}" if _at else key)
        return found
    return [] if before == after else [(_at, before, after)]


def apply_overrides(data: dict[str, Any], overrides: Sequence[str]) -> dict[str, Any]:
    """``search.population=32`` sets ``data["search"]["population"] = 32`` (values read as YAML)."""
    data = copy.deepcopy(data)
    for item in overrides:
        key, sep, text = item.partition("=")
        if not sep or not key or any(not part for part in key.split(".")):
            raise ConfigError([(item, "an override is key.path=value, e.g. search.population=32")])
        try:
            value = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ConfigError([(key, f"value {text!r} is not valid YAML: {exc}")]) from None
        node = data
        parts = key.split(".")
        for part in parts[:-1]:
            if not isinstance(node.get(part, {}), dict):
                raise ConfigError([(key, f"{part!r} is not a section")])
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return data


def parse(data: Any) -> RunConfig:
    """Validate a config mapping: the schema first, then names against the registries."""
    try:
        config = RunConfig.model_validate(data)
    except ValidationError as exc:
        merged: dict[str, list[str]] = {}  # a union reports each alternative: one line per key
        for path, message in (_issue(e) for e in exc.errors()):
            merged.setdefault(path, []).append(message)
        raise ConfigError([(p, "; or ".join(m)) for p, m in merged.items()]) from None
    issues = _check_names(config)
    if issues:
        raise ConfigError(issues)
    return config


def _path(loc: Sequence[Any]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "config"


def _issue(error: dict) -> tuple[str, str]:
    # keep keys and list indices; drop pydantic's tags for union members ("list[int]", ...)
    loc = [p for p in error["loc"] if isinstance(p, int) or p.isidentifier()]
    path = _path(loc)
    kind = error["type"]
    if kind == "extra_forbidden":
        return path, f"unknown key; allowed: {_allowed(loc[:-1])}"
    if kind == "value_error":
        return path, str(error["msg"]).removeprefix("Value error, ")
    given = error.get("input")
    shown = "" if kind == "missing" or isinstance(given, dict) else f" (got {given!r})"
    return path, f"{error['msg']}{shown}"


def _allowed(loc: Sequence[Any]) -> list[str]:
    model: Any = RunConfig
    for part in loc:
        if isinstance(part, int):
            continue
        field = model.model_fields.get(part)
        if field is None:
            return []
        annotation = field.annotation
        args = getattr(annotation, "__args__", ())
        model = next((a for a in (annotation, *args) if isinstance(a, type) and issubclass(a, BaseModel)),
                     None)
        if model is None:
            return []
    return list(model.model_fields)


def _check_names(config: RunConfig) -> list[tuple[str, str]]:
    """Names the schema cannot know: tasks, spaces, objectives, operators, and their options."""
    import objectives
    import operators
    from genomes import spaces
    from genomes.registry import option_names
    from objectives import tasks

    issues: list[tuple[str, str]] = []
    if config.task.dataset not in tasks.names():
        issues.append(("task.dataset", f"unknown task {config.task.dataset!r}; known: {tasks.names()}"))
    else:
        allowed = [o for o in option_names(tasks._REGISTRY.load(config.task.dataset)) if o != "seed"]
        for key in config.task.options():
            if key not in allowed:
                why = "the task uses the run's seed; set seed at the top level" if key == "seed" else \
                    f"unknown option for task {config.task.dataset!r}; allowed: {allowed}"
                issues.append((f"task.{key}", why))
    if config.space.kind not in spaces.names():
        issues.append(("space.kind", f"unknown search space {config.space.kind!r}; known: {spaces.names()}"))
    else:
        allowed = [o for o in option_names(spaces.space_class(config.space.kind))
                   if o not in ("input_shape", "num_outputs")]
        for key in config.space.options():
            if key not in allowed:
                issues.append((f"space.{key}", f"unknown option for space {config.space.kind!r}; "
                                               f"allowed: {allowed}"))
    keys = []
    for i, item in enumerate(config.objectives):
        where = f"objectives[{i}]"
        if item.name not in objectives.names():
            issues.append((f"{where}.name", f"unknown objective {item.name!r}; known: "
                                            f"{objectives.names(selectable=True)}"))
            continue
        try:
            objectives.require_selectable(item.name)
            obj = objectives.get(item.name, **item.options())
        except ValueError as exc:
            issues.append((_option_path(where, str(exc)), str(exc)))
            continue
        if obj.key in keys:
            issues.append((where, f"a second objective recorded as {obj.key!r}; each needs its own key"))
        keys.append(obj.key)
    known = operators.names()
    if not config.search.operators:
        issues.append(("search.operators", f"name at least one operator; known: {known}"))
    for name, weight in config.search.operators.items():
        if name not in known:
            issues.append((f"search.operators.{name}", f"unknown operator; known: {known}"))
        elif not weight > 0:
            issues.append((f"search.operators.{name}", f"weight must be > 0, got {weight!r}"))
    n_obj = len(config.objectives)
    if config.search.selection in ("nsga3", "sms-emoa") and n_obj < 2:
        issues.append(("search.selection", f"{config.search.selection} needs at least two objectives, "
                                           f"the config has {n_obj}"))
    if config.search.selection == "lemonade" and not issues:
        cheap = [o.name for o in config.objectives if objectives.get(o.name, **o.options()).cost == "cheap"]
        if not cheap:
            issues.append(("search.selection", "lemonade samples by density over cheap objectives "
                                               "(params, flops, latency_lut, ...); the config has none"))
    er = config.training.early_ranking
    if er is not None and (er.rungs != sorted(set(er.rungs)) or er.rungs[0] < 1
                           or er.rungs[-1] != config.training.epochs):
        issues.append(("training.early_ranking.rungs", f"must be increasing positive epochs ending at "
                                                       f"training.epochs ({config.training.epochs}), "
                                                       f"got {er.rungs}"))
    devices = config.dispatch.devices
    if isinstance(devices, list) and len(set(devices)) != len(devices):
        issues.append(("dispatch.devices", f"GPU ids must differ, got {devices}; use "
                                           f"dispatch.workers_per_device for more workers per GPU"))
    if config.dispatch.backend == "dask" and not (config.dispatch.scheduler or "").startswith(
            ("tcp://", "tls://", "inproc://", "ws://", "wss://", "ucx://")):
        issues.append(("dispatch.scheduler", f"the dask back-end needs the scheduler's address, "
                                             f"e.g. tcp://HOST:8786; got {config.dispatch.scheduler!r}"))
    return issues


def _option_path(where: str, message: str) -> str:
    import re

    found = re.search(r"option '([A-Za-z_]+)'", message)
    if found:
        return f"{where}.{found.group(1)}"
    return f"{where}.name" if "reported only" in message else where
