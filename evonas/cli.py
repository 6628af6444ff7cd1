"""The ``evonas`` command line. Exit codes: 0 success, 1 run failure, 2 bad usage or input,
130 a run stopped by Ctrl-C or SIGTERM (``evonas resume`` continues it)."""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
from pathlib import Path

import click

from evonas import __version__

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
              help="C,L or C,H,W for every space [default: 1,8,8 (digits); nb201: 3,32,32]; "
                   "without --space, spaces that cannot take it are skipped, saying why.")
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
    built = []  # (name, shape, space) of the spaces that take the shape
    skipped = []  # {"space", "input_shape", "skipped"}: those that do not (every space asked)
    for name in names:
        shape = given or (NB201_SHAPE if name == "nb201" else DIGITS_SHAPE)
        try:
            built.append((name, shape, registry.get(name, input_shape=shape, num_outputs=outputs)))
        except ValueError as exc:
            if chosen or given is None:  # asked for by name, or its own default: a mistake
                raise click.UsageError(f"space {name!r}: {exc}") from None
            skipped.append({"space": name, "input_shape": list(shape), "skipped": str(exc)})
    if not built:  # the shape suits no space: what each said, then exit 2
        raise click.UsageError("no search space takes input shape "
                               f"{','.join(map(str, given))}: " + "; ".join(
                                   f"{s['space']}: {s['skipped']}" for s in skipped))
    _warm_up()  # the first build in a process pays one-off import and codegen costs
    rows = []
    for name, shape, space in built:
        genome = space.sample(np.random.default_rng(seed))
        start = time.perf_counter()
        net = genome.build(seed=seed).eval()
        x = torch.randn((8, *shape), generator=torch.Generator().manual_seed(seed))
        with torch.no_grad():
            y = net(x)
        ms = (time.perf_counter() - start) * 1e3
        rows.append({"space": name, "input_shape": list(shape), "nodes": len(genome),
                     "params": genome.num_params(), "output": list(y.shape),
                     "build_forward_ms": round(ms, 1), "hash": genome.canonical_hash(),
                     "skipped": None})
    if fmt == "json":  # a skipped space is a row with its reason and no values
        order = {name: i for i, name in enumerate(names)}
        every = sorted(rows + [{**s, "nodes": None, "params": None, "output": None,
                                "build_forward_ms": None, "hash": None} for s in skipped],
                       key=lambda r: order[r["space"]])
        click.echo(json.dumps(every, indent=1))
        _say_skipped(skipped, given)
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
    _say_skipped(skipped, given)


def _say_skipped(skipped: list[dict], shape: tuple[int, ...] | None) -> None:
    """A line per space that could not take the input shape, on standard error (standard
    output stays the table or the JSON)."""
    for s in skipped:
        click.echo(f"skipped space {s['space']!r}: it cannot take input shape "
                   f"{','.join(map(str, shape or ()))} ({_capped(s['skipped'], 500)})", err=True)


def _warm_up() -> None:
    import numpy as np
    import torch

    from genomes import spaces as registry

    space = registry.get("chain", input_shape=DIGITS_SHAPE, num_outputs=2)
    net = space.sample(np.random.default_rng(0)).build().eval()
    with torch.no_grad():
        net(torch.zeros((2, *DIGITS_SHAPE)))


def _importable_here() -> None:
    """A config may name a user's own ``module:Name`` beside it: like uvicorn, the current
    directory is searched for modules (never a run directory: the config check refuses those)."""
    import os

    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())


def _at_start_dir(run_dir: str) -> str:
    """Move to the directory the run was started from, when it is recorded, still there and
    not the current one, and return ``run_dir`` made absolute: relative paths in the run's
    config (a data file, a ``module:Name`` of one's own) were written against that directory,
    so a resume from elsewhere finds what the run found."""
    import os
    from pathlib import Path

    from evonas.store import journal

    line = journal.started(Path(run_dir) / "journal.jsonl")
    where = line.get("cwd") if line else None
    if not isinstance(where, str) or not os.path.isdir(where) \
            or os.path.realpath(where) == os.path.realpath(os.getcwd()):
        return run_dir
    run_dir = os.path.abspath(run_dir)
    os.chdir(where)
    click.echo(f"note: relative paths in the run's config resolve against {where}, where it "
               f"started", err=True)
    return run_dir


