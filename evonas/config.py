"""Run configs: YAML read with a ``yaml.SafeLoader`` that refuses a key written twice, overridden with ``--set key.path=value``,
validated by a pydantic schema and then against the registries, so every mistake is reported
before anything runs, with its dotted key path and what is allowed.

A config is untrusted input: the file is read up to ``MAX_FILE_BYTES``, a document that nests
deeper than ``MAX_NESTING`` levels or expands (through YAML aliases) to more than
``MAX_EXPANDED`` values and characters is refused before anything walks it, numbers must be
finite, sizes have upper bounds, and error messages echo at most ~200 characters of a value.
"""

from __future__ import annotations

import copy
import importlib.util
import re
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Callable, Literal, Sequence

import yaml
from pydantic import (AfterValidator, BaseModel, BeforeValidator, ConfigDict, Discriminator, Field,
                      Strict, Tag, ValidationError, field_validator)

from genomes.registry import is_target, shown

__all__ = ["MAX_EXPANDED", "MAX_FILE_BYTES", "MAX_NESTING", "ConfigError", "DaskSecurity",
           "LoggingConfig", "OperatorConfig", "RunConfig", "SearchConfig", "diff", "load", "located",
           "parse", "plugins", "quickstart"]

SELECTIONS = ("nsga2", "nsga3", "spea2", "sms-emoa", "lemonade", "aging")
MAX_FILE_BYTES = 1_000_000  # a run config is a few kB
MAX_EXPANDED = 2_000_000  # values and characters, with every YAML alias expanded
MAX_NESTING = 32  # levels of mappings and lists
MAX_WEIGHT = 1e6  # an operator's weight in the mix
MAX_RUN_S = 100_000_000  # search.max_seconds: about three years
MAX_EPOCHS = 10**12  # search.max_epochs: max_evaluations times the most epochs each
_PATH_CHARS, _MESSAGE_CHARS = 200, 2000  # what a ConfigError keeps of a key path and a message


class ConfigError(Exception):
    """Everything wrong with a config, as (dotted key path, message) pairs; each is cut to a
    bounded length, so no input can make an error message large."""

    def __init__(self, issues: list[tuple[str, str]]):
        self.issues = [(_cut(str(path), _PATH_CHARS), _cut(str(message), _MESSAGE_CHARS))
                       for path, message in issues]
        super().__init__("\n".join(f"{path}: {message}" for path, message in self.issues))


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit - 1] + "…"


def _not_bool(value: Any) -> Any:
    if isinstance(value, bool):
        raise ValueError(f"must be a number, got {value!r} (true and false are not numbers)")
    return value


# Schema types: bools are not ints or numbers, ints are numbers, numbers are finite (allow_inf_nan).
Int = Annotated[int, Strict()]
Float = Annotated[float, BeforeValidator(_not_bool)]
Bool = Annotated[bool, Strict()]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)


