"""The report's plotly figures: the Pareto front (pairwise for more than two objectives),
hypervolume against generation and time, operator counts and weights, the front's lineage, and
learning curves. Each returns a ``plotly.graph_objects.Figure``; page.py embeds them as JSON.

Text that comes from a run (names, operators, details) is HTML-escaped before it goes into a
hover label, since plotly reads a small set of HTML tags (links among them) from label text.
A point that stands for a front member carries the HTML id of its section as ``customdata``:
the page's click handler scrolls there.
"""

from __future__ import annotations

import html
from itertools import combinations
from typing import Sequence

from evonas.runview import Entry

from .runs import COLOURS, Curve, Run

__all__ = ["front_figure", "hypervolume_figure", "learning_figure", "lineage_figure",
           "operators_figure", "weights_figure"]

_FADED = 0.28
_HEIGHT = 430


def _go():
    import plotly.graph_objects as go

    return go


def _subplots(**kwargs):
    from plotly.subplots import make_subplots

    return make_subplots(**kwargs)


def number(value: float) -> str:
    """A value as a person reads it: integers without a decimal point, others to 4 digits."""
    return f"{int(value):,}" if float(value).is_integer() else f"{value:.4g}"


def hover(run: Run, entry: Entry, several: bool) -> str:
    """The hover label of an individual: id (and run), operator, objective values, test accuracy."""
    head = f"<b>#{entry.id}</b>" + (f" · {html.escape(run.label)}" if several else "")
    rows = [head, f"operator: {html.escape(entry.operator or '?')} · generation {entry.generation}"]
    rows += [f"{html.escape(k)}: {number(entry.objectives[k])}" for k in run.keys if k in entry.objectives]
    accuracy = entry.reported.get("test_accuracy")
    rows.append("test accuracy: " + (f"{accuracy:.4f}" if accuracy is not None else "not measured"))
    return "<br>".join(rows)


def _title(run: Run, key: str) -> str:
    better = "lower" if run.view.directions[key] == "min" else "higher"
    return f"{html.escape(key)} ({better} is better)"