def _config_or_exit(path: str | None, overrides: tuple[str, ...]):
    from .config import ConfigError, load
    from .resolve import resolve

    try:
        config = load(path, overrides)
        return config, resolve(config)
    except ConfigError as exc:
        source = _capped(path, 200) if path else "the built-in quick start"
        click.echo(f"error: {source} is not a valid run config:", err=True)
        for where, message in exc.issues:
            click.echo(f"  {_capped(where, 200)}: {_capped(message)}", err=True)
        sys.exit(2)


def _capped(text: object, limit: int = 2000) -> str:
    """``text`` for the terminal, at most ``limit`` characters (cut with "…"): whatever a
    config holds, an error message stays a few lines."""
    text = str(text)
    return text if len(text) <= limit else text[:limit - 1] + "…"


STOPPED = 130  # the exit code of a run stopped by Ctrl-C or SIGTERM (resumable)


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
    """Run an evolution (no CONFIG: the built-in quick start on digits).

    Ctrl-C or SIGTERM (what `timeout` and cluster schedulers send) stops the run after
    journaling what is done, with exit code 130; `evonas resume` continues it.
    """
    with _stoppable("run") as stop:
        from .engine import run
        from .progress import Progress

        _importable_here()
        cfg, _ = _config_or_exit(config, overrides)
        target = Path(run_dir) if run_dir else Path("runs") / "out" / cfg.name
        stop.progress = progress = Progress(quiet=quiet)
        stop.run_dir = target
        progress.log(f"evonas {__version__}: run {cfg.name!r} -> {target}")
        result = _drive(lambda: run(cfg, run_dir=target, force=force, progress=progress))
        stop.progress = None
        _finish(result, target)


@main.command("resume")
@click.argument("run_dir", type=click.Path(file_okay=False))
@click.option("--generations", type=click.IntRange(min=0), default=None,
              help="Run to this many generations (may extend a finished run: ask for more than "
                   "it has).")
@click.option("--quiet", is_flag=True, help="No progress display.")
def resume_command(run_dir: str, generations: int | None, quiet: bool) -> None:
    """Continue a run from its newest good checkpoint, taking finished work from the journal.

    Ctrl-C or SIGTERM stops it again after journaling what is done, with exit code 130.
    """
    with _stoppable("resume") as stop:
        stop.run_dir = run_dir
        run_dir = _at_start_dir(run_dir)
        stop.run_dir = run_dir
        _importable_here()
        from .engine import resume
        from .progress import Progress

        stop.progress = progress = Progress(quiet=quiet)
        result = _drive(lambda: resume(run_dir, generations=generations, progress=progress),
                        source=f"{run_dir}/config.yaml")
        stop.progress = None
        if result.idle is not None and quiet:  # said by the progress otherwise
            click.echo(result.idle)
        _finish(result, run_dir)


class _Stop:
    """What ``_stoppable`` needs to say where a stopped run is: its directory once known, and
    the progress display to close."""

    def __init__(self) -> None:
        self.run_dir = None
        self.progress = None


