"""The report as one HTML page that needs nothing from the network: plotly.js is inlined
gzip-compressed and base64-encoded and unpacked by the browser's own ``DecompressionStream``;
figures are JSON in ``<script type="application/json">``; genome drawings (SVG) travel the
same compressed way and are shown as images, so nothing in them can run.

Everything that comes from a run is untrusted: text is HTML-escaped, JSON has ``<``, ``>`` and
``&`` escaped (no ``</script>`` can end it), and a Content-Security-Policy forbids any fetch.
"""

from __future__ import annotations

import base64
import datetime as dt
import gzip
import html
import json
import shutil
from typing import Any, Sequence

import yaml

from evonas.store.rundir import OutputError

from . import figures
from .runs import Run, hypervolume_curves, metadata

__all__ = ["render"]

# no network at view time: scripts and styles inline only, images from data: and blob: URLs
_POLICY = ("default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
           "img-src data: blob:; font-src data:")
_NO_DOT = "install Graphviz (its dot program, e.g. apt-get install graphviz) to see the drawings"


def render(runs: Sequence[Run]) -> str:
    """The whole page for ``runs`` (one run: its report; several: their fronts and
    hypervolume curves overlaid, then a section per run)."""
    from evonas import __version__

    several = len(runs) > 1
    curves = hypervolume_curves(runs)
    drawings, note = _drawings(runs)
    title = "evonas report: " + ", ".join(run.label for run in runs)
    parts = [f"<h1>{html.escape(title)}</h1>",
             f"<p class='meta'>made {dt.datetime.now():%Y-%m-%d %H:%M} by evonas {html.escape(__version__)}"
             f" from {len(runs)} run{'s' if several else ''}. Hover a point for its values; click a "
             f"front member to go to its section.</p>",
             "<nav>" + " · ".join(f"<a href='#run-{r.index}'>{html.escape(r.label)}</a>" for r in runs)
             + "</nav>" if several else "",
             "<section id='overview'><h2>Pareto front</h2>",
             _no_front(runs),
             _figure("fig-front", figures.front_figure(runs)),
             "<h2>Hypervolume</h2><p class='meta'>Of each generation's front, objectives scaled to [0, 1] "
             "over every complete individual" + (" of all runs" if several else "") +
             ", reference point 1.1.</p>",
             _figure("fig-hypervolume", figures.hypervolume_figure(runs, curves)),
             "</section>"]
    for run in runs:
        parts.append(_run_section(run, several, drawings, note))
    return _page(title, "\n".join(p for p in parts if p), drawings)


def _no_front(runs: Sequence[Run]) -> str:
    empty = [run.label for run in runs if not run.front]
    if not empty:
        return ""
    return f"<p class='note'>No complete individual yet in {html.escape(', '.join(empty))}.</p>"


def _run_section(run: Run, several: bool, drawings: dict[str, str], note: str | None) -> str:
    view, k = run.view, run.index
    colour = f" style='border-left: 6px solid {run.colour}'" if several else ""
    parts = [f"<section class='run' id='run-{k}'{colour}>",
             f"<h2>{'Run: ' + html.escape(run.label) if several else 'The run'}</h2>",
             "<table class='kv'>" + "".join(f"<tr><th>{html.escape(a)}</th><td>{html.escape(b)}</td></tr>"
                                            for a, b in metadata(view)) + "</table>"]
    if view.notes:
        parts.append("<div class='note'><b>Notes</b> (what could not be read and what was used instead):"
                     "<ul>" + "".join(f"<li>{html.escape(n)}</li>" for n in view.notes) + "</ul></div>")
    parts += ["<h3>Operators</h3>", _figure(f"fig-operators-{k}", figures.operators_figure(run)),
              _operator_table(run)]
    weights = figures.weights_figure(run)
    if weights is not None:
        parts += ["<h3>Operator weights over time</h3>", _figure(f"fig-weights-{k}", weights)]
    if run.front:
        parts += ["<h3>Lineage of the front</h3><p class='meta'>Each front member and its ancestors "
                  "back to generation 0; an edge runs from parent to child.</p>",
                  _figure(f"fig-lineage-{k}", figures.lineage_figure(run)),
                  "<h3>Learning curves of the front</h3>",
                  _figure(f"fig-learning-{k}", figures.learning_figure(run)),
                  f"<h3>Front members ({len(run.front)})</h3>"]
        if note:
            parts.append(f"<p class='note'>{html.escape(note)}</p>")
        parts += [_member(run, e, drawings) for e in run.front]
    config = yaml.safe_dump(view.config.to_dict(), sort_keys=False)
    parts += ["<details><summary>Config (YAML, as the run started)</summary>",
              f"<pre>{html.escape(config)}</pre></details>", "</section>"]
    return "\n".join(parts)


