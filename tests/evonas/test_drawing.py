"""Genome and lineage drawings by Graphviz: the SVG holds one box per node and one arrow per
edge, marks merges and skips, has a legend, escapes text; a missing ``dot`` is an OutputError;
the front plot and the run's tables count individuals the same way."""

from __future__ import annotations

import re
import shutil
import xml.etree.ElementTree as ET

import numpy as np
import pytest
from click.testing import CliRunner
from hypothesis import given

from evonas.cli import main
from evonas.drawing import LEGEND, draw_genome, genome_svg, lineage_svg, skip_edges
from evonas.plots import counted, plot_front, plot_genome
from evonas.runview import RunView
from evonas.store.journal import append
from evonas.store.rundir import OutputError
from genomes import Genome, spaces
from tests.evonas.test_inspect import hand_made, not_blank
from tests.strategies import genomes

NS = "{http://www.w3.org/2000/svg}"
needs_dot = pytest.mark.skipif(shutil.which("dot") is None,
                               reason="Graphviz's dot is not installed (apt-get install graphviz)")
SPACES = [("chain", (1, 8, 8)), ("multibranch", (1, 8, 8)), ("cell", (1, 8, 8)),
          ("nb201", (3, 12, 12))]


def parsed(svg: str):
    """(nodes, edges, root): the SVG's node and edge groups, keyed by their Graphviz titles."""
    root = ET.fromstring(svg)
    groups = {"node": {}, "edge": {}}
    for g in root.iter(f"{NS}g"):
        classes = g.get("class", "").split()
        if classes and classes[0] in groups:
            groups[classes[0]][g.find(f"{NS}title").text] = g
    return groups["node"], groups["edge"], root


def classes(g) -> set[str]:
    return set(g.get("class", "").split())


def text_of(g) -> str:
    return " ".join("".join(t.itertext()) for t in g.iter(f"{NS}text"))


def check_drawing(genome: Genome, svg: str) -> None:
    """What every genome drawing must show."""
    assert svg.startswith("<svg") and svg.rstrip().endswith("</svg>")
    nodes, edges, _ = parsed(svg)
    layers = {t: g for t, g in nodes.items() if "layer" in classes(g)}
    assert sorted(layers) == sorted(genome.nodes)  # one box per node, nothing else but the legend
    assert set(nodes) - set(layers) == {LEGEND} and "legend" in text_of(nodes[LEGEND])
    wanted = {(u, v) for v in genome.nodes for u in genome.inputs(v)}
    assert {tuple(t.split("->")) for t in edges} == wanted and len(edges) == len(wanted)
    skips = skip_edges(genome)
    for title, g in edges.items():
        assert g.find(f"{NS}path") is not None and g.find(f"{NS}polygon") is not None, title  # head
        assert ("skip" in classes(g)) == (tuple(title.split("->")) in skips), title
    for node, g in layers.items():
        merge, fan_in = genome.node(node).merge, len(genome.inputs(node))
        if fan_in > 1:
            assert {"merge", merge} <= classes(g), node
            assert len(list(g.iter(f"{NS}polygon"))) == 2, node  # double border
            assert f"{merge} of {fan_in}" in text_of(g), node
        else:
            assert "merge" not in classes(g), node
        assert genome.op(node) in text_of(g) and node in text_of(g)
    if skips:
        assert "skip connection" in text_of(nodes[LEGEND])


@needs_dot
@pytest.mark.parametrize("kind,shape", SPACES, ids=[k for k, _ in SPACES])
def test_every_space_draws_one_box_per_node_and_one_arrow_per_edge(kind, shape):
    space = spaces.get(kind, input_shape=shape, num_outputs=10)
    genome = space.sample(np.random.default_rng(1))
    svg = genome_svg(genome)
    check_drawing(genome, svg)
    assert f"{genome.num_params():,} parameters" in svg  # the default title
    shapes = genome.shapes()
    nodes, _, _ = parsed(svg)
    for node in genome.nodes:
        assert "\u00d7".join(map(str, shapes[node])) in text_of(nodes[node])


@needs_dot
@given(genomes())
def test_random_genomes_draw_completely(genome):
    check_drawing(genome, genome_svg(genome))


def residual() -> Genome:
    g = Genome((1, 8, 8), 10)
    x = g.add("input", id="input")
    a = g.add("conv", [x], channels=4, kernel=3, stride=2)
    b = g.add("act", [a])
    c = g.add("conv", [b], channels=4, kernel=3)
    d = g.add("identity", [c, a], merge="add")
    e = g.add("maxpool", [d], kernel=2)
    f = g.add("avgpool", [d], kernel=2)
    h = g.add("identity", [e, f], merge="concat")
    i = g.add("globalpool", [h])
    j = g.add("dense", [i], units=10)
    g.add("output", [j], id="output")
    return g.validate()