@contextlib.contextmanager
def _stoppable(command: str):
    """For the time of ``run`` or ``resume``: SIGTERM stops the run as Ctrl-C does (it raises
    ``KeyboardInterrupt`` in the main thread, once: the engine journals a ``stopped`` event and
    keeps what was told), and an interrupt that comes before the run got going (while modules
    load, the data is read or the workers start) exits 130 with a short message instead of
    click's "Aborted!". The previous SIGTERM handler is put back afterwards."""
    import signal
    import threading

    stop, stopping = _Stop(), []

    def terminated(signum, frame):
        if stopping:  # already stopping: a second SIGTERM waits for that
            return
        stopping.append(signum)
        raise KeyboardInterrupt

    installed = threading.current_thread() is threading.main_thread()  # where signals land
    previous = signal.signal(signal.SIGTERM, terminated) if installed else None
    try:
        yield stop
    except KeyboardInterrupt:
        by_ctrl_c = not stopping
        stopping.append(signal.SIGINT)  # a SIGTERM now changes nothing
        if stop.progress is not None:
            stop.progress.stop()
        if by_ctrl_c:
            click.echo("", err=True)  # past the "^C" the terminal echoed
        if stop.run_dir is not None and (Path(stop.run_dir) / "journal.jsonl").exists():
            click.echo(f"stopped; what was done is in {stop.run_dir} (continue with: "
                       f"evonas resume {stop.run_dir})", err=True)
        else:
            click.echo(f"stopped before the run {'resumed' if command == 'resume' else 'started'}; "
                       f"nothing was written", err=True)
        sys.exit(STOPPED)
    finally:
        if installed:  # None: a handler not set from Python, which the default stands for
            signal.signal(signal.SIGTERM, signal.SIG_DFL if previous is None else previous)


def _drive(start, source: str = "the config"):
    """Run ``start()``, turning user mistakes into exit 2 and run failures into exit 1."""
    from evonas.store.checkpoint import CheckpointError
    from .config import ConfigError
    from evonas.store.lock import RunLockedError
    from evonas.store.rundir import RunDirError
    from evonas.store.states import StateFileError

    try:
        return start()
    except ConfigError as exc:
        flags = [(where, message) for where, message in exc.issues if where.startswith("--")]
        for where, message in flags:  # a command-line flag's mistake, not the config's
            click.echo(f"error: {where}: {message}", err=True)
        if rest := [issue for issue in exc.issues if issue not in flags]:
            click.echo(f"error: {source} cannot be used:", err=True)
            for where, message in rest:
                click.echo(f"  {where}: {message}", err=True)
        sys.exit(2)
    except (RunDirError, RunLockedError) as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    except (StateFileError, CheckpointError) as exc:
        click.echo(f"error: the run directory is damaged: {exc}", err=True)
        sys.exit(2)
    except OSError as exc:
        click.echo(f"error: {exc.filename or 'the run directory'}: {exc.strerror or exc}", err=True)
        sys.exit(1)
    except RuntimeError as exc:
        click.echo(f"error: the run failed: {exc}", err=True)
        sys.exit(1)


def _finish(result, target) -> None:
    _print_front(result)
    if result.stopped:
        click.echo(f"stopped early; what was done is in {target} "
                   f"(continue with: evonas resume {target})", err=True)
        sys.exit(STOPPED)


def _print_front(result) -> None:
    from rich.console import Console
    from rich.table import Table

    import objectives

    keys = [objectives.get(o.name, **o.options()).key for o in result.config.objectives]
    evaluated = sum(i.record is not None for i in result.individuals)
    table = Table(title=f"Pareto front: {_plural(len(result.front), 'network')} "
                        f"({evaluated} evaluated)")
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


def _plural(n: int, noun: str) -> str:
    """``n`` and ``noun``, in the plural unless ``n`` is 1: "1 network", "1,024 networks"."""
    return f"{n:,} {noun}" if n == 1 else f"{n:,} {noun}s"


def _number(value: float) -> str:
    return f"{int(value):,}" if float(value).is_integer() and abs(value) >= 1000 else f"{value:.4g}"


def _view(run_dir: str):
    """The run's read-only view; a path that is not a run exits 2."""
    from evonas.store.rundir import RunDirError
    from .runview import RunView

    try:
        view = RunView.load(run_dir)
    except RunDirError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    for note in view.notes:  # damaged lines or checkpoints: said, never silently used
        click.echo(f"warning: {note}", err=True)
    return view


def _entry(view, ident: int):
    try:
        return view.get(ident)
    except KeyError as exc:
        click.echo(f"error: {exc.args[0]}", err=True)
        sys.exit(2)


@main.command()
@click.argument("run_dir", type=click.Path(file_okay=False))
@click.option("--format", "fmt", type=click.Choice(["table", "csv", "json"]), default="table",
              show_default=True)