def _operator_table(run: Run) -> str:
    accounts = run.view.operators
    if not accounts:
        return ""
    in_front = {}
    for e in run.front:
        in_front[e.operator] = in_front.get(e.operator, 0) + 1
    rows = []
    for name, counts in accounts.items():
        evaluated, entered = int(counts.get("evaluated", 0)), int(counts.get("front", 0))
        rate = f"{entered / evaluated:.0%}" if evaluated else "–"
        rows.append(f"<tr><td>{html.escape(name)}</td><td>{int(counts.get('proposals', 0))}</td>"
                    f"<td>{int(counts.get('duplicates', 0))}</td><td>{evaluated}</td><td>{entered}</td>"
                    f"<td>{rate}</td><td>{in_front.get(name, 0)}</td>"
                    f"<td>{float(counts.get('seconds', 0.0)):.2f}</td></tr>")
    return ("<table class='grid'><tr><th>operator</th><th>proposals</th><th>duplicates</th>"
            "<th>evaluated</th><th>entered the front</th><th>success (entered / evaluated)</th>"
            "<th>in the final front</th><th>proposal seconds</th></tr>" + "".join(rows) + "</table>")


def _member(run: Run, entry, drawings: dict[str, str]) -> str:
    anchor = run.anchors[entry.id]
    values = [(k, figures.number(entry.objectives[k])) for k in run.keys]
    values += [(k, figures.number(v)) for k, v in sorted(entry.reported.items())]
    values += [("parameters", f"{entry.params:,}")] if "params" not in run.keys else []
    values += [("epochs", str(entry.epochs)),
               ("evaluation seconds", f"{entry.seconds:.2f}")]
    lineage = " ← ".join(_link(run, e.id) + f" ({html.escape(e.operator)})"
                         for e in run.view.lineage(entry.id))
    made = html.escape(entry.operator) + (f": {html.escape(entry.detail)}" if entry.detail else "")
    drawing = (f"<div class='drawing'><img data-drawing='{anchor}' alt='genome of #{entry.id}'></div>"
               if anchor in drawings else "")
    return (f"<section class='member' id='{anchor}'><div><h4>#{entry.id} <span class='meta'>generation "
            f"{entry.generation}, made by {made}</span></h4>"
            "<table class='kv'>" + "".join(f"<tr><th>{html.escape(a)}</th><td>{html.escape(b)}</td></tr>"
                                           for a, b in values) + "</table>"
            f"<p class='meta'>lineage: {lineage}</p></div>{drawing}</section>")


def _link(run: Run, ident: int) -> str:
    anchor = run.anchors.get(ident)
    return f"<a href='#{anchor}'>#{ident}</a>" if anchor else f"#{ident}"


def _drawings(runs: Sequence[Run]) -> tuple[dict[str, str], str | None]:
    """Each front member's genome as SVG, by the HTML id of its section; a note instead where
    Graphviz cannot draw (the report is still written)."""
    try:
        from evonas.drawing import genome_svg
    except ImportError:  # the graphviz Python package is missing
        return {}, _NO_DOT
    out: dict[str, str] = {}
    failed: list[str] = []
    for run in runs:
        for e in run.front:
            try:
                out[run.anchors[e.id]] = genome_svg(e.genome, title=f"#{e.id}: {e.params:,} parameters")
            except OutputError as exc:
                if shutil.which("dot") is None:
                    return {}, _NO_DOT
                failed.append(f"#{e.id} ({exc})")
    return out, ("no drawing of " + "; ".join(failed)) if failed else None


def _figure(ident: str, fig) -> str:
    data = fig.to_plotly_json()
    data["layout"].pop("template", None)  # one shared template for every figure (see _page)
    return (f"<div class='figure' id='{ident}'></div>"
            f"<script type='application/json' data-figure='{ident}'>{_json(data)}</script>")


