"""Write docs/configuration.md from the run-config schema (``evonas.config.RunConfig``) and the
registries of tasks, search spaces, objectives and operators, so the reference cannot drift from
the code: every key with its type, default and description, every registered name with the
options its factory's signature takes.

    python docs/gen_reference.py            # rewrite docs/configuration.md
    python docs/gen_reference.py --check    # exit 1 when docs/configuration.md is out of date

Descriptions come from the schema (``Field(description=...)``), else from the comment on the
field's line in ``evonas/config.py`` (or the comment just above it), else from ``FALLBACK``
below; the options' from their factory's docstring. Only the packages' own names are listed,
never a user's plugins (entry points installed in this environment).
"""

from __future__ import annotations

import argparse
import inspect
import io
import json
import math
import sys
import tokenize
import types
import typing
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "configuration.md"
sys.path.insert(0, str(ROOT))  # run from a checkout that is not installed, too

from pydantic import BaseModel  # noqa: E402

__all__ = ["FALLBACK", "generate", "main"]

OWN = ("genomes", "objectives", "operators", "evonas")  # a factory from elsewhere is a plugin

# Descriptions for schema fields that carry neither a description nor a comment. The generator
# refuses a key here that the schema lacks, so this table cannot outlive a renamed key.
FALLBACK = {
    "name": "the run's name: the default run directory is `runs/out/<name>`",
    "seed": "the root of every random choice in the run (sampling, operators, training, "
            "splits); a run on the CPU is reproducible from it",
    "task": "the data set to search on: `dataset` names the task, its other keys are the "
            "task's options ([Tasks](#tasks))",
    "space": "the search space: `kind` names it, its other keys are the space's options "
             "([Search spaces](#search-spaces))",
    "search": "the search strategy and its budget",
    "objectives": "what is optimised, at least one: each entry has a `name` and that "
                  "objective's options ([Objectives](#objectives))",
    "training": "how each network is trained (objectives that need training)",
    "dispatch": "where evaluations run: devices, worker processes, a dask cluster",
    "checkpoints": "what a run keeps of its generation checkpoints",
    "logging": "what a run writes besides its journal",
    "logging.tensorboard": "write TensorBoard scalars per generation under `<run>/tensorboard/`",
    "task.dataset": "the task's name",
    "space.kind": "the search space's name",
    "objectives[i].name": "the objective's name",
    "search.backend": "the population library that does the selection",
    "search.selection": "the survival (and parent selection) rule",
    "search.population": "individuals kept from one generation to the next",
    "search.offspring": "children proposed and evaluated per generation",
    "search.generations": "generations after the initial population",
    "search.max_evaluations": "a budget: stop after this many evaluations (none: no such limit)",
    "search.operators": "the operator mix: operator name -> weight, or -> `{weight: w, "
                        "<option>: <value>}`; or `auto`: every operator that applies to the "
                        "space, with adaptive weights",
    "search.portfolio": "adapt the operator weights during the run, from the configured ones",
    "search.operators.<name>.weight": "the operator's weight in the mix",
    "search.portfolio.rule": "the adaptation rule (adaptive pursuit, Thierens 2005)",
    "training.epochs": "the training horizon of a full evaluation",
    "training.batch_size": "examples per training step",
    "training.optimizer": "the optimiser",
    "training.lr": "the learning rate (children of exact morphisms use "
                   "`inherited_lr_scale` times it)",
    "training.momentum": "SGD momentum",
    "training.weight_decay": "L2 weight decay",
    "training.schedule": "the learning-rate schedule over `epochs`",
    "training.label_smoothing": "label smoothing of the cross-entropy loss",
    "training.timeout_s": "stop training between batches after this many seconds (the "
                          "evaluation fails)",
    "training.early_ranking": "successive halving: train every candidate to the first rung, "
                              "continue only the best `keep` fraction to the next",
    "training.early_ranking.rungs": "increasing epochs, the last equal to `training.epochs`",
    "training.early_ranking.keep": "the fraction of candidates promoted at each rung",
    "dispatch.devices": "`auto` (every visible CUDA GPU, else the CPU), `cpu`, or a list of "
                        "GPU indices",
    "dispatch.workers_per_device": "worker processes per device; each evaluation holds its "
                                   "worker's device for its whole duration",
    "dispatch.threads_per_worker": "torch threads per worker",
    "dispatch.backend": "`local` (warm worker processes), `inline` (in this process, for "
                        "debugging and tiny runs), `dask` (a cluster)",
    "dispatch.security.ca_file": "the certificate authority that signed the scheduler's "
                                 "certificate",
    "dispatch.security.client_cert": "this client's certificate",
    "dispatch.security.client_key": "its private key (null: inside `client_cert`)",
    "dispatch.security.require_encryption": "refuse unencrypted connections",
}