class _Open(BaseModel):
    """A section whose extra keys are the options of a named thing (checked against it later)."""

    model_config = ConfigDict(extra="allow", allow_inf_nan=False)

    def options(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class TaskConfig(_Open):
    dataset: str = "digits"


class SpaceConfig(_Open):
    kind: str = "chain"


class ObjectiveConfig(_Open):
    name: str


class EarlyRanking(_Strict):
    rungs: list[Int] = Field(min_length=1, max_length=100)
    keep: Float = Field(1 / 3, gt=0, le=1)


MAX_TIMEOUT_S = 10_000_000  # about 16 weeks


class TrainingConfig(_Strict):
    epochs: Int = Field(8, ge=1, le=10_000)
    batch_size: Int = Field(64, ge=1, le=65_536)
    optimizer: Literal["sgd", "adam", "adamw"] = "sgd"
    lr: Float = Field(0.05, gt=0)
    momentum: Float = Field(0.9, ge=0)
    weight_decay: Float = Field(5e-4, ge=0)
    schedule: Literal["cosine", "constant", "step"] = "cosine"
    label_smoothing: Float = Field(0.0, ge=0, lt=1)
    timeout_s: Float | None = Field(None, gt=0, le=MAX_TIMEOUT_S)
    early_ranking: EarlyRanking | None = None
    # the factor on lr for children of exact morphisms (they keep their parent's function)
    inherited_lr_scale: Float = Field(0.2, gt=0, le=1)
    repair_steps: Int = Field(100, ge=0, le=100_000)  # distillation after an approximate morphism


def _weight(value: float) -> float:
    if not 0 < value <= MAX_WEIGHT:
        raise ValueError(f"weight must be > 0 and <= {MAX_WEIGHT:g}, got {shown(value)}")
    return value


Weight = Annotated[Float, AfterValidator(_weight)]


class OperatorConfig(_Open):
    """The long form of a ``search.operators`` entry: its weight in the mix (1.0 when left
    out) and the operator's options, e.g. ``mutate: {weight: 2, <option>: <value>}``."""

    weight: Weight = 1.0


def _operator_form(value: Any) -> str | None:
    if isinstance(value, (dict, BaseModel)):
        return "a mapping"
    return None if isinstance(value, (list, tuple, set)) else "a weight"


# An entry is a weight (the short form) or a mapping; the tags are not identifiers, so no error
# path shows them.
OperatorEntry = Annotated[
    Annotated[Weight, Tag("a weight")] | Annotated[OperatorConfig, Tag("a mapping")],
    Discriminator(_operator_form, custom_error_type="operator_entry",
                  custom_error_message="an operator's entry is its weight (a number) or a mapping "
                                       "{weight: w, <option>: <value>, ...}")]


class PortfolioConfig(_Strict):
    """Operator weights that adapt during the run (``evonas.search.portfolio``): adaptive
    pursuit on each child's hypervolume improvement, from the configured weights."""

    rule: Literal["pursuit"] = "pursuit"
    p_min: Float = Field(0.05, ge=0, lt=1)  # the floor every operator keeps
    alpha: Float = Field(0.2, gt=0, le=1)  # how fast an operator's quality follows its credits
    beta: Float = Field(0.2, gt=0, le=1)  # how fast the weights pursue the best operator


class SearchConfig(_Strict):
    backend: Literal["deap", "pymoo"] = "pymoo"
    selection: Literal["nsga2", "nsga3", "spea2", "sms-emoa", "lemonade", "aging"] = "nsga2"
    population: Int = Field(10, ge=2, le=10_000)
    offspring: Int = Field(10, ge=1, le=10_000)
    generations: Int = Field(5, ge=0, le=100_000)
    max_evaluations: Int | None = Field(None, ge=1, le=1_000_000_000)
    max_seconds: Float | None = Field(None, gt=0, le=MAX_RUN_S)  # wall clock, all sessions
    max_epochs: Int | None = Field(None, ge=1, le=MAX_EPOCHS)  # training epochs, all evaluations
    # a mix of named operators, or "auto": every operator that applies to the space, adapted
    operators: Literal["auto"] | dict[str, OperatorEntry] = Field(
        default_factory=lambda: {"deepen": 1.0, "widen": 1.0})
    portfolio: PortfolioConfig | None = None  # adapt the weights (on by itself with "auto")
    tournament: Int = Field(4, ge=2, le=1_000)  # aging: tournament size
    candidates: Int = Field(3, ge=1, le=100)  # lemonade: proposals per trained child

    @field_validator("operators")
    @classmethod
    def _short_form(cls, value: dict[str, Any] | str) -> dict[str, Any] | str:
        """An entry without options is kept (and written) as its weight alone."""
        if isinstance(value, str):
            return value
        return {name: entry.weight if isinstance(entry, OperatorConfig) and not entry.options()
                else entry for name, entry in value.items()}

    @property
    def adaptive(self) -> PortfolioConfig | None:
        """The portfolio's settings when the weights adapt (``operators: auto`` or a
        ``portfolio`` section), else None."""
        return self.portfolio or (PortfolioConfig() if self.operators == "auto" else None)

    def operator_specs(self, space=None, *, trains: bool = True) -> dict[str, tuple[float, dict[str, Any]]]:
        """Each operator of the mix: name -> (weight, options for ``operators.get``). ``auto``
        needs the ``space`` (and whether the run ``trains``): every operator that applies to
        it, weight 1, default options."""
        if self.operators == "auto":
            if space is None:
                raise ValueError("search.operators is 'auto': the operators depend on the space")
            import operators

            return {name: (1.0, {}) for name in operators.applicable(space, trains=trains)}
        return {name: (float(entry.weight), entry.options()) if isinstance(entry, OperatorConfig)
                else (float(entry), {}) for name, entry in self.operators.items()}


class DaskSecurity(_Strict):
    """TLS for a ``tls://`` dask scheduler (dask's ``Security``): the certificate authority
    that signed the scheduler's certificate, this client's certificate, and its private key
    (None: the key is inside ``client_cert``). Paths may start with ``~``; ``missing()`` names
    those that are not files (checked when a run starts, not when a finished run is read)."""

    ca_file: str = Field(min_length=1, max_length=4096)
    client_cert: str = Field(min_length=1, max_length=4096)
    client_key: str | None = Field(None, min_length=1, max_length=4096)
    require_encryption: Bool = True

    def missing(self) -> list[tuple[str, str]]:
        """(key, message) for each path that does not name an existing file."""
        found = []
        for key in ("ca_file", "client_cert", "client_key"):
            value = getattr(self, key)
            try:
                ok = value is None or Path(value).expanduser().is_file()
            except (OSError, ValueError, RuntimeError):  # too long, a NUL byte, an unknown ~user
                ok = False
            if not ok:
                found.append((key, f"file {shown(value)} does not exist (or is not a file)"))
        return found


class DispatchConfig(_Strict):
    devices: Literal["auto", "cpu"] | Annotated[
        list[Annotated[int, Strict(), Field(ge=0, le=1023)]], Field(max_length=256)] = "cpu"
    workers_per_device: Int = Field(1, ge=1, le=64)
    threads_per_worker: Int = Field(1, ge=1, le=256)
    backend: Literal["local", "inline", "dask"] = "local"
    scheduler: str | None = Field(None, max_length=1024)  # dask: tcp://HOST:PORT
    security: DaskSecurity | None = None  # dask: TLS certificates for a tls:// scheduler
    timeout_s: Float | None = Field(None, gt=0, le=MAX_TIMEOUT_S)  # a longer evaluation fails
    retries: Int = Field(2, ge=0, le=100)  # a job whose worker died runs again on a fresh one


class CheckpointConfig(_Strict):
    keep: Int = Field(3, ge=1, le=1_000)  # how many generation checkpoints stay on disk


class LoggingConfig(_Strict):
    """What a run writes besides its journal: ``tensorboard: true`` adds TensorBoard scalars
    per generation (hypervolume, best value of each objective) under ``<run>/tensorboard/``."""

    tensorboard: Bool = False


class RunConfig(_Strict):
    name: str = Field("run", pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", max_length=128)
    seed: Int = Field(0, ge=0, le=2**63 - 1)
    task: TaskConfig = Field(default_factory=TaskConfig)
    space: SpaceConfig = Field(default_factory=SpaceConfig)
    search: SearchConfig = Field(default_factory=SearchConfig)
    objectives: list[ObjectiveConfig] = Field(min_length=1, max_length=64)
    training: TrainingConfig = Field(default_factory=TrainingConfig)
    dispatch: DispatchConfig = Field(default_factory=DispatchConfig)
    checkpoints: CheckpointConfig = Field(default_factory=CheckpointConfig)
    logging: LoggingConfig = Field(default_factory=LoggingConfig)

    def to_dict(self) -> dict[str, Any]:
        """The config as plain data; ``logging`` is left out while it holds only defaults, so a
        run written before that section existed compares equal."""
        default = self.logging == LoggingConfig()
        return self.model_dump(mode="json", exclude={"logging"} if default else None)


def quickstart() -> dict[str, Any]:
    """The built-in quick start: a few minutes on digits on two CPU cores."""
    text = resources.files("evonas").joinpath("quickstart.yaml").read_text()
    return _yaml(text, "the built-in quick start", "not valid YAML")


def load(path: str | Path | None, overrides: Sequence[str] = (), *,
         names: bool = True) -> RunConfig:
    """Read a config file (the quick start when ``path`` is None), apply ``key.path=value``
    overrides, and validate it; ``ConfigError`` lists every problem. ``names=False`` checks the
    schema only (``parse``)."""
    if path is None:
        data = quickstart()
    else:
        file = Path(path)
        try:
            if not file.is_file():
                raise ConfigError([(str(path), "config file does not exist")])
            with file.open("rb") as f:
                raw = f.read(MAX_FILE_BYTES + 1)
        except (OSError, ValueError) as exc:  # a name too long, a NUL byte, no permission
            raise ConfigError([(str(path), f"cannot be read: "
                                           f"{getattr(exc, 'strerror', None) or exc}")]) from None
        if len(raw) > MAX_FILE_BYTES:
            raise ConfigError([(str(path), f"is larger than {MAX_FILE_BYTES:,} bytes; a run config "
                                           f"is a few kB")])
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ConfigError([(str(path), f"is not UTF-8 text ({exc.reason} at byte "
                                           f"{exc.start})")]) from None
        data = _yaml(text, str(path), "not valid YAML")
        if not isinstance(data, dict):
            raise ConfigError([(str(path), "a config is a YAML mapping of sections (name, seed, task, ...)")])
        if (problem := _too_big(data)) is not None:
            raise ConfigError([problem])
    return parse(apply_overrides(data, overrides), names=names)


class _DuplicateKey(Exception):
    """A mapping at ``path`` (keys and list indices) writes ``key`` twice, at ``lines`` and
    ``columns`` (1-based)."""

    def __init__(self, path: list[str | int], key: Any, lines: tuple[int, int],
                 columns: tuple[int, int]):
        super().__init__(key)
        self.path, self.key, self.lines, self.columns = path, key, lines, columns


class _UniqueKeyLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses a mapping key written twice (plain YAML keeps the last
    one silently, so ``seed: 0`` ... ``seed: 5`` would run with seed 5). A subclass, so PyYAML's
    own loader stays as it is. Keys brought in by a ``<<`` merge may be overridden, as YAML says."""

    def construct_document(self, node: yaml.Node) -> Any:
        _refuse_duplicates(self, node)
        return super().construct_document(node)


_MERGE = "tag:yaml.org,2002:merge"


def _refuse_duplicates(loader: yaml.SafeLoader, root: yaml.Node) -> None:
    """``_DuplicateKey`` for the first mapping of ``root`` that writes a key twice. Walks the
    node graph once (a node shared through aliases is visited once) and without recursion, so
    it costs what the document's size on disk does."""
    seen: set[int] = set()
    stack: list[tuple[yaml.Node, list[Any]]] = [(root, [])]
    while stack:
        node, path = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, yaml.SequenceNode):
            stack.extend((item, [*path, i]) for i, item in reversed(list(enumerate(node.value))))
        elif isinstance(node, yaml.MappingNode):
            first: dict[Any, yaml.Node] = {}
            children = []
            for key_node, value_node in node.value:
                if key_node.tag == _MERGE:  # merged keys may be overridden; the merged ones are checked
                    children.append((value_node, path))
                    continue
                if not isinstance(key_node, yaml.ScalarNode):  # a complex key: never equal here
                    children.append((value_node, [*path, "?"]))
                    continue
                key = loader.construct_object(key_node, deep=True)  # cached for the document
                label = key if isinstance(key, str) else shown(key)  # 7 is a key, not an index
                earlier = first.setdefault(key, key_node)
                if earlier is not key_node:
                    raise _DuplicateKey(path, key, (earlier.start_mark.line + 1,
                                                    key_node.start_mark.line + 1),
                                        (earlier.start_mark.column + 1,
                                         key_node.start_mark.column + 1))
                children.append((value_node, [*path, label]))
            stack.extend(reversed(children))


def _yaml(text: str, where: str, what: str, *, at: str | None = None) -> Any:
    """``text`` read as YAML by a safe loader; anything it raises becomes a ``ConfigError`` at
    ``where``, and a key written twice one at its dotted key path (under ``at``, the key an
    override sets)."""
    loader = _UniqueKeyLoader(text)
    try:
        return loader.get_single_data()
    except _DuplicateKey as exc:
        above = [int(s[1:-1]) if s.startswith("[") else s for s in _STEP.findall(at or "")]
        key = _path([*above, *exc.path, exc.key if isinstance(exc.key, str) else shown(exc.key)])
        (a, b), (c, d) = exc.lines, exc.columns
        place = f"lines {a} and {b}" if a != b else f"line {a}, columns {c} and {d}"
        source = f"the value of --set {at}=..." if at else where
        raise ConfigError([(key, f"key {shown(exc.key)} is written twice in {source} ({place}); "
                                 f"write each key once (YAML would keep only the last)")]) from None
    except yaml.YAMLError as exc:
        raise ConfigError([(where, f"{what}: {exc}")]) from None
    except RecursionError:
        raise ConfigError([(where, f"{what}: nested too deeply")]) from None
    except (ValueError, OverflowError) as exc:  # e.g. a date such as 2024-13-45
        raise ConfigError([(where, f"{what}: {exc}")]) from None
    finally:
        loader.dispose()


class _TooDeep(Exception):
    pass


def _too_big(data: Any) -> tuple[str, str] | None:
    """(key, message) when ``data`` nests deeper than ``MAX_NESTING`` or expands, with YAML
    aliases followed, to more than ``MAX_EXPANDED`` values and characters; None when it fits.
    Shared objects are counted once per use but walked once (memoised), so a "billion laughs"
    document is measured in time proportional to its size on disk."""
    memo: dict[int, int] = {}
    sections = data.items() if isinstance(data, dict) else [("config", data)]
    total = 0
    for key, value in sections:
        where = key if isinstance(key, str) and key.isidentifier() else "config"
        try:
            total += _expanded(key, memo, 1) + _expanded(value, memo, 1)
        except _TooDeep:
            return where, (f"nests deeper than {MAX_NESTING} levels of mappings and lists (or "
                           f"refers to itself through a YAML alias)")
        if total > MAX_EXPANDED:
            return where, (f"expands to more than {MAX_EXPANDED:,} values and characters once its "
                           f"YAML aliases are followed; a run config is a few kB")
    return None


def _expanded(value: Any, memo: dict[int, int], depth: int) -> int:
    if isinstance(value, (str, bytes)):
        return 1 + len(value)
    if not isinstance(value, (dict, list, tuple)):
        return 1
    if (known := memo.get(id(value))) is not None:
        return known
    if depth > MAX_NESTING:
        raise _TooDeep
    items = [x for kv in value.items() for x in kv] if isinstance(value, dict) else value
    size = 1 + sum(_expanded(v, memo, depth + 1) for v in items)
    memo[id(value)] = size
    return size


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


_KEY = re.compile(r"[^.\[\]]+(\[\d+\])*(\.[^.\[\]]+(\[\d+\])*)*")
_STEP = re.compile(r"[^.\[\]]+|\[\d+\]")


def apply_overrides(data: dict[str, Any], overrides: Sequence[str]) -> dict[str, Any]:
    """``search.population=32`` sets ``data["search"]["population"] = 32`` (values read as YAML);
    ``objectives[1].time_penalty=0.01`` reaches into a list; ``search.operators.mutate.weight=2``
    reaches into an operator given by its weight alone."""
    data = copy.deepcopy(data)
    for item in overrides:
        key, sep, text = item.partition("=")
        if not sep or not _KEY.fullmatch(key):
            raise ConfigError([(item, "an override is key.path=value, e.g. search.population=32 "
                                      "or objectives[0].time_penalty=0.01")])
        value = _yaml(text, key, f"value {shown(text)} is not valid YAML", at=key)
        path = [int(s[1:-1]) if s.startswith("[") else s for s in _STEP.findall(key)]
        node: Any = data
        parent: Any = None
        for i, part in enumerate(path):
            above = _path(path[:i])
            if (i == 3 and path[:2] == ["search", "operators"] and isinstance(part, str)
                    and isinstance(node, (int, float)) and not isinstance(node, bool)):
                node = parent[path[2]] = {"weight": node}  # a weight becomes the long form
            if isinstance(part, int) and not (isinstance(node, list) and part < len(node)):
                size = (f"has {len(node)} entr{'y' if len(node) == 1 else 'ies'}"
                        if isinstance(node, list) else "is not a list")
                raise ConfigError([(key, f"{above} {size}; there is no {_path(path[:i + 1])}")])
            if isinstance(part, str) and not isinstance(node, dict):
                raise ConfigError([(key, f"{above} is not a section")])
            if i == len(path) - 1:
                node[part] = value
            else:
                parent = node
                node = node.setdefault(part, {}) if isinstance(part, str) else node[part]
    return data


def parse(data: Any, *, names: bool = True) -> RunConfig:
    """Validate a config mapping: its size first, the schema, then names against the
    registries. ``names=False`` (reading a finished run) skips the names: nothing a config
    names is imported, so a user's plugin named in a run is never run by reading it."""
    if (problem := _too_big(data)) is not None:
        raise ConfigError([problem])
    try:
        config = RunConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_schema_issues(exc.errors(), data)) from None
    issues = _check_names(config) if names else []
    if issues:
        raise ConfigError(issues)
    return config


