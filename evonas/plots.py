"""Pictures of a run: the Pareto front with the hypervolume per generation, and a genome's graph.

matplotlib with the Agg back-end: files only, no display needed.
"""

from __future__ import annotations

import os
from itertools import combinations
from pathlib import Path

import networkx as nx

from genomes import Genome

from evonas.store.rundir import OutputError
from .runview import RunView

__all__ = ["plot_front", "plot_genome", "target"]


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
                   s=18, color="0.6", alpha=0.35, label=f"evaluated ({len(done)})")
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
    ax.set_ylabel("hypervolume (normalised, ref 1.1)")
    ax.grid(alpha=0.3)
    fig.suptitle(f"{view.config.name}: {len(front)} on the front of {len(done)} evaluated")
    fig.tight_layout()
    return _save(fig, path, plt)


def plot_genome(genome: Genome, path: str | Path, title: str = "") -> Path:
    """The genome's layers top to bottom, each box labelled with id, op, settings and shape;
    a skip connection (an edge over more than one layer) is drawn as an arc."""
    plt = _pyplot()
    graph = nx.DiGraph(genome.graph)
    layers = list(nx.topological_generations(graph))
    for layer, nodes in enumerate(layers):
        for node in nodes:
            graph.nodes[node]["layer"] = layer
    pos = {n: (x, -y) for n, (x, y) in
           nx.multipartite_layout(graph, subset_key="layer", align="horizontal").items()}
    shapes = genome.shapes()
    labels = {n: f"{n}: {_describe(genome, n)}\n{'x'.join(map(str, shapes[n]))}" for n in graph}
    fig, ax = plt.subplots(figsize=(max(5, 2.6 * max(len(g) for g in layers)), max(4, 0.75 * len(layers))))
    layer_of = nx.get_node_attributes(graph, "layer")
    near = [(u, v) for u, v in graph.edges if layer_of[v] - layer_of[u] == 1]
    skips = [(u, v) for u, v in graph.edges if layer_of[v] - layer_of[u] > 1]
    nx.draw_networkx_edges(graph, pos, edgelist=near, ax=ax, arrows=True, arrowsize=10,
                           edge_color="0.45", node_size=2200)
    nx.draw_networkx_edges(graph, pos, edgelist=skips, ax=ax, arrows=True, arrowsize=10,
                           edge_color="tab:orange", node_size=2200, connectionstyle="arc3,rad=0.35")
    nx.draw_networkx_labels(graph, pos, labels=labels, ax=ax, font_size=7,
                            bbox={"boxstyle": "round", "fc": "#dbe9f6", "ec": "#4a7fb0"})
    ax.set_title(title or f"{len(genome)} nodes, {genome.num_params():,} parameters")
    ax.axis("off")
    ax.margins(0.15, 0.05)
    fig.tight_layout()
    return _save(fig, path, plt)


def _describe(genome: Genome, node: str) -> str:
    params = genome.params(node)
    short = {"channels": "c", "kernel": "k", "stride": "s", "units": "u", "fn": ""}
    text = " ".join(f"{short[k]}={v}" if short[k] else str(v)
                    for k, v in params.items() if k in short and v is not None and v != 1)
    merge = genome.node(node).merge
    return " ".join(x for x in (genome.op(node), text, f"[{merge}]" if merge else "") if x)


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