# options of a registered thing that a config does not set
HIDDEN = {"task": {"seed"}, "space": {"input_shape", "num_outputs"}}


# ----------------------------------------------------------------------------- formatting
def type_name(tp: Any) -> str:
    """A type as a reader of YAML thinks of it: ``int``, ``number``, ``list[int]``,
    ``"a" | "b"``, ``... | null``."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is typing.Annotated:
        return type_name(args[0])
    if origin in (typing.Union, types.UnionType):
        return " \\| ".join(dict.fromkeys(type_name(a) for a in args))
    if origin is typing.Literal:
        return " \\| ".join(json.dumps(a) for a in args)
    if tp is type(None) or tp is None:
        return "null"
    if tp is typing.Any or tp is inspect.Parameter.empty:
        return "any"
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return "mapping"
    named = {bool: "bool", int: "int", float: "number", str: "string"}
    if tp in named:
        return named[tp]
    if origin in (dict,) or tp is dict:
        return f"mapping of {_inner(args[0])} to {_inner(args[1])}" if args else "mapping"
    if origin is tuple and args and args[-1] is not Ellipsis:
        return f"list of {len(args)} ({', '.join(type_name(a) for a in args)})"
    if origin is not None and (origin in (list, tuple) or _is_sequence(origin)):
        return f"list[{type_name(args[0])}]" if args else "list"
    if tp in (list, tuple):
        return "list"
    return getattr(tp, "__name__", str(tp))


def _inner(tp: Any) -> str:
    """``type_name`` in parentheses when it is a choice, as an item of a container."""
    text = type_name(tp)
    return f"({text})" if "|" in text else text


def _is_sequence(origin: Any) -> bool:
    import collections.abc as abc

    return origin in (abc.Sequence, abc.Iterable, abc.Collection)


def value_text(value: Any) -> str:
    """A default as it would be written in YAML (flow style), in backticks; "—" for none."""
    if value is inspect.Parameter.empty:
        return "required"
    if isinstance(value, BaseModel):
        value = value.model_dump(mode="json")
    if isinstance(value, tuple):
        value = list(value)
    if isinstance(value, float) and math.isfinite(value) and value != int(value):
        text = f"{value:.6g}"
    else:
        text = json.dumps(value, default=str)
    if isinstance(value, dict):
        text = "{" + ", ".join(f"{k}: {value_text(v).strip('`')}" for k, v in value.items()) + "}"
    return f"`{text}`"


def constraints(field: Any) -> str:
    """The bounds pydantic checks (``>= 1, <= 10000``), from the field's metadata."""
    out = []
    for item in getattr(field, "metadata", []):
        for attr, word in (("ge", ">="), ("gt", ">"), ("le", "<="), ("lt", "<"),
                           ("min_length", "length >="), ("max_length", "length <="),
                           ("pattern", "matches")):
            value = getattr(item, attr, None)
            if value is not None:
                shown = f"`{value}`" if attr == "pattern" else (
                    f"{value:,}" if isinstance(value, int) else f"{value:g}")
                out.append(f"{word} {shown}")
    return ", ".join(out)


def cell(text: str) -> str:
    """Text fit for one Markdown table cell."""
    return " ".join(str(text).split()).replace("|", "\\|").replace("\\\\|", "\\|")


def first_paragraph(obj: Any) -> str:
    """The first paragraph of ``obj``'s own docstring (a class's, not one it inherits)."""
    doc = obj.__dict__.get("__doc__") if isinstance(obj, type) else getattr(obj, "__doc__", None)
    text = " ".join(inspect.cleandoc(doc or "").split("\n\n")[0].split())
    return text.replace("``", "`")  # reStructuredText literals in Markdown


# ------------------------------------------------------------------------- the schema
def comments(model: type) -> dict[str, str]:
    """field name -> the comment on its line in the class source (or the comment lines just
    above it), from the source of ``model``."""
    try:
        lines, _ = inspect.getsourcelines(model)
    except (OSError, TypeError):
        return {}
    source = "".join(lines)
    by_line: dict[int, str] = {}
    code_lines: set[int] = set()
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type == tokenize.COMMENT:
            by_line[tok.start[0]] = tok.string.lstrip("#").strip()
        elif tok.type not in (tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT,
                              tokenize.ENDMARKER):
            code_lines.update(range(tok.start[0], tok.end[0] + 1))
    found = {}
    text_lines = source.splitlines()
    for number, line in enumerate(text_lines, start=1):
        stripped = line.strip()
        name = stripped.split(":", 1)[0]
        if not (line.startswith("    ") and not line.startswith("     ") and name.isidentifier()
                and ":" in stripped and name in getattr(model, "model_fields", {})):
            continue
        if number in by_line and number in code_lines:
            found[name] = by_line[number]
            continue
        above, k = [], number - 1
        while k >= 1 and k in by_line and k not in code_lines:
            above.insert(0, by_line[k])
            k -= 1
        if above:
            found[name] = " ".join(above)
    return found