@click.option("--plot", type=click.Path(dir_okay=False),
              help="Also draw the front to FILE (.png, .pdf, .svg; no suffix: .png).")
@click.option("--force", is_flag=True, help="Replace the plot file if it exists.")
@click.option("--operators", "accounting", is_flag=True,
              help="Also each operator's totals: proposals, duplicates, evaluated, children that "
                   "entered the front (summed over generations), members of the final front, "
                   "seconds, and its weight by generation where the weights adapt (table or json).")
def front(run_dir: str, fmt: str, plot: str | None, force: bool, accounting: bool) -> None:
    """The Pareto front of a run (also of one still running), with test accuracy."""
    import csv as csv_module
    import io

    if accounting and fmt == "csv":
        raise click.UsageError("--operators works with --format table or json")
    view = _view(run_dir)
    picture = _picture(view, plot, force)
    members = view.front()
    keys = list(view.directions)
    rows = [{"id": e.id, "generation": e.generation, "operator": e.operator,
             "objectives": {k: e.objectives[k] for k in keys}, "genome_hash": e.genome_hash,
             "params": e.params, "test_accuracy": e.reported.get("test_accuracy"),
             "epochs": e.epochs} for e in members]
    if fmt == "json":
        click.echo(json.dumps({"front": rows, "operators": view.operators,
                               "in_final_front": _in_final_front(members, view.operators),
                               "weights": {str(g): w for g, w in sorted(view.weights.items())}}
                              if accounting else rows, indent=1))
    elif fmt == "csv":
        out = io.StringIO()
        writer = csv_module.writer(out)
        extra = [] if "params" in keys else ["params"]
        writer.writerow(["id", "generation", "operator", *keys, "test_accuracy", *extra, "epochs",
                         "genome_hash"])
        for r in rows:
            writer.writerow([r["id"], r["generation"], r["operator"],
                             *(_plain(v) for v in r["objectives"].values()),
                             "" if r["test_accuracy"] is None else r["test_accuracy"],
                             *(r["params"] for _ in extra), r["epochs"], r["genome_hash"]])
        click.echo(out.getvalue(), nl=False)
    else:
        from rich.console import Console
        from rich.table import Table

        table = Table(title=f"Pareto front of {view.path}: {_plural(len(rows), 'network')} "
                            f"({len(view.complete)} complete, {len(view.entries)} evaluated)")
        extra = [] if "params" in keys else ["params"]
        for col in ("id", "gen", "operator", *keys, "test acc", *extra, "epochs"):
            table.add_column(col, justify="left" if col == "operator" else "right")
        for r in rows:
            test = r["test_accuracy"]
            table.add_row(str(r["id"]), str(r["generation"]), r["operator"],
                          *(_number(v) for v in r["objectives"].values()),
                          "-" if test is None else f"{test:.4f}",
                          *(f"{r['params']:,}" for _ in extra), str(r["epochs"]))
        Console().print(table)
        if accounting:
            _print_operators(view, members)
    if picture is not None:
        from .plots import plot_front

        click.echo(f"plot: {_drawn(lambda: plot_front(view, picture))}", err=fmt != "table")


OPERATOR_COUNTS = (("proposals", "proposals"), ("duplicates", "duplicates"),
                   ("evaluated", "evaluated"), ("front", "entered front"))


def _in_final_front(members, operators=()) -> dict[str, int]:
    """How many of the front's members each operator made: every one of ``operators`` (0 where
    none), then whatever else made a member ("initial" for generation 0). The journal's "front"
    count is another figure: children that entered the front in their generation, summed over
    the run (many have left it since)."""
    counts: dict[str, int] = dict.fromkeys(operators, 0)
    for e in members:
        counts[e.operator] = counts.get(e.operator, 0) + 1
    return counts