def _path(loc: Sequence[Any]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "config"


def _schema_issues(errors: list[dict], data: Any) -> list[tuple[str, str]]:
    """(dotted key, message) for pydantic's errors, one line per key (a union reports each
    alternative: they are joined with "or"). Where a union's mapping branch failed inside an
    entry (``search.operators.mutate``), the other branch's complaint about the whole value
    (``Input should be 'auto'``) says nothing and is left out."""
    found = [(*_issue(e, data), e) for e in errors]
    deeper = [path for path, _, _ in found]
    merged: dict[str, list[str]] = {}
    for path, message, error in found:
        if (error["type"] == "literal_error" and isinstance(error.get("input"), (dict, list))
                and any(p.startswith((f"{path}.", f"{path}[")) for p in deeper)):
            continue
        merged.setdefault(path, []).append(message)
    return [(p, "; or ".join(m)) for p, m in merged.items()]


def _real_loc(loc: Sequence[Any], data: Any, *, last: bool) -> list[Any]:
    """The keys and list indices of pydantic's ``loc`` that are in the input ``data``; the rest
    are pydantic's tags for union members (``literal['auto']``, ``dict[str,...]``). ``last``
    keeps the final element even when it is not in the input (a missing key). A mapping's key
    that is not a string is given as its ``shown`` text (so it never reads as a list index)."""
    out, node = [], data
    for i, part in enumerate(loc):
        if isinstance(node, dict) and _has(node, part):
            out.append(part if isinstance(part, str) else shown(part))
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            out.append(part)
            node = node[part]
        elif last and i == len(loc) - 1:
            out.append(part)
    return out


def _has(mapping: dict, key: Any) -> bool:
    try:
        return key in mapping
    except TypeError:
        return False


def _issue(error: dict, data: Any) -> tuple[str, str]:
    kind = error["type"]
    if kind == "extra_forbidden":  # the last element is the key itself, whatever its spelling
        key = error["loc"][-1]
        parents = _real_loc(error["loc"][:-1], data, last=False)
        named = key if isinstance(key, str) and key.isidentifier() else shown(key)
        return (f"{_path(parents)}.{named}" if parents else named,
                f"unknown key; allowed: {_allowed(parents)}")
    loc = _real_loc(error["loc"], data, last=kind == "missing")
    path = _path(loc)
    if kind == "value_error":
        return path, str(error["msg"]).removeprefix("Value error, ")
    given = error.get("input")
    if kind == "model_type":  # pydantic names the schema's class; the config knows a mapping
        if len(loc) == 2 and loc[0] == "objectives" and isinstance(given, str):
            return path, (f"an objective is a mapping: write {{name: {_cut(given, 100)}}} "
                          f"(and its options), got {shown(given)}")
        return path, f"must be a mapping of keys, got {shown(given)}"
    echo = "" if kind == "missing" or isinstance(given, dict) else f" (got {shown(given)})"
    return path, f"{error['msg']}{echo}{_schema_hint(kind, given)}{_colon_hint(loc, given)}"


def _colon_hint(loc: Sequence[Any], given: Any) -> str:
    """``{mutate:1}`` is one key ``mutate:1`` with no value in YAML (a colon needs a space after
    it to separate a key from its value)."""
    key = loc[-1] if loc else None
    if given is not None or not isinstance(key, str) or is_target(key):
        return ""
    found = re.fullmatch(r"([^:\s]+):(\S+)", key)
    if found is None:
        return ""
    return (f"; YAML read {shown(key)} as one key with no value: put a space after the colon "
            f"({found.group(1)}: {found.group(2)})")


def _schema_hint(kind: str, given: Any) -> str:
    if isinstance(given, bool) and kind.startswith(("int", "float")):
        return "; true and false are not numbers"
    if isinstance(given, str) and kind.startswith("int"):
        try:
            number = float(given)
        except ValueError:
            return ""
        if number.is_integer() and len(given) <= 40:
            return f"; a string: write {int(number)} without quotes"
    return ""


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
    """Names the schema cannot know: tasks, spaces, objectives, operators, and their options.
    A user's own (``package.module:Name`` or an entry point) is imported here, once its module
    is found outside every run directory."""
    import objectives
    import objectives.base
    import operators
    from genomes import spaces
    from objectives import tasks

    issues: list[tuple[str, str]] = []
    factory = _factory(tasks._REGISTRY, config.task.dataset, "task.dataset", issues)
    if factory is not None:
        issues += _option_issues("task", f"task {config.task.dataset!r}", factory,
                                 config.task.options(),
                                 hidden={"seed": "the task uses the run's seed; set seed at the top "
                                                 "level"})
    factory = _factory(spaces._REGISTRY, config.space.kind, "space.kind", issues)
    if factory is not None:
        issues += _option_issues("space", f"space {config.space.kind!r}", factory,
                                 config.space.options(),
                                 hidden={k: "set by the task, not the config"
                                         for k in ("input_shape", "num_outputs")})
    keys, built = [], []
    for i, item in enumerate(config.objectives):
        where = f"objectives[{i}]"
        factory = _factory(objectives.base._REGISTRY, item.name, f"{where}.name", issues,
                           known=lambda: objectives.names(selectable=True))
        if factory is None:
            continue
        try:
            objectives.require_selectable(item.name)
        except ValueError as exc:
            issues.append((f"{where}.name", str(exc)))
            continue
        found = _option_issues(where, f"objective {item.name!r}", factory, item.options())
        if found:
            issues += found
            continue
        try:
            obj = objectives.get(item.name, **item.options())
        except ValueError as exc:
            issues.append(located(where, str(exc)))
            continue
        if not getattr(obj, "selectable", True):  # a user's factory that builds test_accuracy
            issues.append((f"{where}.name", f"{item.name!r} builds a report-only measure "
                                            f"({obj.key!r}); it can never be an objective"))
            continue
        if obj.key in keys:
            issues.append((where, f"a second objective recorded as {obj.key!r}; each needs its own key"))
        keys.append(obj.key)
        built.append(obj)
    known = operators.names()
    auto = config.search.operators == "auto"
    if not config.search.operators:
        issues.append(("search.operators", f"name at least one operator; known: {known}"))
    for name, (weight, options) in ({} if auto else config.search.operator_specs()).items():
        where = f"search.operators.{name}"
        if name not in known and name not in operators._OTHERS:
            issues.append((where, f"unknown operator; known: {known}, or your own as "
                                  f"'package.module:Class'"))
        elif not 0 < weight <= MAX_WEIGHT:  # the schema checks it too; kept for built configs
            issues.append((where, f"weight must be > 0 and <= {MAX_WEIGHT:g}, got {shown(weight)}"))
        elif (problem := _outside_runs(operators._OTHERS.plugin(name))) is not None:
            issues.append((where, problem))
        else:
            issues += _operator_issues(name, where, options)
    n_obj = len(config.objectives)
    if config.search.selection in ("nsga3", "sms-emoa") and n_obj < 2:
        issues.append(("search.selection", f"{config.search.selection} needs at least two objectives, "
                                           f"the config has {n_obj}"))
    if config.search.selection == "lemonade" and not issues:
        if not any(o.cost == "cheap" for o in built):
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
    scheduler = config.dispatch.scheduler
    if config.dispatch.backend == "dask" and not (scheduler or "").startswith(
            ("tcp://", "tls://", "inproc://", "ws://", "wss://", "ucx://")):
        issues.append(("dispatch.scheduler", f"the dask back-end needs the scheduler's address, "
                                             f"e.g. tcp://HOST:8786; got {shown(scheduler)}"))
    if config.dispatch.security is not None and not (scheduler or "").startswith("tls://"):
        issues.append(("dispatch.security", f"TLS settings need a tls:// scheduler address "
                                            f"(dispatch.scheduler: tls://HOST:8786); "
                                            f"dispatch.scheduler is {shown(scheduler)}"))
    if config.logging.tensorboard and importlib.util.find_spec("tensorboard") is None:
        issues.append(("logging.tensorboard", "TensorBoard scalars need the tensorboard package: "
                                              "pip install tensorboard"))
    return issues


def plugins(config: RunConfig) -> dict[str, str]:
    """Each key of ``config`` that names a user's own code (``package.module:Name`` or an
    entry point) -> the ``"module:attribute"`` it stands for; imports nothing."""
    import objectives.base
    import operators
    from genomes import spaces
    from objectives import tasks

    named = [("task.dataset", tasks._REGISTRY, config.task.dataset),
             ("space.kind", spaces._REGISTRY, config.space.kind),
             *((f"objectives[{i}].name", objectives.base._REGISTRY, o.name)
               for i, o in enumerate(config.objectives)),
             *((f"search.operators.{name}", operators._OTHERS, name)
               for name in ([] if config.search.operators == "auto" else config.search.operators)
               if name not in operators.morphisms.names())]
    return {where: target for where, registry, name in named
            if (target := registry.plugin(name)) is not None}


def _factory(registry, name: str, where: str, issues: list[tuple[str, str]],
             known: Callable[[], list[str]] | None = None) -> Any:
    """The class or function ``name`` stands for in ``registry``, or None with an issue at
    ``where`` (unknown, found inside a run directory, or failing to import)."""
    if name not in registry:
        issues.append((where, f"unknown {registry.kind} {shown(name)}; known: "
                              f"{registry.names() if known is None else known()}, or your own as "
                              f"'package.module:Name'"))
        return None
    if (problem := _outside_runs(registry.plugin(name))) is not None:
        issues.append((where, problem))
        return None
    try:
        return registry.load(name)
    except ValueError as exc:  # a user's module that cannot be imported or lacks the name
        issues.append((where, str(exc)))
        return None


def _outside_runs(target: str | None) -> str | None:
    """Why the module of a user's ``target`` may not be imported: it lies inside a run
    directory (a run never runs code found in a run); None when it may. Finding the module
    reads the file system only."""
    if target is None:
        return None
    top = target.partition(":")[0].split(".")[0]
    try:
        spec = importlib.util.find_spec(top)
    except (ImportError, ValueError):
        return None  # the import that follows names the problem
    if spec is None:
        return None
    places = [spec.origin, *(spec.submodule_search_locations or [])]
    for place in places:
        if not place or place in ("built-in", "frozen"):
            continue
        for folder in Path(place).resolve().parents:
            if (folder / "config.yaml").is_file() and (folder / "journal.jsonl").is_file():
                return (f"module {top!r} of {target!r} is inside the run directory {str(folder)!r}; "
                        f"code is never imported from a run: move it out")
    return None


def _operator_issues(name: str, where: str, options: dict[Any, Any]) -> list[tuple[str, str]]:
    """Problems with an operator's options, found by building it as the engine will."""
    import operators

    odd = [k for k in options if not (isinstance(k, str) and k.isidentifier())]
    if odd:
        return [(f"{where}.{shown(k)}", "an option's name is a word (letters, digits, _)")
                for k in odd]
    try:
        operators.get(name, **options)
    except (ValueError, TypeError) as exc:
        message = str(exc)
        if message.endswith("; allowed: []"):
            message = (message.removesuffix("; allowed: []") + "; it takes no options "
                       f"(write its weight alone, e.g. {name}: 1.0)")
        return [located(where, message)]
    return []


def _option_issues(section: str, what: str, factory: Any, options: dict[Any, Any],
                   hidden: dict[str, str] | None = None) -> list[tuple[str, str]]:
    """Each option of a section that ``factory`` does not take, or whose value does not fit
    its annotation (types, finite numbers), keyed ``section.option``; ``hidden`` options are
    refused with their reason."""
    from genomes.registry import option_names, option_problem

    hidden = hidden or {}
    allowed = [o for o in option_names(factory) if o not in hidden]
    issues = []
    for key, value in options.items():
        where = f"{section}.{key}" if isinstance(key, str) else f"{section}.{shown(key)}"
        if isinstance(key, str) and key in hidden:
            issues.append((where, hidden[key]))
        elif key not in allowed:
            issues.append((where, f"unknown option for {what}; allowed: {allowed}"))
        elif (problem := option_problem(factory, key, value)) is not None:
            issues.append((where, problem))
    return issues


def _option_path(where: str, message: str) -> str:
    found = re.search(r"option '([A-Za-z_]+)'", message)
    if found:
        return f"{where}.{found.group(1)}"
    return f"{where}.name" if "reported only" in message else where


def located(section: str, message: str) -> tuple[str, str]:
    """(dotted key, message) for an error raised while building ``section``: an "option 'k'"
    in the message points at ``section.k`` (and is dropped from the message's start)."""
    found = re.search(r"option '([A-Za-z_]+)'", message)
    if not found:
        return section, message
    return f"{section}.{found.group(1)}", message.removeprefix(f"option {found.group(1)!r} ")
