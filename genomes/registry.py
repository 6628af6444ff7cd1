"""Lazy registries of named classes, shared by every package: a config names a thing, and only
the things a config names are imported and built.

Options are checked against the factory's signature before it runs: unknown and missing options,
and every value against its parameter's annotation (``option_problem``), so a config's typo or
wrong type reads the same for spaces, tasks and objectives and never reaches the factory as a
``TypeError``. Range checks (``>= 1``, ``in (0, 1)``) stay with the factory, which knows them.
"""

from __future__ import annotations

import collections.abc
import functools
import importlib
import inspect
import json
import math
import re
import reprlib
import sys
import types
import typing
from collections.abc import Callable
from importlib import metadata
from typing import Any

from pydantic import ConfigDict, TypeAdapter, ValidationError

__all__ = ["MAX_ITEMS", "MAX_TEXT", "Registry", "build_with_options", "is_target", "option_names",
           "option_problem", "shown"]

_NAMED = (inspect.Parameter.KEYWORD_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
MAX_ITEMS = 1024  # the longest list an option may hold
MAX_TEXT = 4096  # the longest string an option may hold (a path, a column name)
_SHOWN = 200  # how much of a value an error message echoes


class Registry:
    """Names mapped to ``"module:attribute"``; ``load(name)`` imports on first use.

    Besides the built-in names, a user's own thing is found two ways (Python's plugin habits,
    as pytest and uvicorn use them): a name written as ``"package.module:Name"`` is imported
    from wherever Python finds that module, and the Python entry points of ``group`` (e.g.
    ``evonas.objectives``) add their names to ``names()``. Nothing is imported until ``load``.
    """

    def __init__(self, kind: str, entries: dict[str, str], *, error: type[Exception] = ValueError,
                 group: str | None = None, returns: type | tuple[type, ...] | None = None):
        self.kind, self._entries, self._error = kind, dict(entries), error
        self.group, self.returns = group, returns
        self._builtin = frozenset(entries)  # the package's own; the rest is a user's code
        self._found: tuple[tuple[str, ...], dict[str, str]] | None = None  # (sys.path, entries)

    def names(self) -> list[str]:
        """The built-in names, then the entry points' (without importing them)."""
        return list(self._entries) + [n for n in self._entry_points() if n not in self._entries]

    def add(self, name: str, target: str) -> None:
        """Add ``name`` -> ``"module:attribute"`` (a plugin; imported on first use)."""
        if not isinstance(target, str) or target.count(":") != 1:
            raise ValueError(f"a {self.kind} is registered as 'module:attribute', got {target!r}")
        self._entries[name] = target

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and (name in self._entries or is_target(name)
                                          or name in self._entry_points())

    def plugin(self, name: str) -> str | None:
        """The ``"module:attribute"`` a user's name stands for (a ``module:Name`` written in a
        config, an entry point, or an ``add``-ed name), or None for a built-in or unknown name;
        imports nothing."""
        if not isinstance(name, str) or name in self._builtin:
            return None
        if name in self._entries:
            return self._entries[name]
        return name if is_target(name) else self._entry_points().get(name)

    def target(self, name: str) -> str:
        """The ``"module:attribute"`` that ``name`` stands for; ``error`` for an unknown name."""
        found = self._entries.get(name) if isinstance(name, str) else None
        found = found or self.plugin(name)
        if found is None:
            raise self._error(f"unknown {self.kind} {shown(name)}; known: {self.names()}, or your "
                              f"own as 'package.module:Name'")
        return found

    def load(self, name: str) -> Any:
        """The class or function ``name`` stands for, imported now. A user's module that
        cannot be imported, or lacks the attribute, is an ``error`` naming the target."""
        target = self.target(name)
        module, _, attribute = target.partition(":")
        if name in self._builtin:
            found: Any = importlib.import_module(module)
        else:
            try:
                found = importlib.import_module(module)
            except Exception as exc:  # noqa: BLE001 - a user's module may raise anything
                missing = isinstance(exc, ModuleNotFoundError) and exc.name == module.split(".")[0]
                hint = (" (is it installed, or in the current directory?)" if missing else "")
                raise self._error(f"{self.kind} {shown(name)}: cannot import module {module!r}: "
                                  f"{type(exc).__name__}: {str(exc)[:_SHOWN]}{hint}") from None
        for part in attribute.split("."):
            if not hasattr(found, part):
                raise self._error(f"{self.kind} {shown(name)}: module {module!r} has no "
                                  f"attribute {attribute!r}")
            found = getattr(found, part)
        if not callable(found):
            raise self._error(f"{self.kind} {shown(name)}: {target!r} is a "
                              f"{type(found).__name__}, not a class or function")
        if name not in self._builtin:  # a builtin type (dict) has no signature to check options by
            try:
                _signature(found)
            except ValueError:
                raise self._error(f"{self.kind} {_who(name, target)} has no inspectable "
                                  f"signature; {_PLUGIN_SHAPE}") from None
        return found

    def build(self, name: str, /, **options: Any) -> Any:
        """Load ``name`` and call it with ``options``, naming any unknown or missing option;
        a user's factory that gives something else than ``returns`` is an ``error``."""
        target = self.plugin(name)
        made = build_with_options(self.kind, name, self.load(name), options, error=self._error,
                                  plugin=None if target is None else _who(name, target))
        if self.returns is not None and not isinstance(made, self.returns):
            wanted = " or ".join(_a(t.__name__) for t in (self.returns if isinstance(self.returns, tuple)
                                                          else (self.returns,)))
            raise self._error(f"{self.kind} {shown(name)} gave {_a(type(made).__name__)}, not "
                              f"{wanted}")
        return made

    def _entry_points(self) -> dict[str, str]:
        """name -> "module:attribute" of the installed entry points of ``group`` (read again
        when ``sys.path`` changes)."""
        if self.group is None:
            return {}
        key = tuple(sys.path)
        if self._found is None or self._found[0] != key:
            found = {ep.name: ep.value for ep in metadata.entry_points(group=self.group)
                     if is_target(ep.value)}
            self._found = (key, found)
        return self._found[1]


def _a(word: str) -> str:
    return f"{'an' if word[:1].lower() in 'aeiou' else 'a'} {word}"


def _who(name: str, target: str) -> str:
    """A user's thing as a message names it: ``'mymod:Obj'``, or ``'alias' ('mymod:Obj')`` for an
    entry point or an ``add``-ed name."""
    return shown(name) if name == target else f"{shown(name)} ({target!r})"


_PLUGIN_SHAPE = "a plugin must be a class or function taking keyword options"


_TARGET = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*(\.[A-Za-z_]\w*)*")


def is_target(name: object) -> bool:
    """Whether ``name`` is written as ``"package.module:Name"`` (a user's own thing)."""
    return isinstance(name, str) and len(name) <= 500 and _TARGET.fullmatch(name) is not None


def _signature(factory: Callable) -> inspect.Signature:
    """``inspect.signature(factory)``; a ``ValueError`` that names the factory where it has none
    (a builtin type such as ``dict``, some C functions)."""
    try:
        return inspect.signature(factory)
    except (TypeError, ValueError):
        named = getattr(factory, "__qualname__", None) or type(factory).__name__
        raise ValueError(f"{shown(named)} has no inspectable signature; {_PLUGIN_SHAPE}") from None


def option_names(factory: Callable) -> list[str]:
    """The keyword options a class or function accepts; ``ValueError`` for one whose signature
    cannot be read."""
    return [k for k, p in _signature(factory).parameters.items() if p.kind in _NAMED]


def build_with_options(kind: str, name: str, factory: Callable, options: dict[str, Any],
                       error: type[Exception] = ValueError, *, plugin: str | None = None) -> Any:
    """``factory(**options)``, refusing unknown or missing options and values that do not fit
    their annotations with ``error``, whose message names the option.

    ``plugin`` (how messages name a user's factory) marks the factory as a user's code: whatever
    it raises becomes an ``error`` naming it, the exception's type and message (``objective
    'mymod:Obj': building it failed: RuntimeError: boom``). Only that call is wrapped, and only
    for a user's code: a built-in factory's exceptions pass unchanged, so a bug in the package
    still shows its traceback."""
    params = _signature(factory).parameters
    allowed = option_names(factory)
    for key in options:
        if key not in allowed:
            raise error(f"unknown option {shown(key)} for {kind} {name!r}; allowed: {allowed}")
    for key in allowed:
        if params[key].default is inspect.Parameter.empty and key not in options:
            raise error(f"{kind} {name!r} needs option {key!r}")
    for key, value in options.items():
        if (problem := option_problem(factory, key, value)) is not None:
            raise error(f"option {key!r} {problem}")
    if plugin is None:
        return factory(**options)
    try:
        return factory(**options)
    except Exception as exc:  # noqa: BLE001 - a user's factory may raise anything
        raise error(f"{kind} {plugin}: building it failed: {type(exc).__name__}: "
                    f"{_cut_text(str(exc))}") from exc


def _cut_text(text: str) -> str:
    return text if len(text) <= _SHOWN else text[:_SHOWN - 1] + "…"


def shown(value: Any, limit: int = _SHOWN) -> str:
    """``repr(value)`` for an error message, at most ``limit`` characters (cut with "…"), made
    without walking all of a large value."""
    text = _REPR.repr(value)
    return text if len(text) <= limit else text[:limit - 1] + "…"


class _Repr(reprlib.Repr):
    def repr_int(self, x: int, level: int) -> str:
        if x.bit_length() > 1000:  # repr would be slow, or refused past 4,300 digits
            return f"<an int of about {int(x.bit_length() * 0.30103):,} digits>"
        return super().repr_int(x, level)


_REPR = _Repr()
_REPR.maxlevel, _REPR.maxlist, _REPR.maxtuple, _REPR.maxdict, _REPR.maxset = 3, 12, 12, 8, 8
_REPR.maxstring = _REPR.maxlong = _REPR.maxother = _SHOWN


# ------------------------------------------------------------------------ type checks
def option_problem(factory: Callable, key: str, value: Any) -> str | None:
    """Why ``value`` does not fit the annotation of ``factory``'s option ``key`` ("must be a
    number, got '1e-3' ..."), or None when it fits. The check is pydantic's (``_fits``); this
    adds a message in the config's words. An option without an annotation is only checked for
    non-finite numbers."""
    annotation = _annotations(factory).get(key, Any)
    if not _fits(value, annotation, depth=0):
        return f"must be {_describe(annotation)}, got {shown(value)}{_hint(value, annotation)}"
    if (where := _nonfinite(value, depth=0)) is not None:
        return f"must hold finite numbers, got {shown(value)} ({where})"
    return None


@functools.cache
def _annotations(factory: Callable) -> dict[str, Any]:
    target = factory.__init__ if isinstance(factory, type) else factory
    try:
        return typing.get_type_hints(target)
    except Exception:  # noqa: BLE001 - an annotation that cannot be resolved is not checked
        return {}


_SEQUENCES = (list, tuple, collections.abc.Sequence, collections.abc.Iterable,
              collections.abc.Collection)


def _fits(value: Any, tp: Any, depth: int = 0) -> bool:
    """Whether ``value`` fits ``tp`` as configs mean it: pydantic's strict validation of the
    value as JSON (a config's values are JSON data): a bool is not an int, an int is a number,
    a string is never a number, lists fill tuples, numbers are finite. Strings and lists are
    bounded first (``MAX_TEXT``, ``MAX_ITEMS``), so nothing large is encoded."""
    if tp is Any or tp is inspect.Parameter.empty:
        return True
    if not _bounded(value, depth):
        return False
    try:
        text = json.dumps(value, allow_nan=True)  # NaN and infinity reach pydantic, which refuses them
    except (TypeError, ValueError):  # not plain data (or an int too long to write)
        return False
    try:
        _adapter(tp).validate_json(text, strict=True)
    except ValidationError:
        return False
    return True


@functools.cache
def _adapter(tp: Any) -> TypeAdapter:
    return TypeAdapter(tp, config=ConfigDict(allow_inf_nan=False))


def _bounded(value: Any, depth: int) -> bool:
    if isinstance(value, str):
        return len(value) <= MAX_TEXT
    if isinstance(value, (list, tuple)):
        return depth < 8 and len(value) <= MAX_ITEMS and all(_bounded(v, depth + 1) for v in value)
    return True


def _describe(tp: Any, plural: bool = False) -> str:
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(dict.fromkeys(_describe(a, plural) for a in args))
    if origin is typing.Literal:
        return f"one of {list(args)}"
    if origin is typing.Annotated:
        return _describe(args[0], plural)
    if tp is type(None) or tp is None:
        return "null"
    named = {bool: ("true or false", "true/false values"), int: ("an int", "ints"),
             float: ("a number", "numbers"), str: ("a string", "strings")}
    if tp in named:
        return named[tp][plural]
    if origin in _SEQUENCES or tp in (list, tuple):
        if origin is tuple and args and args[-1] is not Ellipsis:
            return f"a list of {len(args)}: {', '.join(_describe(a) for a in args)}"
        items = _describe(args[0], plural=True) if args else "values"
        return f"a list of {items} (at most {MAX_ITEMS:,})"
    name = getattr(tp, "__name__", str(tp))
    return f"{name} objects" if plural else f"a {name}"


def _hint(value: Any, tp: Any) -> str:
    numeric = _fits(1.5, tp, 0) or _fits(1, tp, 0)
    if isinstance(value, bool) and numeric:
        return " (true and false are not numbers)"
    if isinstance(value, str) and numeric:
        try:
            number = float(value)
        except ValueError:
            return ""
        text = value.strip()
        found = re.fullmatch(r"([-+]?\d+)([eE][-+]?\d+)", text)
        if found and math.isfinite(number) and len(text) <= 40:  # YAML 1.1: 1e-3 is text
            if not _fits(1.5, tp, 0):  # an int option
                return (f" (a string; YAML reads {text} as text, write {int(number)})"
                        if number.is_integer() else " (a string)")
            return (f" (a string; YAML reads {text} as text, write {number!r} or "
                    f"{found.group(1)}.0{found.group(2)})")
        return " (a string; write the number without quotes)"
    if isinstance(value, float) and not math.isfinite(value):
        return " (NaN and infinities are refused)"
    if isinstance(value, str) and len(value) > MAX_TEXT:
        return f" ({len(value):,} characters; at most {MAX_TEXT:,})"
    if isinstance(value, (list, tuple)) and len(value) > MAX_ITEMS:
        return f" ({len(value):,} items; at most {MAX_ITEMS:,})"
    return ""


def _nonfinite(value: Any, depth: int) -> str | None:
    """Where a NaN or infinity hides inside ``value`` (a description), or None."""
    if isinstance(value, float) and not math.isfinite(value):
        return f"{value!r} is not finite"
    if depth > 8:
        return None
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, (list, tuple)):
        for v in value[:MAX_ITEMS]:
            if (found := _nonfinite(v, depth + 1)) is not None:
                return found
    return None