def _print_operators(view, members) -> None:
    """Each operator's totals since the run started (the journal's newest "operators" line),
    and how many of ``members`` (the front printed above) it made."""
    from rich.console import Console

    console = Console()
    if not view.operators:
        console.print("no operator accounting in this run's journal (written after each "
                      "generation by evonas versions that keep it)")
        return
    final = _in_final_front(members, view.operators)
    rows = []
    for name, made in final.items():  # the operators, then the initial population's share
        counts = view.operators.get(name)
        if counts is None:
            rows.append([name, *("-" for _ in OPERATOR_COUNTS), str(made), "-"])
        else:
            rows.append([name, *(str(counts.get(key, 0)) for key, _ in OPERATOR_COUNTS),
                         str(made), f"{float(counts.get('seconds', 0.0)):.2f}"])
    headings = ["operator", *(title for _, title in OPERATOR_COUNTS), "in final front",
                "seconds"]
    table = _operator_table(headings, rows)
    if _width(console, table) > console.width:  # narrow (piped: 80): headings on two lines
        table = _operator_table(["operator", "pro-\nposals", "dupli-\ncates", "eval-\nuated",
                                 "entered\nfront", "in final\nfront", "seconds"], rows)
    console.print(table)
    if view.weights:
        _print_weights(view.weights)


def _operator_table(headings: list[str], rows: list[list[str]]):
    from rich.table import Table

    table = Table(title="operators (totals since the run started)")
    for i, heading in enumerate(headings):  # cells are never cut or folded
        table.add_column(heading, justify="left" if i == 0 else "right", no_wrap=True)
    for row in rows:
        table.add_row(*row)
    return table


def _width(console, table) -> int:
    """The width ``table`` takes when nothing in it wraps."""
    from rich.measure import Measurement

    return Measurement.get(console, console.options.update(width=10_000), table).maximum


WEIGHT_COLUMNS = 20  # generations shown in the weights table at most; evenly spaced, last kept


def _print_weights(weights: dict[int, dict[str, float]]) -> None:
    """The adaptive portfolio's weights by generation (the mix each next generation drew from):
    a row per operator, a column per generation, as many generations as the console's width
    holds whole (evenly spaced, the first and the last kept)."""
    from rich.console import Console
    from rich.table import Table

    console = Console()
    every = sorted(weights)
    names = list(weights[every[-1]])
    corner = "operator \\ gen"
    name_width = max(len(corner) - 1, *(len(n) for n in names)) + 3  # padding, a border
    cell_width = max(5, *(len(str(g)) for g in every)) + 3  # "0.123"
    fits = max(1, (console.width - name_width - 1) // cell_width)
    gens = _spread(every, min(fits, WEIGHT_COLUMNS))
    shown_ = "" if len(gens) == len(every) else f" ({len(gens)} of {len(every)} shown)"
    table = Table(title=f"adaptive operator weights after each generation{shown_}")
    table.add_column(corner, justify="left", no_wrap=True)
    for g in gens:
        table.add_column(str(g), justify="right", no_wrap=True)
    for n in names:
        table.add_row(n, *(f"{weights[g].get(n, 0.0):.3f}" for g in gens))
    console.print(table)


def _spread(items: list, n: int) -> list:
    """``n`` of ``items`` evenly spaced, the first and the last among them (all if fewer)."""
    if len(items) <= n:
        return list(items)
    if n <= 1:
        return [items[-1]]
    return sorted({items[round(i * (len(items) - 1) / (n - 1))] for i in range(n)})


def _plain(value: float) -> float | int:
    """A value for CSV: a whole number without a trailing .0 (a parameter count)."""
    return int(value) if float(value).is_integer() else value


def _picture(view, path: str | None, force: bool, formats: tuple[str, ...] | None = None):
    """The file a plot will go to, checked before anything is printed (exit 2 if refused);
    ``formats``: the suffixes allowed where they are fewer than matplotlib's (graphviz)."""
    if path is None:
        return None
    from .plots import target
    from evonas.store.rundir import OutputError, check_output

    try:
        picture = target(path)
        if formats is not None and picture.suffix.lower().lstrip(".") not in formats:
            raise OutputError(f"cannot draw to {picture.name!r}: the name must end in one of "
                              f"{', '.join('.' + f for f in formats)}")
        check_output(view.path, picture, force=force)
    except OutputError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    return picture


def _drawn(draw):
    from evonas.store.rundir import OutputError

    try:
        return draw()
    except OutputError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)


