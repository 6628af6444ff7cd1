"""evonas: evolutionary multi-objective neural architecture search — the engine package.

``evonas.run(config)`` runs an evolution from a config (a path, a mapping, or a ``RunConfig``)
and returns its result: the front, the population and every individual. ``evonas.resume(dir)``
continues a stopped or killed run. ``evonas.Search(config, run_dir=...)`` is the same search
driven from Python: ``ask()`` for trials, evaluate them yourself, ``tell(id, values)``.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

try:
    __version__ = version("evonas")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0+unknown"

__all__ = ["Search", "Trial", "__version__", "resume", "run"]


def __getattr__(name: str):
    """``evonas.Search`` and ``evonas.Trial`` (ask and tell), imported on first use."""
    if name in ("Search", "Trial"):
        from . import asktell

        return getattr(asktell, name)
    raise AttributeError(f"module 'evonas' has no attribute {name!r}")


def run(config: Any = None, *, run_dir: str | Path | None = None, overrides=(), force: bool = False,
        quiet: bool = True):
    """Run an evolution (``config``: a YAML path, a mapping, a ``RunConfig``, or None for the
    quick start) and return a ``RunResult``; writes ``run_dir`` when given."""
    from .config import RunConfig, apply_overrides, load, parse
    from .engine import run as _run
    from .progress import Progress

    if config is None or isinstance(config, (str, Path)):
        config = load(config, overrides)
    elif not isinstance(config, RunConfig):
        config = parse(apply_overrides(dict(config), overrides))
    return _run(config, run_dir=run_dir, force=force, progress=Progress(quiet=quiet))


def resume(run_dir: str | Path, *, generations: int | None = None, quiet: bool = True):
    """Continue the run in ``run_dir`` from its newest good checkpoint (``generations`` may
    extend it) and return its ``RunResult``."""
    from .engine import resume as _resume
    from .progress import Progress

    return _resume(run_dir, generations=generations, progress=Progress(quiet=quiet))