def _json(data: Any) -> str:
    """JSON safe inside a ``<script>`` element: ``<``, ``>`` and ``&`` escaped as \\u003c etc."""
    from plotly.utils import PlotlyJSONEncoder

    text = json.dumps(data, cls=PlotlyJSONEncoder, separators=(",", ":"), ensure_ascii=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _packed(data: bytes) -> str:
    return base64.b64encode(gzip.compress(data, compresslevel=9, mtime=0)).decode("ascii")


def _page(title: str, body: str, drawings: dict[str, str]) -> str:
    import plotly.io as pio
    from plotly.offline import get_plotlyjs

    template = pio.templates["plotly_white"].to_plotly_json()
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{_POLICY}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(title)}</title>
<style>{_CSS}</style></head>
<body>
<noscript><p class="note">The plots of this report need JavaScript.</p></noscript>
<p id="status" class="meta">drawing the plots…</p>
{body}
<script type="application/json" id="template">{_json(template)}</script>
<script type="application/octet-stream" id="plotly-gz">{_packed(get_plotlyjs().encode("utf-8"))}</script>
<script type="application/octet-stream" id="drawings-gz">{_packed(_json(drawings).encode("utf-8"))}</script>
<script>{_LOADER}</script>
</body></html>
"""


# Unpacks plotly.js and the drawings, draws every figure, and wires clicks on front members to
# their sections. Sets <html data-report="ready"> when done ("failed" and a console error if not).
_LOADER = r"""
(async () => {
  const root = document.documentElement, status = document.getElementById('status');
  async function unpack(id) {
    const bytes = Uint8Array.from(atob(document.getElementById(id).textContent), c => c.charCodeAt(0));
    const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream('gzip'));
    return await new Response(stream).text();
  }
  try {
    if (typeof DecompressionStream === 'undefined') throw new Error('this browser cannot unpack the report (no DecompressionStream); use a current Chrome, Firefox, Edge or Safari');
    const code = document.createElement('script');
    code.textContent = await unpack('plotly-gz');
    performance.mark('evonas:unpacked');
    document.head.appendChild(code);
    performance.mark('evonas:plotly');
    const template = JSON.parse(document.getElementById('template').textContent);
    const jobs = [];
    for (const node of document.querySelectorAll('script[data-figure]')) {
      const fig = JSON.parse(node.textContent), target = document.getElementById(node.dataset.figure);
      fig.layout.template = template;
      jobs.push(Plotly.newPlot(target, fig.data, fig.layout, {responsive: true, displaylogo: false}).then(gd => {
        gd.on('plotly_click', ev => {
          const anchor = ev.points.length ? ev.points[0].customdata : '';
          const section = typeof anchor === 'string' && anchor ? document.getElementById(anchor) : null;
          if (section) { section.scrollIntoView({block: 'start'}); section.classList.add('picked');
                         setTimeout(() => section.classList.remove('picked'), 1500); }
        });
      }));
    }
    const drawings = JSON.parse(await unpack('drawings-gz'));
    for (const img of document.querySelectorAll('img[data-drawing]')) {
      const svg = drawings[img.dataset.drawing];
      if (svg) img.src = URL.createObjectURL(new Blob([svg], {type: 'image/svg+xml'}));
    }
    await Promise.all(jobs);
    status.remove();
    root.dataset.readyMs = Math.round(performance.now());  // since navigation started
    root.dataset.report = 'ready';
  } catch (err) {
    root.dataset.report = 'failed';
    status.textContent = 'The plots could not be drawn: ' + err;
    status.className = 'note';
    console.error('evonas report:', err);
  }
})();
"""

_CSS = """
body { font: 15px/1.45 system-ui, -apple-system, 'Segoe UI', sans-serif; margin: 0 auto; max-width: 1240px;
       padding: 0 20px 60px; color: #1d2329; }
h1 { font-size: 1.6em; margin: 24px 0 4px; } h2 { margin-top: 34px; border-bottom: 1px solid #dde2e7; }
h3 { margin-top: 26px; } h4 { margin: 0 0 6px; }
.meta { color: #5b6670; font-size: 0.92em; font-weight: normal; }
.note { background: #fff6e0; border: 1px solid #f0d890; padding: 6px 10px; border-radius: 4px; }
.figure { width: 100%; min-height: 200px; }
table { border-collapse: collapse; margin: 8px 0; font-size: 0.93em; }
table.kv th { text-align: left; font-weight: 600; padding: 2px 14px 2px 0; color: #3c4650; vertical-align: top; }
table.kv td { padding: 2px 0; }
table.grid th, table.grid td { border: 1px solid #dde2e7; padding: 3px 8px; text-align: right; }
table.grid th:first-child, table.grid td:first-child { text-align: left; }
section.run { padding-left: 12px; margin-top: 30px; }
section.member { border: 1px solid #dde2e7; border-radius: 6px; padding: 10px 14px; margin: 12px 0;
                 transition: background 0.4s; scroll-margin-top: 8px; display: flex; gap: 24px;
                 align-items: flex-start; }
section.member > div:first-child { flex: 1 1 340px; min-width: 0; }
section.member.picked { background: #eef3ff; }
.drawing { flex: 0 0 46%; max-height: 620px; overflow: auto; border: 1px solid #eef0f2; }
.drawing img { width: 100%; height: auto; display: block; }
pre { background: #f6f8fa; padding: 10px; overflow: auto; font-size: 0.9em; }
summary { cursor: pointer; margin-top: 20px; font-weight: 600; }
"""