@main.command()
@click.argument("run_dir", type=click.Path(file_okay=False))
@click.argument("ident", metavar="INDIVIDUAL_ID", type=int)
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text",
              show_default=True)
@click.option("--graph", type=click.Path(dir_okay=False),
              help="Also draw the genome to FILE (.png, .pdf, .svg; no suffix: .png).")
@click.option("--force", is_flag=True, help="Replace the graph file if it exists.")
def show(run_dir: str, ident: int, fmt: str, graph: str | None, force: bool) -> None:
    """One individual: its layers, objective values, learning curve and lineage."""
    view = _view(run_dir)
    entry = _entry(view, ident)
    from .drawing import FORMATS

    picture = _picture(view, graph, force, FORMATS)
    genome = entry.genome
    shapes, counts = genome.shapes(), genome.node_params()
    layers = [{"id": n, "op": genome.op(n), "params": genome.params(n), "inputs": genome.inputs(n),
               "merge": genome.node(n).merge, "output_shape": list(shapes[n]),
               "num_params": counts[n]} for n in genome.nodes]
    lineage = [{"id": e.id, "generation": e.generation, "operator": e.operator,
                "parents": list(e.parents), "detail": e.detail} for e in view.lineage(ident)]
    doc = {"id": entry.id, "generation": entry.generation, "operator": entry.operator,
           "parents": list(entry.parents), "status": entry.status, "reason": entry.reason,
           "objectives": entry.objectives, "reported": entry.reported, "params": entry.params,
           "epochs": entry.epochs, "genome_hash": entry.genome_hash,
           "curve": [{"epoch": int(c[0]), "train_loss": c[1], "val_accuracy": c[2], "seconds": c[3]}
                     for c in entry.curve],
           "layers": layers, "lineage": lineage, "genome": genome.to_dict(),
           "operator_totals": view.operators.get(entry.operator),
           "operator_in_final_front": sum(e.operator == entry.operator for e in view.front()),
           "operator_weights": [[g, w] for g, w in view.weights_of(entry.operator)]}
    if fmt == "json":
        click.echo(json.dumps(doc, indent=1))
    else:
        _show_text(doc)
    if picture is not None:
        from .plots import plot_genome

        path = _drawn(lambda: plot_genome(genome, picture, f"individual {ident}: {len(genome)} "
                                                           f"nodes, {entry.params:,} parameters"))
        click.echo(f"graph: {path}", err=fmt == "json")


