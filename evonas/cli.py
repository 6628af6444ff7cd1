"""The ``evonas`` command line. Exit codes: 0 success, 1 run failure, 2 bad usage or input."""

from __future__ import annotations

import json
import sys
import time

import click

from . import __version__

__all__ = ["main"]

DIGITS_SHAPE = (1, 8, 8)  # the embedded default task: scikit-learn's 8x8 digits
NB201_SHAPE = (3, 32, 32)


def _shape(text: str | None) -> tuple[int, ...] | None:
    if text is None:
        return None
    try:
        return tuple(int(s) for s in text.split(","))
    except ValueError:
        raise click.BadParameter(f"{text!r} is not a comma-separated list of ints: C,L for "
                                 f"signals or C,H,W for images", param_hint="--input-shape")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="evonas")
def main() -> None:
    """Evolutionary multi-objective neural architecture search."""


@main.command()
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True,
              help="Seed of the random generator.")
@click.option("--space", "chosen", multiple=True, help="Only these spaces (repeatable).")
@click.option("--input-shape", "input_shape", default=None,
              help="C,L or C,H,W for every space [default: 1,8,8 (digits); nb201: 3,32,32].")
@click.option("--outputs", type=click.IntRange(min=1), default=10, show_default=True,
              help="Number of network outputs.")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table",
              show_default=True)
def spaces(seed: int, chosen: tuple[str, ...], input_shape: str | None, outputs: int,
           fmt: str) -> None:
    """Sample a genome from each search space, build it, and run it once."""
    import numpy as np
    import torch

    from genomes import spaces as registry

    names = list(chosen) or registry.names()
    unknown = [n for n in names if n not in registry.names()]
    if unknown:
        raise click.BadParameter(f"unknown space {unknown[0]!r}; known: {registry.names()}",
                                 param_hint="--space")
    given = _shape(input_shape)
    _warm_up()  # the first build in a process pays one-off import and codegen costs
    rows = []
    for name in names:
        shape = given or (NB201_SHAPE if name == "nb201" else DIGITS_SHAPE)
        try:
            space = registry.get(name, input_shape=shape, num_outputs=outputs)
        except ValueError as exc:
            raise click.UsageError(f"space {name!r}: {exc}") from None
        genome = space.sample(np.random.default_rng(seed))
        start = time.perf_counter()
        net = genome.build(seed=seed).eval()
        x = torch.randn((8, *shape), generator=torch.Generator().manual_seed(seed))
        with torch.no_grad():
            y = net(x)
        ms = (time.perf_counter() - start) * 1e3
        rows.append({"space": name, "input_shape": list(shape), "nodes": len(genome),
                     "params": genome.num_params(), "output": list(y.shape),
                     "build_forward_ms": round(ms, 1), "hash": genome.canonical_hash()})
    if fmt == "json":
        click.echo(json.dumps(rows, indent=1))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"one genome per search space (seed {seed})")
    for col in ("space", "input", "nodes", "params", "output", "build+forward", "hash"):
        table.add_column(col, justify="right" if col in ("nodes", "params") else "left")
    for r in rows:
        table.add_row(r["space"], "x".join(map(str, r["input_shape"])), str(r["nodes"]),
                      f"{r['params']:,}", "x".join(map(str, r["output"])),
                      f"{r['build_forward_ms']} ms", r["hash"][:12])
    Console().print(table)


def _warm_up() -> None:
    import numpy as np
    import torch

    from genomes import spaces as registry

    space = registry.get("chain", input_shape=DIGITS_SHAPE, num_outputs=2)
    net = space.sample(np.random.default_rng(0)).build().eval()
    with torch.no_grad():
        net(torch.zeros((2, *DIGITS_SHAPE)))