@needs_dot
def test_skips_are_the_shortcuts_and_parallel_branches_are_not():
    genome = residual()
    assert skip_edges(genome) == {("n0", "n3")}  # bypasses act and conv; the pools are parallel
    svg = genome_svg(genome)
    check_drawing(genome, svg)
    nodes, edges, _ = parsed(svg)
    assert "\u2295 add of 2" in text_of(nodes["n3"]) and "concat of 2" in text_of(nodes["n6"])
    assert "3\u00d73, 4 ch, stride 2" in text_of(nodes["n0"])
    assert "2\u00d72, stride 2" in text_of(nodes["n4"])  # a pool's stride defaults to its kernel
    # a concat's inputs are numbered in port order (its channel order)
    assert [text_of(edges[f"{u}->n6"]) for u in genome.inputs("n6")] == ["1", "2"]
    assert text_of(edges["n0->n3"]) == ""


@needs_dot
def test_titles_are_escaped():
    title = 'a <b>bold</b> & "quoted" title <script>'
    svg = genome_svg(residual(), title)
    root = ET.fromstring(svg)
    assert title in " ".join("".join(t.itertext()) for t in root.iter(f"{NS}text"))
    assert "<script>" not in svg and "<b>" not in svg


def test_a_missing_dot_is_an_output_error_with_an_install_hint(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))  # no dot on it
    for draw in (lambda: genome_svg(residual()), lambda: draw_genome(residual(), tmp_path / "g.png"),
                 lambda: lineage_svg([{"id": 0, "generation": 0, "operator": "", "parents": []}])):
        with pytest.raises(OutputError, match="apt-get install graphviz"):
            draw()
    assert not list(tmp_path.iterdir())


@needs_dot
def test_draw_genome_writes_the_format_its_suffix_names(tmp_path):
    genome = residual()
    png = draw_genome(genome, tmp_path / "deep" / "g.png")
    assert png == tmp_path / "deep" / "g.png" and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not_blank(png)
    assert draw_genome(genome, tmp_path / "plain") == tmp_path / "plain.png"
    as_svg = draw_genome(genome, tmp_path / "g.svg").read_text()
    check_drawing(genome, as_svg[as_svg.index("<svg"):])
    assert draw_genome(genome, tmp_path / "g.pdf").read_bytes()[:4] == b"%PDF"
    assert plot_genome(genome, tmp_path / "p.png", "individual 3") == tmp_path / "p.png"
    with pytest.raises(OutputError, match=r"'g\.xyz'.*\.png, \.svg, \.pdf"):
        draw_genome(genome, tmp_path / "g.xyz")
    (tmp_path / "afile").write_text("x")
    with pytest.raises(OutputError, match="cannot write"):
        draw_genome(genome, tmp_path / "afile" / "g.png")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile", "deep", "g.pdf", "g.svg",
                                                          "p.png", "plain.png"]


@needs_dot
def test_lineage_ranks_generations_and_draws_each_descent():
    entries = [{"id": 0, "generation": 0, "operator": "initial", "parents": []},
               {"id": 1, "generation": 0, "operator": "initial", "parents": [], "status": "pruned"},
               {"id": 2, "generation": 1, "operator": "deepen", "parents": [0], "status": "complete"},
               {"id": 3, "generation": 2, "operator": "crossover", "parents": [2, 1]},
               {"id": 4, "generation": 3, "operator": "add_skip", "parents": [1, 99]}]  # 99 unknown
    svg = lineage_svg(entries, highlight=[3], link=lambda i: f"#individual-{i}")
    nodes, edges, _ = parsed(svg)
    people = {t: g for t, g in nodes.items() if "individual" in classes(g)}
    assert sorted(people) == [f"i{k}" for k in range(5)]
    assert set(edges) == {"i0->i2", "i2->i3", "i1->i3", "i1->i4"}
    assert all(g.find(f"{NS}polygon") is not None for g in edges.values())
    assert "front" in classes(people["i3"]) and "front" not in classes(people["i2"])
    assert "deepen" in text_of(people["i2"]) and "#2" in text_of(people["i2"])
    assert "(pruned)" in text_of(people["i1"]) and "(" not in text_of(people["i2"])
    links = [a.get("{http://www.w3.org/1999/xlink}href") for a in people["i4"].iter(f"{NS}a")]
    assert "#individual-4" in links

    def y(g) -> float:
        return float(next(g.iter(f"{NS}text")).get("y"))

    rows = {}
    for e in entries:  # one row per generation, in order, labelled
        rows.setdefault(e["generation"], set()).add(y(people[f"i{e['id']}"]))
    assert all(len(r) == 1 for r in rows.values())
    assert [r.pop() for _, r in sorted(rows.items())] == sorted(y(people[f"i{k}"]) for k in (0, 2, 3, 4))
    assert {f"gen_{g}" for g in rows} <= set(nodes)


def test_the_front_plot_and_the_tables_count_the_same_individuals(tmp_path):
    run = hand_made(tmp_path)
    append(run / "journal.jsonl", {"event": "pruned", "id": 4})
    view = RunView.load(run)
    assert counted(view) == "6 evaluated: 5 complete, 1 pruned"
    table = CliRunner().invoke(main, ["front", str(run)])
    assert table.exit_code == 0, table.output
    assert re.search(r"\b5 complete, 6 evaluated\b", table.output), table.output
    assert not_blank(plot_front(view, tmp_path / "front.png"))