def models_in(tp: Any) -> list[type]:
    """The pydantic models inside a field's annotation (``EarlyRanking | None``, a list's or a
    mapping's items)."""
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return [tp]
    return [m for a in typing.get_args(tp) for m in models_in(a)]


def container_suffix(tp: Any, model: type) -> str:
    """How a nested model sits under its key: ``""`` (a section), ``"[i]"`` (list items),
    ``".<name>"`` (mapping values)."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is typing.Annotated:
        return container_suffix(args[0], model)
    if origin in (typing.Union, types.UnionType):
        for a in args:
            if model in models_in(a):
                return container_suffix(a, model)
    if origin is list:
        return "[i]"
    if origin is dict:
        return ".<name>"
    return ""


def describe(path: str, field: Any, notes: dict[str, str], used: set[str]) -> str:
    if field.description:
        return field.description
    key = path.rsplit(".", 1)[-1]
    if key in notes:
        return notes[key]
    if path in FALLBACK:
        used.add(path)
        return FALLBACK[path]
    return ""


def default_of(field: Any) -> Any:
    if field.is_required():
        return inspect.Parameter.empty
    if field.default_factory is not None:
        return field.default_factory()
    return field.default


def section(model: type, path: str, out: list[str], used: set[str], level: int) -> None:
    """A table of ``model``'s keys under ``path``, then a subsection per nested model."""
    notes = comments(model)
    if path:
        out.append(f"{'#' * level} `{path}`\n")
        if doc := first_paragraph(model):
            out.append(doc + "\n")
    rows, nested = [], []
    for name, field in model.model_fields.items():
        full = f"{path}.{name}" if path else name
        kind = type_name(field.annotation)
        bounds = constraints(field)
        text = describe(full, field, notes, used)
        inner = models_in(field.annotation)
        for sub in inner:
            where = full + container_suffix(field.annotation, sub)
            nested.append((sub, where))
        if inner and not path:  # a top-level section: link to it
            anchor = (full + container_suffix(field.annotation, inner[0])).replace("[i]", "i")
            link = f"[below](#{_anchor(anchor)})"
            text = f"{text} ({link})" if text else link
        default = default_of(field)
        shown_default = ("see below" if isinstance(default, BaseModel) else value_text(default))
        rows.append(f"| `{name}` | {cell(kind)} | {cell(shown_default)} | "
                    f"{cell('; '.join(x for x in (text, bounds) if x))} |")
    if getattr(model, "model_config", {}).get("extra") == "allow":
        rows.append("| *other keys* | | | the options of the thing named here (listed below) |")
    out.append("| key | type | default | description |\n| --- | --- | --- | --- |")
    out.extend(rows)
    out.append("")
    for sub, where in nested:
        section(sub, where, out, used, level + 1 if path else level)


def _anchor(path: str) -> str:
    """The id mkdocs gives a heading ``path`` (Python-Markdown's toc slugify)."""
    import re
    import unicodedata

    text = unicodedata.normalize("NFKD", path).encode("ascii", "ignore").decode()
    text = re.sub(r"[^\w\s-]", "", text).strip().lower()
    return re.sub(r"[-\s]+", "-", text)


# --------------------------------------------------------------------- the registries
def options_table(factory: Any, hidden: set[str] = frozenset()) -> list[str]:
    """``| option | type | default |`` rows from a factory's signature and annotations."""
    from genomes.registry import option_names

    target = factory.__init__ if isinstance(factory, type) else factory
    try:
        hints = typing.get_type_hints(target)
    except Exception:  # noqa: BLE001 - an unresolvable annotation is shown as "any"
        hints = {}
    params = inspect.signature(factory).parameters
    rows = []
    for name in option_names(factory):
        if name in hidden:
            continue
        rows.append(f"| `{name}` | {cell(type_name(hints.get(name, typing.Any)))} | "
                    f"{cell(value_text(params[name].default))} |")
    if not rows:
        return ["No options.", ""]
    return ["| option | type | default |", "| --- | --- | --- |", *rows, ""]


def own(factory: Any) -> bool:
    return getattr(factory, "__module__", "").split(".")[0] in OWN


def _where(factory: Any) -> str:
    module = inspect.getmodule(factory)
    name = getattr(factory, "__name__", "")
    return f"`{module.__name__}.{name}`" if module else f"`{name}`"


