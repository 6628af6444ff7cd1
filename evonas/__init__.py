"""evonas: evolutionary multi-objective neural architecture search — the engine package.

``evonas.run(config)`` runs an evolution from a config (a path, a mapping, or a ``RunConfig``),
writes its run directory (``runs/out/<name>`` by default, as the CLI does) and returns its result:
the front, the population and every individual. ``evonas.load(dir)`` reads a run as ``front`` and
``show`` do (``.to_dataframe()``: one row per individual). ``evonas.resume(dir)`` continues a
stopped or killed run. ``evonas.Search(config, run_dir=...)`` is the same search
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

__all__ = ["DEFAULT", "Search", "Trial", "__version__", "load", "resume", "run"]


class _Default:
    """The type of ``DEFAULT``: "the CLI's default run directory", told apart from None."""

    def __repr__(self) -> str:
        return "DEFAULT"


DEFAULT = _Default()  # run(run_dir=DEFAULT): runs/out/<name>, as `evonas run` writes


def __getattr__(name: str):
    """``evonas.Search`` and ``evonas.Trial`` (ask and tell), imported on first use."""
    if name in ("Search", "Trial"):
        from . import asktell

        return getattr(asktell, name)
    raise AttributeError(f"module 'evonas' has no attribute {name!r}")


def run(config: Any = None, *, run_dir: str | Path | None | _Default = DEFAULT, overrides=(),
        force: bool = False, quiet: bool = False):
    """Run an evolution (``config``: a YAML path, a mapping, a ``RunConfig``, or None for the
    quick start) and return a ``RunResult`` (``result.run_dir`` says where it went).

    Like ``evonas run``, it writes ``runs/out/<name>`` under the current directory unless
    ``run_dir`` names another; ``run_dir=None`` keeps the run in memory only (nothing to
    ``load``, ``resume`` or export). Progress is shown unless ``quiet``."""
    from .config import RunConfig, apply_overrides, load as load_config, parse
    from .engine import run as _run
    from .progress import Progress

    if config is None or isinstance(config, (str, Path)):
        config = load_config(config, overrides)
    elif not isinstance(config, RunConfig):
        config = parse(apply_overrides(dict(config), overrides))
    elif overrides:
        config = parse(apply_overrides(config.to_dict(), overrides))
    if isinstance(run_dir, _Default):
        run_dir = Path("runs") / "out" / config.name
    progress = Progress(quiet=quiet)
    if run_dir is not None:
        progress.log(f"evonas {__version__}: run {config.name!r} -> {run_dir}")
    return _run(config, run_dir=run_dir, force=force, progress=progress)


def resume(run_dir: str | Path, *, generations: int | None = None, quiet: bool = False):
    """Continue the run in ``run_dir`` from its newest good checkpoint (``generations`` may
    extend it) and return its ``RunResult``; progress is shown unless ``quiet``."""
    from .engine import resume as _resume
    from .progress import Progress

    return _resume(run_dir, generations=generations, progress=Progress(quiet=quiet))


def load(run_dir: str | Path):
    """The run in ``run_dir`` as ``evonas front``/``show`` see it (``RunView``): read-only,
    safe on a run still being written, and never importing code the run's config names.
    ``load(dir).to_dataframe()`` gives one row per individual."""
    from .runview import RunView

    return RunView.load(run_dir)