def _show_text(doc: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    values = ", ".join(f"{k} {_number(v)}" for k, v in {**doc["objectives"], **doc["reported"]}.items()
                       if k != "params")  # the parameter count is said once, below
    made = f"{doc['operator']} of {', '.join(map(str, doc['parents']))}" if doc["parents"] \
        else f"{doc['operator']} (no parents)"
    console.print(f"[bold]individual {doc['id']}[/bold]: generation {doc['generation']}, "
                  f"{made}, {doc['status']}" + (f" ({doc['reason']})" if doc["reason"] else ""))
    console.print("; ".join(x for x in (values, _plural(doc["params"], "parameter"),
                                        _plural(doc["epochs"], "epoch"),
                                        f"hash {doc['genome_hash']}") if x))
    if (totals := doc.get("operator_totals")) is not None:
        console.print(f"operator {doc['operator']} over the run: " + ", ".join(
            _plural(totals.get(key, 0), noun) for key, noun in (("proposals", "proposal"),
                                                                ("duplicates", "duplicate")))
            + f", {totals.get('evaluated', 0)} evaluated, {totals.get('front', 0)} entered the "
            f"front, {doc['operator_in_final_front']} in the final front, "
            f"{float(totals.get('seconds', 0.0)):.2f} s proposing", highlight=False,
            soft_wrap=True)
    if weights := doc.get("operator_weights"):
        made = next((w for g, w in weights if g == doc["generation"] - 1), None)
        console.print(f"operator {doc['operator']}'s weight in the adaptive mix: "
                      + (f"{made:.3f} when this individual was made, " if made is not None else "")
                      + "by generation " + ", ".join(f"{g}: {w:.3f}" for g, w in weights),
                      highlight=False, soft_wrap=True)
    table = Table(title="layers")
    for col in ("node", "op", "settings", "inputs", "output", "params"):
        table.add_column(col, justify="right" if col == "params" else "left")
    for layer in doc["layers"]:
        table.add_row(layer["id"], layer["op"],
                      " ".join(f"{k}={v}" for k, v in layer["params"].items()),
                      ", ".join(layer["inputs"]) + (f" ({layer['merge']})" if layer["merge"] else ""),
                      "x".join(map(str, layer["output_shape"])),
                      f"{layer['num_params']:,}")
    console.print(table)
    if doc["curve"]:
        curve = Table(title="learning curve")
        for col in ("epoch", "train loss", "val acc", "seconds"):
            curve.add_column(col, justify="right")
        for c in doc["curve"]:
            curve.add_row(str(c["epoch"]), f"{c['train_loss']:.4f}", f"{c['val_accuracy']:.4f}",
                          f"{c['seconds']:.2f}")
        console.print(curve)
    console.print("lineage (back to generation 0):")
    for step in doc["lineage"]:
        made = f"{step['operator']} of {step['parents']}" if step["parents"] else step["operator"]
        detail = f": {step['detail']}" if step["detail"] else ""
        console.print(f"  {step['id']} (generation {step['generation']}) <- {made}{detail}",
                      highlight=False)


@main.command("export")
@click.argument("run_dir", type=click.Path(file_okay=False))
@click.argument("ident", metavar="INDIVIDUAL_ID", type=int)
@click.option("--to", "target", required=True, type=click.Path(dir_okay=False),
              help="FILE.pt (TorchScript), FILE.onnx, or FILE.safetensors (+ FILE.json).")
@click.option("--force", is_flag=True, help="Replace FILE if it exists.")
def export_command(run_dir: str, ident: int, target: str, force: bool) -> None:
    """Write an individual's trained network, taking raw inputs (the run's standardisation is
    inside it), and check it against the run's model."""
    from .export import ExportError, describe, export
    from evonas.store.rundir import RunDirError

    view = _view(run_dir)
    entry = _entry(view, ident)
    try:
        try:
            result = export(view, ident, target, force=force)
        except ExportError:  # a running driver may have moved the weights on: read it again
            from .runview import RunView

            result = export(RunView.load(run_dir), ident, target, force=force)
    except (ExportError, RunDirError) as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    click.echo(describe(result))
    if entry.status == "pruned":
        horizon = view.config.training.epochs
        click.echo(f"note: individual {ident} was pruned at {entry.epochs} of {horizon} epochs "
                   f"(early ranking): it trained less than the horizon, and the export holds the "
                   f"weights it reached",
                   err=True)
    if result.max_difference is not None and result.max_difference > 1e-4:
        click.echo("error: the exported model's outputs differ from the run's model", err=True)
        sys.exit(1)


@main.command("runs")
@click.argument("folder", metavar="[DIR]", required=False, default="runs/out",
                type=click.Path(file_okay=False))
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table",
              show_default=True)
