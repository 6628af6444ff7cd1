"""Pictures of a run: the Pareto front with the hypervolume per generation, and a genome's graph.

The front is drawn by matplotlib with the Agg back-end (files only, no display needed); the
genome by Graphviz, through ``evonas.drawing``.
"""

from __future__ import annotations

import os
from collections import Counter
from itertools import combinations
from pathlib import Path

from evonas.store.rundir import OutputError
from genomes import Genome

from .drawing import draw_genome
from .runview import RunView

__all__ = ["counted", "plot_front", "plot_genome", "target"]


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_front(view: RunView, path: str | Path) -> Path:
    """Two objectives: a scatter of every complete individual (faded) with the front on top.
    More: one such panel per pair of objectives. Last panel: hypervolume per generation."""
    plt = _pyplot()
    keys = list(view.directions)
    pairs = list(combinations(range(len(keys)), 2)) or [(0, 0)]
    fig, axes = plt.subplots(1, len(pairs) + 1, figsize=(5 * (len(pairs) + 1), 4.2), squeeze=False)
    done, front = view.complete, view.front()
    front_ids = {e.id for e in front}
    for ax, (i, j) in zip(axes[0], pairs):
        rest = [e for e in done if e.id not in front_ids]
        ax.scatter([e.objectives[keys[i]] for e in rest], [e.objectives[keys[j]] for e in rest],
                   s=18, color="0.6", alpha=0.35, label=f"dominated ({len(rest)})")
        ordered = sorted(front, key=lambda e: e.objectives[keys[i]])
        xs, ys = [e.objectives[keys[i]] for e in ordered], [e.objectives[keys[j]] for e in ordered]
        ax.plot(xs, ys, "-o", color="tab:red", ms=6, lw=1, label=f"Pareto front ({len(front)})")
        for e, x, y in zip(ordered, xs, ys):
            ax.annotate(str(e.id), (x, y), textcoords="offset points", xytext=(4, 4), fontsize=7)
        ax.set_xlabel(f"{keys[i]} ({_arrow(view.directions[keys[i]])})")
        ax.set_ylabel(f"{keys[j]} ({_arrow(view.directions[keys[j]])})")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    hv = view.hypervolumes()
    ax = axes[0][-1]
    ax.plot([g for g, _ in hv], [v for _, v in hv], "-o", color="tab:blue")
    ax.set_xlabel("generation")
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.set_ylabel("hypervolume (normalised, ref 1.1)")
    ax.grid(alpha=0.3)
    fig.suptitle(f"{view.config.name}: {len(front)} on the Pareto front; {counted(view)}")
    fig.tight_layout()
    return _save(fig, path, plt)


def plot_genome(genome: Genome, path: str | Path, title: str = "") -> Path:
    """The genome drawn as a DAG by Graphviz (``evonas.drawing.draw_genome``, also used by the
    HTML report); the format follows the suffix. Returns the path written."""
    return draw_genome(genome, path, title or None)


def counted(view: RunView) -> str:
    """What a run's individuals came to, e.g. "15 evaluated: 11 complete, 4 pruned": every
    individual with a record counts as evaluated, as in the tables of ``run`` and ``front``."""
    statuses = Counter(e.status for e in view.entries.values())
    complete = len(view.complete)  # complete with every objective
    parts = [f"{complete} complete"] + [f"{statuses[s]} {s}" for s in ("pruned", "failed", "running")
                                        if statuses[s]]
    return f"{len(view.entries)} evaluated: {', '.join(parts)}"


def _arrow(direction: str) -> str:
    return "lower is better" if direction == "min" else "higher is better"


def target(path: str | Path) -> Path:
    """The file a picture goes to: ``.png`` added where the name has no suffix; ``OutputError``
    for a format matplotlib cannot write."""
    path = Path(path)
    if not path.suffix:
        return path.with_suffix(".png")
    formats = _pyplot().figure().canvas.get_supported_filetypes()
    _pyplot().close("all")
    if path.suffix.lower().lstrip(".") not in formats:
        raise OutputError(f"cannot draw to {path.name!r}: the name must end in one of "
                          f"{', '.join('.' + f for f in sorted(formats))}")
    return path


def _save(fig, path: str | Path, plt) -> Path:
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp{path.suffix}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(tmp, dpi=110)
        os.replace(tmp, path)
    except OSError as exc:
        raise OutputError(f"cannot write {path}: {exc.strerror or exc}") from None
    finally:
        plt.close(fig)
        if tmp.exists():
            tmp.unlink()
    return path