def front_figure(runs: Sequence[Run]):
    """Every complete individual (faded) with the front on top, per run in its colour; one panel
    for two objectives, one per pair of objectives for more (one objective: against generation).
    Front traces have uid ``front-<run>-<panel>``, the rest ``rest-<run>-<panel>``."""
    go = _go()
    keys = runs[0].keys
    several = len(runs) > 1
    if len(keys) == 1:
        pairs = [(None, keys[0])]
    else:
        pairs = [(keys[i], keys[j]) for i, j in combinations(range(len(keys)), 2)]
    cols = min(len(pairs), 3)
    rows = -(-len(pairs) // cols)
    fig = _subplots(rows=rows, cols=cols, horizontal_spacing=0.08, vertical_spacing=0.12)
    for panel, (kx, ky) in enumerate(pairs):
        row, col = panel // cols + 1, panel % cols + 1
        for run in runs:
            ids = set(run.anchors)
            rest = [e for e in run.view.complete if e.id not in ids]
            front = sorted(run.front, key=lambda e: _value(e, kx))

            def trace(entries, role, **style):
                return go.Scatter(
                    x=[_value(e, kx) for e in entries], y=[e.objectives[ky] for e in entries],
                    text=[hover(run, e, several) for e in entries], hovertemplate="%{text}<extra></extra>",
                    customdata=[run.anchors.get(e.id, "") for e in entries],
                    uid=f"{role}-{run.index}-{panel}", legendgroup=f"{role}-{run.index}",
                    showlegend=panel == 0, **style)

            fig.add_trace(trace(rest, "rest", mode="markers", name=f"{_prefix(run, several)}complete "
                                f"({len(run.view.complete)})",
                                marker={"color": run.colour, "size": 7, "opacity": _FADED}),
                          row=row, col=col)
            fig.add_trace(trace(front, "front", mode="lines+markers" if len(pairs) == 1 and kx else "markers",
                                name=f"{_prefix(run, several)}Pareto front ({len(front)})",
                                marker={"color": run.colour, "size": 11,
                                        "line": {"color": "#222", "width": 1}},
                                line={"color": run.colour, "width": 1.5}), row=row, col=col)
        fig.update_xaxes(title_text=_title(runs[0], kx) if kx else "generation",
                         type=_scale(runs, kx), row=row, col=col)
        fig.update_yaxes(title_text=_title(runs[0], ky), type=_scale(runs, ky), row=row, col=col)
    fig.update_layout(height=_HEIGHT * rows + (60 if rows > 1 else 0), hovermode="closest",
                      legend={"orientation": "h", "y": -0.18 if rows == 1 else -0.08},
                      margin={"t": 30}, clickmode="event")
    return fig


def _scale(runs: Sequence[Run], key: str | None) -> str:
    """"log" for an objective whose positive values span more than two decades (sizes, FLOPs),
    where a linear axis would crowd the small networks into a line."""
    values = [e.objectives[key] for run in runs for e in run.view.complete] if key else []
    return "log" if values and min(values) > 0 and max(values) > 100 * min(values) else "linear"


def _prefix(run: Run, several: bool) -> str:
    return f"{html.escape(run.label)}: " if several else ""


def _value(entry: Entry, key: str | None) -> float:
    return entry.generation if key is None else entry.objectives[key]


def hypervolume_figure(runs: Sequence[Run], curves: Sequence[Curve]):
    """Hypervolume (shared normalisation) against generation, wall-clock seconds, and summed
    evaluation seconds, one line per run."""
    go = _go()
    fig = _subplots(rows=1, cols=3, shared_yaxes=True, horizontal_spacing=0.04)
    for run, curve in zip(runs, curves):
        name = run.label
        timed = [(t, v) for t, v in zip(curve.elapsed, curve.hypervolume) if t is not None]
        series = [(curve.generations, curve.hypervolume, "generation %{x}"),
                  ([t for t, _ in timed], [v for _, v in timed], "%{x:.1f} s since the start"),
                  (curve.compute, curve.hypervolume, "%{x:.1f} evaluation seconds")]
        for col, (xs, ys, where) in enumerate(series, start=1):
            fig.add_trace(go.Scatter(
                x=xs, y=ys, mode="lines+markers", name=html.escape(name), legendgroup=f"run-{run.index}",
                showlegend=col == 1 and len(runs) > 1, line={"color": run.colour},
                text=[html.escape(name)] * len(xs),  # run text goes in values, never in a template
                hovertemplate=f"%{{text}}<br>{where}<br>hypervolume %{{y:.4f}}<extra></extra>"),
                row=1, col=col)
    last = max((max(c.generations, default=0) for c in curves), default=0)
    fig.update_xaxes(title_text="generation", dtick=1 if last <= 20 else None, row=1, col=1)
    fig.update_xaxes(title_text="wall-clock seconds", row=1, col=2)
    fig.update_xaxes(title_text="evaluation seconds (summed)", row=1, col=3)
    fig.update_yaxes(title_text="hypervolume (normalised, ref 1.1)", row=1, col=1)
    fig.update_layout(height=380, margin={"t": 30}, hovermode="closest")
    return fig


def operators_figure(run: Run):
    """Per operator: proposals, evaluated and front entries from the journal's accounting (or,
    for a run that wrote none, evaluated and in the current front counted from its
    individuals)."""
    go = _go()
    view = run.view
    if view.operators:
        names = list(view.operators)
        bars = {what: [int(view.operators[n].get(key, 0)) for n in names]
                for what, key in (("proposals", "proposals"), ("evaluated", "evaluated"),
                                  ("entered the front", "front"))}
    else:
        names = sorted({e.operator for e in view.entries.values()})
        bars = {"evaluated": [sum(e.operator == n for e in view.entries.values()) for n in names],
                "in the front": [sum(e.operator == n for e in run.front) for n in names]}
    fig = go.Figure()
    for (what, values), colour in zip(bars.items(), ("#9aa5b1", COLOURS[0], COLOURS[1])):
        fig.add_trace(go.Bar(x=[html.escape(n) for n in names], y=values, name=what,
                             marker_color=colour, hovertemplate=f"%{{x}}: %{{y}} {what}<extra></extra>"))
    fig.update_layout(barmode="group", height=340, margin={"t": 30}, yaxis_title="count",
                      legend={"orientation": "h", "y": 1.12})
    return fig


def weights_figure(run: Run):
    """Each operator's weight in the adaptive mix after each generation; None where it is fixed."""
    if not run.view.weights:
        return None
    from plotly.colors import qualitative

    go = _go()
    fig = go.Figure()
    operators = sorted({k for w in run.view.weights.values() for k in w})
    palette = qualitative.Dark24  # enough for every operator there is
    for k, name in enumerate(operators):
        points = run.view.weights_of(name)
        fig.add_trace(go.Scatter(x=[g for g, _ in points], y=[w for _, w in points], mode="lines+markers",
                                 name=html.escape(name), line={"color": palette[k % len(palette)]},
                                 text=[html.escape(name)] * len(points),
                                 hovertemplate="%{text}: %{y:.3f} after generation %{x}<extra></extra>"))
    last = max(run.view.weights, default=0)
    fig.update_layout(height=320, margin={"t": 30}, xaxis={"title": "generation", "dtick": 1 if last <= 20 else None},
                      yaxis_title="weight in the mix")
    return fig


def lineage_figure(run: Run):
    """The front's ancestry back to generation 0: one node per individual at its generation,
    an edge from each parent to its child; front members in the run's colour (click: their
    section), ancestors grey. Rows are ordered so that children sit near their parents."""
    go = _go()
    view = run.view
    members: dict[int, Entry] = {}
    for entry in run.front:
        for e in view.lineage(entry.id):
            members.setdefault(e.id, e)
    edges = [(p, e.id) for e in members.values() for p in e.parents if p in members]
    children: dict[int, list[int]] = {}
    for parent, child in edges:
        children.setdefault(parent, []).append(child)
    y: dict[int, float] = {e.id: float(rank) for rank, e in enumerate(run.front)}
    for generation in sorted({e.generation for e in members.values()}, reverse=True):
        layer = [e for e in members.values() if e.generation == generation]
        for e in layer:  # children are of later generations, so they are placed already
            if e.id not in y:
                below = [y[c] for c in children.get(e.id, []) if c in y]
                y[e.id] = sum(below) / len(below) if below else 0.0
        previous = None
        for e in sorted(layer, key=lambda e: (y[e.id], e.id)):  # at least 0.8 apart in a column
            if previous is not None and y[e.id] < previous + 0.8:
                y[e.id] = previous + 0.8
            previous = y[e.id]
    ex, ey = [], []
    for parent, child in edges:
        ex += [members[parent].generation, members[child].generation, None]
        ey += [y[parent], y[child], None]
    fig = go.Figure(go.Scatter(x=ex, y=ey, mode="lines", line={"color": "#b0b7c0", "width": 1},
                               hoverinfo="skip", showlegend=False))
    several = False
    for role, entries, colour in (("ancestors", [e for e in members.values() if e.id not in run.anchors],
                                   "#8a939c"),
                                  ("front", [e for e in members.values() if e.id in run.anchors], run.colour)):
        fig.add_trace(go.Scatter(
            x=[e.generation for e in entries], y=[y[e.id] for e in entries], mode="markers+text",
            text=[f"#{e.id}" for e in entries], textposition="top center", textfont={"size": 10},
            hovertext=[hover(run, e, several) + (f"<br>{html.escape(e.detail)}" if e.detail else "")
                       for e in entries],
            hovertemplate="%{hovertext}<extra></extra>", customdata=[run.anchors.get(e.id, "") for e in entries],
            marker={"color": colour, "size": 12 if role == "front" else 8}, name=role,
            uid=f"lineage-{role}-{run.index}"))
    span = max(y.values(), default=0.0)
    fig.update_layout(height=int(min(1400, max(300, 60 + 38 * span))), margin={"t": 30},
                      xaxis={"title": "generation", "dtick": 1}, hovermode="closest",
                      yaxis={"visible": False}, legend={"orientation": "h", "y": 1.08})
    return fig


def learning_figure(run: Run):
    """Validation accuracy and training loss by epoch, one line per front member."""
    go = _go()
    fig = _subplots(rows=1, cols=2, horizontal_spacing=0.08)
    for k, e in enumerate(run.front):
        if not e.curve:
            continue
        colour = COLOURS[k % len(COLOURS)]
        epochs = [c[0] for c in e.curve]
        for col, (values, what) in enumerate(((([c[2] for c in e.curve]), "val accuracy"),
                                              ([c[1] for c in e.curve], "train loss")), start=1):
            fig.add_trace(go.Scatter(x=epochs, y=values, mode="lines+markers", name=f"#{e.id}",
                                     legendgroup=str(e.id), showlegend=col == 1,
                                     line={"color": colour}, marker={"size": 5},
                                     hovertemplate=f"#{e.id} epoch %{{x}}: {what} %{{y:.4f}}<extra></extra>"),
                          row=1, col=col)
    longest = max((len(e.curve) for e in run.front), default=0)
    fig.update_xaxes(title_text="epoch", dtick=1 if longest <= 20 else None)
    fig.update_yaxes(title_text="validation accuracy", row=1, col=1)
    fig.update_yaxes(title_text="training loss", row=1, col=2)
    fig.update_layout(height=360, margin={"t": 30}, hovermode="closest")
    return fig
