"""Lazy registries of named classes, shared by every package: a config names a thing, and only
the things a config names are imported and built."""

from __future__ import annotations

import importlib
import inspect
from typing import Any, Callable

__all__ = ["Registry", "build_with_options", "option_names"]

_NAMED = (inspect.Parameter.KEYWORD_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)


class Registry:
    """Names mapped to ``"module:attribute"``; ``load(name)`` imports on first use."""

    def __init__(self, kind: str, entries: dict[str, str], *, error: type[Exception] = ValueError):
        self.kind, self._entries, self._error = kind, dict(entries), error

    def names(self) -> list[str]:
        return list(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def load(self, name: str) -> Any:
        if name not in self._entries:
            raise self._error(f"unknown {self.kind} {name!r}; known: {self.names()}")
        module, attribute = self._entries[name].split(":")
        return getattr(importlib.import_module(module), attribute)

    def build(self, name: str, /, **options: Any) -> Any:
        """Load ``name`` and call it with ``options``, naming any unknown or missing option."""
        return build_with_options(self.kind, name, self.load(name), options, error=self._error)


def option_names(factory: Callable) -> list[str]:
    """The keyword options a class or function accepts."""
    return [k for k, p in inspect.signature(factory).parameters.items() if p.kind in _NAMED]


def build_with_options(kind: str, name: str, factory: Callable, options: dict[str, Any],
                       error: type[Exception] = ValueError) -> Any:
    """``factory(**options)``, refusing unknown or missing options with ``error``."""
    params = inspect.signature(factory).parameters
    allowed = option_names(factory)
    for key in options:
        if key not in allowed:
            raise error(f"unknown option {key!r} for {kind} {name!r}; allowed: {allowed}")
    for key in allowed:
        if params[key].default is inspect.Parameter.empty and key not in options:
            raise error(f"{kind} {name!r} needs option {key!r}")
    return factory(**options)
