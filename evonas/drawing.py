"""Genome and lineage drawings laid out by Graphviz's ``dot``: one module for ``show --graph``
and the HTML report, so both draw the same picture.

A genome is drawn top to bottom (deep chains stay readable; left to right they grow wider than a
screen). Every edge has an arrowhead; a node's box is coloured by its op family and says its op,
key settings, id and output shape; a merge node (several inputs) has a double border and names
its merge; a skip connection (an edge that bypasses a longer path) is dashed and orange, routed by
``dot`` around the boxes; a legend explains the colours and styles. Node and edge elements of the
SVG carry classes (``node merge add``, ``edge skip``, ``legend``) for styling and tests.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Iterable, Mapping
from itertools import pairwise
from pathlib import Path
from typing import Any

import graphviz
import networkx as nx

from evonas.store.rundir import OutputError
from evonas.store.files import write_atomic
from genomes import Genome, GenomeError

__all__ = ["FAMILIES", "FORMATS", "LEGEND", "draw_genome", "genome_dot", "genome_svg", "lineage_dot",
           "lineage_svg", "skip_edges"]

# op family -> (fill colour, ops); an op in none of them is drawn as "other"
FAMILIES: dict[str, tuple[str, tuple[str, ...]]] = {
    "input / output": ("#e6e6e6", ("input", "output")),
    "convolution": ("#cfe2f3", ("conv", "sepconv")),
    "normalisation / activation": ("#d9ead3", ("batchnorm", "act")),
    "pooling": ("#fff2cc", ("maxpool", "avgpool", "globalpool")),
    "dense": ("#e4d7ef", ("dense", "flatten")),
    "identity / zero": ("#ffffff", ("identity", "zero")),
}
_OTHER = ("other", "#f4cccc")
_FAMILY_OF = {op: (name, colour) for name, (colour, ops) in FAMILIES.items() for op in ops}
# the file formats dot writes that a user may ask for by suffix
FORMATS = ("png", "svg", "pdf", "jpg", "jpeg", "gif", "eps", "ps", "svgz")
_FONT = "Helvetica,Arial,sans-serif"
LEGEND = "-legend-"  # the legend's node name (its SVG <title>)
_EDGE, _SKIP, _MERGE = "#555555", "#e69138", "#8a4b08"
_INSTALL = ("Graphviz's 'dot' program is needed to draw graphs and was not found on PATH; "
            "install it (apt-get install graphviz, or conda install graphviz)")


def skip_edges(genome: Genome) -> set[tuple[str, str]]:
    """Edges ``u -> v`` that bypass a longer path from ``u`` to ``v`` (residual or dense
    shortcuts): those the transitive reduction of the graph drops."""
    graph = nx.DiGraph(genome.graph.edges)
    graph.add_nodes_from(genome.nodes)
    if not nx.is_directed_acyclic_graph(graph):
        return set()
    return set(graph.edges) - set(nx.transitive_reduction(graph).edges)


def genome_dot(genome: Genome, title: str | None = None) -> graphviz.Digraph:
    """The genome as a ``graphviz.Digraph`` (not yet laid out): for callers that want to add
    attributes or render to a format of their own."""
    try:
        shapes = genome.shapes()
        params = genome.num_params()
    except GenomeError:  # a broken genome is still drawn, without shapes
        shapes, params = {}, None
    if title is None:
        title = f"{len(genome)} nodes" + ("" if params is None else f", {params:,} parameters")
    dot = graphviz.Digraph("genome", graph_attr={
        "id": f"genome_{genome.canonical_hash()[:10]}" if shapes else "genome",
        "rankdir": "TB", "nodesep": "0.3", "ranksep": "0.35", "fontname": _FONT,
        "label": _html(f"<b>{_esc(title)}</b>"), "labelloc": "t", "fontsize": "13",
        "bgcolor": "white", "pad": "0.2"},
        node_attr={"shape": "box", "style": "rounded,filled", "fontname": _FONT, "fontsize": "10",
                   "color": "#666666", "margin": "0.12,0.05"},
        edge_attr={"color": _EDGE, "arrowhead": "normal", "arrowsize": "0.7", "penwidth": "1.1"})
    families = []
    for node in genome.topological_order() if _acyclic(genome) else genome.nodes:
        family, colour = _FAMILY_OF.get(genome.op(node), _OTHER)
        if family not in families:
            families.append(family)
        merge, inputs = genome.node(node).merge, genome.inputs(node)
        attrs = {"fillcolor": colour, "tooltip": graphviz.nohtml(_tooltip(genome, node, shapes)),
                 "class": "layer"}
        if len(inputs) > 1 or merge:
            attrs.update({"peripheries": "2", "color": _MERGE, "penwidth": "1.4",
                          "style": "filled", "class": f"layer merge {merge or 'none'}"})
        dot.node(node, _html(_node_label(genome, node, shapes.get(node), merge, len(inputs))),
                 **attrs)
    skips = skip_edges(genome)
    for node in genome.nodes:
        inputs = genome.inputs(node)
        ports = genome.node(node).merge == "concat" and len(inputs) > 1
        for port, src in enumerate(inputs):
            attrs = {"class": "skip" if (src, node) in skips else "flow"}
            if (src, node) in skips:
                attrs.update({"color": _SKIP, "style": "dashed", "penwidth": "1.5"})
            if ports:  # a concat's input order fixes its channel order
                attrs.update({"headlabel": str(port + 1), "labelfontsize": "8",
                              "labelfontcolor": _MERGE, "labeldistance": "1.4"})
            dot.edge(src, node, **attrs)
    # the legend on a rank of its own under the last layer: beside a layer it would stretch
    # that layer's rank to its own height. Its name cannot be a node id (those have no '-').
    dot.node(LEGEND, _html(_legend(families, bool(skips))), shape="plaintext", style="",
             margin="0", **{"class": "legend"})
    for node in genome.nodes:
        if not genome.successors(node):
            dot.edge(node, LEGEND, style="invis")
    return dot


def genome_svg(genome: Genome, title: str | None = None) -> str:
    """The genome's drawing as an ``<svg ...>...</svg>`` string to inline in HTML (no XML
    prolog); ``OutputError`` where Graphviz is not installed."""
    return _svg(genome_dot(genome, title))


def draw_genome(genome: Genome, path: str | Path, title: str | None = None) -> Path:
    """Write the genome's drawing to ``path`` in the format its suffix names (.png when it has
    none) and return the path written; ``OutputError`` for a format or place that cannot be."""
    path = Path(path)
    if not path.suffix:
        path = path.with_suffix(".png")
    fmt = path.suffix.lower().lstrip(".")
    if fmt not in FORMATS:
        raise OutputError(f"cannot draw a graph to {path.name!r}: the name must end in one of "
                          f"{', '.join('.' + f for f in FORMATS)}")
    dot = genome_dot(genome, title)
    if fmt not in ("svg", "svgz", "pdf", "eps", "ps"):
        dot.graph_attr["dpi"] = "110"  # pixels: the default 72 dpi is blurry
    data = _pipe(dot, fmt)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, data, sync=False)
    except OSError as exc:
        raise OutputError(f"cannot write {path}: {exc.strerror or exc}") from None
    return path


def lineage_dot(entries: Iterable[Any], *, highlight: Iterable[int] = (),
                link: Callable[[int], str] | None = None,
                title: str | None = None) -> graphviz.Digraph:
    """A lineage DAG: one node per individual (id, generation, operator), an arrow from each
    parent to its child, and one rank per generation (labelled on the left).

    ``entries`` are objects or mappings with ``id``, ``generation``, ``operator`` and
    ``parents``, and optionally ``status`` (``RunView`` entries, or ``show``'s lineage rows);
    parents not among them are left out; a pruned or failed one is dashed. ``highlight`` ids (the front, say) are drawn bold; ``link(id)`` gives each node
    an SVG link, e.g. ``lambda i: f"#individual-{i}"``.
    """
    items = {int(_get(e, "id")): e for e in entries}
    marked = {int(i) for i in highlight}
    dot = graphviz.Digraph("lineage", graph_attr={
        "id": "lineage", "rankdir": "TB", "nodesep": "0.2", "ranksep": "0.4", "fontname": _FONT,
        "bgcolor": "white", "pad": "0.2", "newrank": "true",
        **({"label": _html(f"<b>{_esc(title)}</b>"), "labelloc": "t"} if title else {})},
        node_attr={"shape": "box", "style": "rounded,filled", "fillcolor": "#f3f3f3",
                   "fontname": _FONT, "fontsize": "9", "color": "#888888", "margin": "0.08,0.03"},
        edge_attr={"color": _EDGE, "arrowhead": "normal", "arrowsize": "0.6"})
    generations = sorted({int(_get(e, "generation")) for e in items.values()})
    for a, b in pairwise(generations):  # an invisible spine fixes one rank per generation
        dot.edge(f"gen_{a}", f"gen_{b}", style="invis")
    for g in generations:
        with dot.subgraph() as rank:
            rank.attr(rank="same")
            rank.node(f"gen_{g}", f"generation {g}", shape="plaintext", style="", fontsize="9",
                      fontcolor="#777777", **{"class": "generation"})
            for ident, e in sorted(items.items()):
                if int(_get(e, "generation")) != g:
                    continue
                attrs = {"class": "individual front" if ident in marked else "individual",
                         "id": f"lineage_{ident}",
                         "tooltip": graphviz.nohtml(f"individual {ident}, generation {g}, "
                                                    f"{_get(e, 'operator') or 'initial'}")}
                status = _get(e, "status", "complete")
                if ident in marked:
                    attrs.update({"fillcolor": "#fde2d2", "color": "#cc4125", "penwidth": "2"})
                if status in ("pruned", "failed"):
                    attrs.update({"style": "rounded,filled,dashed", "fillcolor": "#ffffff"})
                if link is not None:
                    attrs.update({"href": graphviz.nohtml(link(ident)), "target": "_top"})
                label = (f"<b>#{ident}</b><br/><font point-size=\"8\" color=\"#555555\">"
                         f"{_esc(_get(e, 'operator') or 'initial')}"
                         f"{'' if status == 'complete' else ' (' + _esc(status) + ')'}</font>")
                rank.node(f"i{ident}", _html(label), **attrs)
    for ident, e in sorted(items.items()):
        for parent in _get(e, "parents") or ():
            if int(parent) in items:
                dot.edge(f"i{int(parent)}", f"i{ident}", **{"class": "descent"})
    return dot


def lineage_svg(entries: Iterable[Any], *, highlight: Iterable[int] = (),
                link: Callable[[int], str] | None = None, title: str | None = None) -> str:
    """``lineage_dot`` as an inline ``<svg ...>...</svg>`` string."""
    return _svg(lineage_dot(entries, highlight=highlight, link=link, title=title))


# ---------------------------------------------------------------------- labels
def _node_label(genome: Genome, node: str, shape: tuple[int, ...] | None, merge: str | None,
                fan_in: int) -> str:
    rows = []
    if fan_in > 1 or merge:
        symbol = {"add": "\u2295 ", "concat": "\u2225 "}.get(merge or "", "")
        rows.append(f"<font point-size=\"9\" color=\"{_MERGE}\"><b>{symbol}"
                    f"{_esc(merge or 'no merge set')} of {fan_in}</b></font>")
    settings = _settings(genome, node)
    # a no-break space: SVG text drops a plain one between the bold op and its settings
    rows.append(f"<b>{_esc(genome.op(node))}</b>" + (f"&#160;{_esc(settings)}" if settings else ""))
    out = "\u00d7".join(map(str, shape)) if shape else "?"
    rows.append(f"<font point-size=\"8\" color=\"#555555\">{_esc(node)} \u2192 {out}</font>")
    return "<br/>".join(rows)


def _settings(genome: Genome, node: str) -> str:
    """The settings that tell layers apart: channels, kernel, stride, dilation, groups, units,
    activation, pooling mode."""
    p = genome.params(node)
    parts = []
    if "kernel" in p:
        parts.append("\u00d7".join([str(p["kernel"])] * genome.ndim))
    if "channels" in p:
        parts.append(f"{p['channels']} ch")
    if "units" in p:
        parts.append(f"{p['units']} units")
    stride = p["kernel"] if "kernel" in p and p.get("stride", 1) is None else p.get("stride", 1)
    if stride != 1:  # a pool's stride None means its kernel size
        parts.append(f"stride {stride}")
    for key, word in (("dilation", "dil"), ("groups", "groups")):
        if p.get(key, 1) != 1:
            parts.append(f"{word} {p[key]}")
    for key in ("fn", "mode"):
        if key in p:
            parts.append(str(p[key]))
    return ", ".join(parts)


def _tooltip(genome: Genome, node: str, shapes: Mapping[str, tuple[int, ...]]) -> str:
    params = ", ".join(f"{k}={v}" for k, v in genome.params(node).items())
    inputs = genome.inputs(node)
    text = f"{node}: {genome.op(node)}" + (f"({params})" if params else "")
    if inputs:
        text += f"; from {', '.join(inputs)}"
    if node in shapes:
        text += f"; out {'x'.join(map(str, shapes[node]))}"
    return text


def _legend(families: list[str], skips: bool) -> str:
    colours = {**{name: colour for name, (colour, _) in FAMILIES.items()}, _OTHER[0]: _OTHER[1]}
    rows = ["<tr><td colspan=\"2\" align=\"left\"><b>legend</b></td></tr>"]
    for family in families:
        rows.append(f"<tr><td bgcolor=\"{colours[family]}\" border=\"1\" color=\"#666666\" "
                    f"width=\"18\"> </td><td align=\"left\">{_esc(family)}</td></tr>")
    rows.append(f"<tr><td border=\"2\" color=\"{_MERGE}\" width=\"18\"> </td><td align=\"left\">"
                f"merge (double border): \u2295 add, \u2225 concat (inputs numbered)</td></tr>")
    rows.append(f"<tr><td><font color=\"{_EDGE}\">\u2500\u2500\u25b6</font></td>"
                f"<td align=\"left\">data flow</td></tr>")
    if skips:
        rows.append(f"<tr><td><font color=\"{_SKIP}\">\u254c\u254c\u25b6</font></td>"
                    f"<td align=\"left\">skip connection (bypasses layers)</td></tr>")
    return (f"<font point-size=\"9\"><table border=\"1\" color=\"#bbbbbb\" cellborder=\"0\" "
            f"cellspacing=\"3\" cellpadding=\"2\" bgcolor=\"white\">{''.join(rows)}</table></font>")


# ---------------------------------------------------------------------- helpers
def _esc(text: Any) -> str:
    return html.escape(str(text), quote=True)


def _html(label: str) -> str:
    """Mark a label as Graphviz HTML (every piece of text in it is already escaped)."""
    return f"<{label}>"


def _get(item: Any, key: str, *default: Any) -> Any:
    if isinstance(item, Mapping):
        return item.get(key, *default) if default else item[key]
    return getattr(item, key, *default)


def _acyclic(genome: Genome) -> bool:
    try:
        genome.topological_order()
    except (nx.NetworkXUnfeasible, GenomeError):
        return False
    return True


def _pipe(dot: graphviz.Digraph, fmt: str) -> bytes:
    """Lay out and render with ``dot``; ``OutputError`` (with an install hint) if it is missing."""
    try:
        return dot.pipe(format=fmt)
    except graphviz.ExecutableNotFound:
        raise OutputError(_INSTALL) from None
    except graphviz.CalledProcessError as exc:
        detail = (exc.stderr or b"").decode("utf-8", "replace").strip()[:300]
        raise OutputError(f"Graphviz's dot could not draw the graph: {detail or exc}") from None


def _svg(dot: graphviz.Digraph) -> str:
    text = _pipe(dot, "svg").decode("utf-8")
    return text[text.index("<svg"):].strip()