def _config_or_exit(path: str | None, overrides: tuple[str, ...]):
    from .config import ConfigError, load
    from .engine import resolve

    try:
        config = load(path, overrides)
        return config, resolve(config)
    except ConfigError as exc:
        source = path or "the built-in quick start"
        click.echo(f"error: {source} is not a valid run config:", err=True)
        for where, message in exc.issues:
            click.echo(f"  {where}: {message}", err=True)
        sys.exit(2)


@main.command("run")
@click.argument("config", required=False, type=click.Path(dir_okay=False))
@click.option("--run-dir", type=click.Path(file_okay=False),
              help="Where to write the run [default: runs/out/<name>].")
@click.option("--set", "overrides", multiple=True, metavar="KEY.PATH=VALUE",
              help="Override a config key, e.g. --set search.population=32 (repeatable).")
@click.option("--force", is_flag=True, help="Replace a run already in the run directory.")
@click.option("--quiet", is_flag=True, help="No progress display.")
def run_command(config: str | None, run_dir: str | None, overrides: tuple[str, ...], force: bool,
                quiet: bool) -> None:
    """Run an evolution (no CONFIG: the built-in quick start on digits)."""
    from pathlib import Path

    from .engine import run
    from .progress import Progress
    from .rundir import RunDirError

    cfg, _ = _config_or_exit(config, overrides)
    target = Path(run_dir) if run_dir else Path("runs") / "out" / cfg.name
    progress = Progress(quiet=quiet)
    progress.log(f"evonas {__version__}: run {cfg.name!r} -> {target}")
    try:
        result = run(cfg, run_dir=target, force=force, progress=progress)
    except RunDirError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    except RuntimeError as exc:
        click.echo(f"error: the run failed: {exc}", err=True)
        sys.exit(1)
    _print_front(result)
    if result.stopped:
        click.echo(f"stopped early; what was done is in {target}", err=True)
        sys.exit(130)


def _print_front(result) -> None:
    from rich.console import Console
    from rich.table import Table

    keys = [o.name if o.name != "tabular" else o.model_extra["value_column"]
            for o in result.config.objectives]
    table = Table(title=f"Pareto front: {len(result.front)} networks "
                        f"({len(result.individuals)} evaluated)")
    extra_params = "params" not in keys
    for col in ("id", "gen", "operator", *keys, *(["val acc"] if "val_error" in keys else []),
                "test acc", *(["params"] if extra_params else [])):
        table.add_column(col, justify="left" if col == "operator" else "right")
    for ind in result.front:
        values = [_number(ind.record.objectives[k]) for k in keys]
        if "val_error" in keys:
            values.append(f"{1 - ind.record.objectives['val_error']:.4f}")
        test = ind.record.reported.get("test_accuracy")
        values.append("-" if test is None else f"{test:.4f}")
        if extra_params:
            values.append(f"{ind.genome.num_params():,}")
        table.add_row(str(ind.id), str(ind.generation), ind.operator, *values)
    Console().print(table)
    if result.run_dir is not None:
        Console().print(f"run directory: {result.run_dir}")


def _number(value: float) -> str:
    return f"{int(value):,}" if float(value).is_integer() and abs(value) >= 1000 else f"{value:.4g}"


@main.command()
@click.argument("config", type=click.Path(dir_okay=False))
@click.option("--set", "overrides", multiple=True, metavar="KEY.PATH=VALUE",
              help="Override a config key (repeatable).")
def validate(config: str, overrides: tuple[str, ...]) -> None:
    """Check a config (loading its task) and print the resolved form."""
    import yaml

    cfg, resolved = _config_or_exit(config, overrides)
    click.echo(yaml.safe_dump(cfg.to_dict(), sort_keys=False), nl=False)
    task = resolved.task
    click.echo(f"# task {cfg.task.dataset}: input {task.input_shape}, {task.num_classes} classes, "
               f"{len(task.train)} train / {len(task.val)} validation / "
               f"{len(task.test) if task.test is not None else 0} test samples")
    click.echo(f"# space {cfg.space.kind}: bounds {resolved.space.bounds}")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