def registries(out: list[str]) -> None:
    import objectives
    import objectives.base
    import operators
    from genomes import spaces
    from objectives import tasks

    out.append("## Tasks\n")
    out.append("`task.dataset` names one of these; the other keys of `task` are its options. "
               "`seed` is the run's (top-level `seed`). A missing or bad file is reported "
               "at its key before anything runs.\n")
    for name in tasks.names():
        factory = tasks._REGISTRY.load(name)
        if own(factory):
            out.append(f"### `{name}`\n")
            out.append(f"{first_paragraph(factory) or first_paragraph(inspect.getmodule(factory))}"
                       f" ({_where(factory)})\n")
            out.extend(options_table(factory, HIDDEN["task"]))

    out.append("## Search spaces\n")
    out.append("`space.kind` names one of these; the other keys of `space` are its options. "
               "The input shape and the number of outputs come from the task.\n")
    for name in spaces.names():
        factory = spaces.space_class(name)
        if own(factory):
            out.append(f"### `{name}`\n")
            out.append(f"{first_paragraph(factory)} ({_where(factory)})\n")
            out.extend(options_table(factory, HIDDEN["space"]))

    out.append("## Objectives\n")
    out.append("Each entry of `objectives` has a `name` from this list and that objective's "
               "options. *cheap* objectives need no training; *expensive* ones train the network "
               "(`training`). An objective that is reported only is measured for every "
               "individual but can never be selected on.\n")
    for name in objectives.names():
        factory = objectives.base._REGISTRY.load(name)
        if not own(factory):
            continue
        facts = [f"cost: {getattr(factory, 'cost', '?')}"]
        direction = getattr(factory, "direction", None)
        if isinstance(direction, str) and "direction" not in inspect.signature(factory).parameters:
            facts.append(f"direction: {direction}")
        if not getattr(factory, "selectable", True):
            facts.append("reported only")
        out.append(f"### `{name}`\n")
        out.append(f"{first_paragraph(factory)} ({', '.join(facts)}; {_where(factory)})\n")
        out.extend(options_table(factory))

    out.append("## Operators\n")
    out.append("`search.operators` maps these names to weights in the mix (`{mutate: 2}`), or to "
               "`{weight: w, <option>: <value>}` to set an operator's options. *Exact* morphisms "
               "keep the parent's function and weights; *approximate* ones shrink it and are "
               "repaired (`training.repair_steps`).\n")
    exact = set(operators.morphisms.names(exact=True))
    approx = set(operators.morphisms.names(exact=False))
    for name in operators.names():
        factory = type(operators.get(name))
        if not own(factory):
            continue
        kind = ("exact morphism" if name in exact else "approximate morphism" if name in approx
                else "proposer")
        out.append(f"### `{name}`\n")
        out.append(f"{first_paragraph(factory)} ({kind}; {_where(factory)})\n")
        out.extend(options_table(factory))


# --------------------------------------------------------------------------- the page
def generate() -> str:
    """The text of docs/configuration.md."""
    from evonas.config import RunConfig

    out = [
        "# Configuration reference",
        "",
        "<!-- Generated by docs/gen_reference.py from evonas/config.py and the registries; do not "
        "edit. Regenerate: python docs/gen_reference.py -->",
        "",
        "A run config is a YAML mapping of the sections below. Every key is checked before "
        "anything runs; a mistake is reported with its dotted key path and exit code 2. "
        "`evonas validate CONFIG` prints the resolved config with every default filled in, and "
        "`--set key.path=value` overrides any key (`--set objectives[0].time_penalty=0.01`, "
        "`--set search.operators.mutate.weight=2`). Numbers must be finite; a bool is not a "
        "number. The [tutorial](tutorial.md) writes a small config; `runs/` holds examples.",
        "",
        "## Top level",
        "",
    ]
    used: set[str] = set()
    section(RunConfig, "", out, used, level=2)
    registries(out)
    stale = sorted(set(FALLBACK) - used - _all_paths(RunConfig))
    if stale:
        raise SystemExit(f"docs/gen_reference.py: FALLBACK describes keys the schema lacks: "
                         f"{stale}")
    return "\n".join(out).rstrip() + "\n"


def _all_paths(model: type, path: str = "") -> set[str]:
    found = set()
    for name, field in model.model_fields.items():
        full = f"{path}.{name}" if path else name
        found.add(full)
        for sub in models_in(field.annotation):
            found |= _all_paths(sub, full + container_suffix(field.annotation, sub))
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true",
                        help="exit 1 when docs/configuration.md differs from what is generated")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    text = generate()
    if args.check:
        current = args.out.read_text() if args.out.is_file() else ""
        if current != text:
            print(f"{args.out} is out of date; regenerate it: python docs/gen_reference.py",
                  file=sys.stderr)
            return 1
        return 0
    args.out.write_text(text)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
