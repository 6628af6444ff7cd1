"""What the report shows of each run: its label, colour, front, metadata, and hypervolume curves
on one normalisation shared by every run in the report (so the curves compare)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence


from evonas.listing import summarise_view
from evonas.runview import Entry, RunView, hypervolume
from evonas.store.rundir import OutputError

__all__ = ["COLOURS", "Curve", "Run", "hypervolume_curves", "load_runs", "metadata"]

# plotly's default qualitative palette: a run's colour across every figure of the report
COLOURS = ("#636efa", "#ef553b", "#00cc96", "#ab63fa", "#ffa15a", "#19d3f3", "#ff6692", "#b6e880",
           "#ff97ff", "#fecb52")


@dataclass
class Run:
    """One run of the report: its view, a label unique in the report, a colour, its front, and
    the HTML id of each front member's section (``ind-<id>``; ``r<k>-ind-<id>`` with several
    runs, where ids repeat)."""

    view: RunView
    index: int
    label: str
    colour: str
    front: list[Entry]
    anchors: dict[int, str] = field(default_factory=dict)

    @property
    def keys(self) -> list[str]:
        return list(self.view.directions)


@dataclass
class Curve:
    """Hypervolume of each generation's front, with the run's wall-clock seconds at its end
    (None where the journal has no ``elapsed``) and the evaluation seconds summed up to it."""

    generations: list[int]
    hypervolume: list[float]
    elapsed: list[float | None]
    compute: list[float]


def load_runs(paths: Sequence[Path]) -> list[Run]:
    """Each run read through ``RunView`` (``RunDirError`` names an unreadable one); several
    runs must share their objectives and directions to be drawn on the same axes."""
    views = [RunView.load(p) for p in paths]
    first = views[0]
    for view in views[1:]:
        if view.directions != first.directions:
            raise OutputError(
                f"cannot compare {view.path} with {first.path}: their objectives differ "
                f"({_objectives(view)} against {_objectives(first)}); report them separately")
    names = [v.config.name for v in views]
    runs = []
    for k, view in enumerate(views):
        label = view.config.name
        if names.count(label) > 1:
            label = f"{label} ({view.path.name})"
        if [r.label for r in runs].count(label):
            label = f"{label} #{k + 1}"
        front = view.front()
        prefix = "" if len(views) == 1 else f"r{k}-"
        runs.append(Run(view, k, label, COLOURS[k % len(COLOURS)], front,
                        {e.id: f"{prefix}ind-{e.id}" for e in front}))
    return runs


def _objectives(view: RunView) -> str:
    return ", ".join(f"{k} ({d})" for k, d in view.directions.items())


def hypervolume_curves(runs: Sequence[Run]) -> list[Curve]:
    """Each run's hypervolume per generation, objectives scaled to [0, 1] over every complete
    individual of every run in the report, reference point 1.1 in each (as
    ``RunView.hypervolumes`` does for one run)."""
    every = [e for run in runs for e in run.view.complete]  # one scale over all the runs
    if not every:
        return [Curve([], [], [], []) for _ in runs]
    directions = runs[0].view.directions
    curves = []
    for run in runs:
        view = run.view
        spent = sorted((e.generation, e.seconds) for e in view.entries.values())
        curve = Curve([], [], [], [])
        for generation, event in sorted(view.generations.items()):
            members = [view.entries[i] for i in event.get("front", [])
                       if i in view.entries and view.entries[i].status == "complete"]
            value = hypervolume(members, every, directions)
            elapsed = event.get("elapsed")
            curve.generations.append(generation)
            curve.hypervolume.append(value)
            curve.elapsed.append(float(elapsed) if isinstance(elapsed, (int, float)) else None)
            curve.compute.append(round(sum(s for g, s in spent if g <= generation), 3))
        curves.append(curve)
    return curves


def metadata(view: RunView) -> list[tuple[str, str]]:
    """(what, value) rows about a run: name, status, versions, progress, times, devices."""
    from evonas import __version__

    config = view.config
    counts: dict[str, int] = {}
    for entry in view.entries.values():
        counts[entry.status] = counts.get(entry.status, 0) + 1
    done = max(view.generations) if view.generations else None
    dispatch = config.dispatch
    return [
        ("name", config.name),
        ("run directory", str(view.path)),
        ("status", status(view)),
        ("evonas version", _version(view, __version__)),
        ("generations", f"{'none finished' if done is None else done} of {config.search.generations}"),
        ("evaluations", f"{len(view.entries)} individuals: " + ", ".join(
            f"{n} {s}" for s, n in sorted(counts.items())) if counts else "none yet"),
        ("front", f"{len(view.front())} of {len(view.complete)} complete"),
        ("started", str((view.started or {}).get("time") or _mtime(view.path / "config.yaml"))),
        ("last update", summarise_view(view).updated or "unknown"),
        ("devices", f"{dispatch.devices}, {dispatch.workers_per_device} worker(s) per device, "
                    f"backend {dispatch.backend}"),
        ("objectives", _objectives(view)),
        ("task", f"{config.task.dataset}"),
        ("space", f"{config.space.kind}"),
    ]


def status(view: RunView) -> str:
    """As ``evonas runs`` says it: running (its lock is held), finished, stopped or damaged
    (with the first reason)."""
    summary = summarise_view(view)
    done = summary.generations
    text = summary.status
    if text == "stopped":
        text += f" after generation {done}" if done is not None else " before generation 0"
    elif text == "damaged":
        text += f": {summary.reason}"
    return text


def _version(view: RunView, writer: str) -> str:
    """The evonas version the run recorded when it started, and this report's where they differ."""
    ran = (view.started or {}).get("evonas")
    if not isinstance(ran, str):
        return f"{writer} (wrote this report; the run does not record its own)"
    return ran if ran == writer else f"{ran} (this report by {writer})"


def _mtime(path: Path) -> str:
    try:
        return dt.datetime.fromtimestamp(path.stat().st_mtime).strftime("%Y-%m-%d %H:%M:%S")
    except OSError:
        return "unknown"
