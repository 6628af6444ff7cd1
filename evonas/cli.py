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


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