def runs_command(folder: str, fmt: str) -> None:
    """List the run directories under DIR [default: runs/out] (DIR itself if it is a run):
    status, generations, evaluations, best values, hypervolume, last update."""
    from pathlib import Path

    from .listing import list_runs

    root = Path(folder)
    if not root.is_dir():
        click.echo(f"error: {folder} is not a folder (no runs there yet? evonas run writes "
                   f"to runs/out/<name> by default)", err=True)
        sys.exit(2)
    summaries = list_runs(root)
    if fmt == "json":
        click.echo(json.dumps([s.to_dict() for s in summaries], indent=1))
        return
    if not summaries:
        click.echo(f"no runs under {folder}")
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"runs under {folder}")
    for col in ("run", "status", "gen", "evals", "best", "hv", "updated"):
        table.add_column(col, justify="right" if col in ("gen", "evals", "hv") else "left",
                         overflow="fold", no_wrap=col != "best")
    reasons = []
    for s in summaries:
        where = os.path.relpath(s.path, folder)
        name = _capped(s.path if where == "." else where, 200)
        gen = "-" if s.generations is None else f"{s.generations}/{s.planned}"
        best = "\n".join(f"{k} {_number(v)}" for k, v in s.best.items())  # one per line
        table.add_row(name, s.status, gen, str(s.evaluations), best or "-",
                      "-" if s.hypervolume is None else f"{s.hypervolume:.4f}", s.updated or "-")
        if s.reason:
            reasons.append(f"{name}: {_capped(s.reason, 500)}")
    console = Console()
    if not console.is_terminal:  # piped: as wide as the table needs, not 80 columns
        console = Console(width=max(console.width, 200))  # a table takes only what it needs
    console.print(table)
    for line in reasons:  # below the table, where a long reason can be read whole
        console.print(line, highlight=False, soft_wrap=True)


@main.command("report")
@click.argument("run_dirs", metavar="RUN_DIR...", nargs=-1, required=True,
                type=click.Path(file_okay=False))
@click.option("--out", type=click.Path(dir_okay=False),
              help="The HTML file to write [default: chosen by the report].")
@click.option("--force", is_flag=True, help="Replace FILE if it exists.")
def report_command(run_dirs: tuple[str, ...], out: str | None, force: bool) -> None:
    """Write one self-contained HTML report of one run, or of several side by side."""
    from evonas.store.rundir import OutputError, RunDirError

    from .report import write_report

    try:
        path = write_report(list(run_dirs), out, force=force)
    except (OutputError, RunDirError) as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    click.echo(str(path))


@main.command()
@click.argument("config", type=click.Path(dir_okay=False))
@click.option("--set", "overrides", multiple=True, metavar="KEY.PATH=VALUE",
              help="Override a config key (repeatable).")
def validate(config: str, overrides: tuple[str, ...]) -> None:
    """Check a config (loading its task) and print the resolved form."""
    import yaml

    _importable_here()
    cfg, resolved = _config_or_exit(config, overrides)
    click.echo(yaml.safe_dump(cfg.to_dict(), sort_keys=False), nl=False)
    task = resolved.task
    click.echo(f"# task {cfg.task.dataset}: input {task.input_shape}, {task.num_classes} classes, "
               f"{len(task.train)} train / {len(task.val)} validation / "
               f"{len(task.test) if task.test is not None else 0} test samples")
    click.echo(f"# space {cfg.space.kind}: bounds {resolved.space.bounds}")
    if cfg.search.adaptive is not None:
        trains = any(o.cost == "expensive" for o in resolved.objectives)
        mix = cfg.search.operator_specs(resolved.space, trains=trains)
        click.echo(f"# operators (weights adapt from these, p_min {cfg.search.adaptive.p_min:g}): "
                   + ", ".join(f"{name} {weight:g}" for name, (weight, _) in mix.items()))
    click.echo(f"# budget: {_planned(cfg, resolved)}")


def _planned(cfg, resolved) -> str:
    """What a config plans to spend at most, and the budget that may stop it sooner."""
    from .search.budget import plan

    expensive = any(o.cost == "expensive" for o in resolved.objectives)
    planned = plan(cfg, expensive=expensive)
    search = cfg.search
    words = f"plans {_plural(planned.evaluations, 'evaluation')}, "
    words += (f"{_plural(planned.epochs, 'training epoch')} (at most)" if expensive
              else "no training (no objective needs it)")
    words += f", in {_plural(planned.generations, 'generation')} after the initial population"
    if search.max_evaluations is not None \
            and search.max_evaluations < search.population + search.generations * search.offspring:
        words += f"; search.max_evaluations ({search.max_evaluations:,}) binds"
    if search.max_epochs is not None and expensive and planned.epochs == search.max_epochs:
        words += f"; search.max_epochs ({search.max_epochs:,}) binds"
    if search.max_seconds is not None:
        words += (f"; stops at the first generation end past {search.max_seconds:g} s "
                  f"(the generation running then finishes)")
    return words


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
