"""The JSON form: exact round trip, stable text, and clear errors for malformed documents."""

import json
import pickle

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from genomes import FORMAT, Genome, GenomeError
from tests.strategies import genomes, nb201_genomes


@given(genomes())
def test_json_round_trip_is_exact(genome):
    text = genome.to_json()
    back = Genome.from_json(text)
    assert back == genome
    assert back.to_json() == text
    assert back.canonical_hash() == genome.canonical_hash()
    assert json.loads(text)["format"] == FORMAT


@settings(max_examples=5)
@given(nb201_genomes())
def test_json_round_trip_is_exact_for_nb201(genome):
    assert Genome.from_json(genome.to_json()) == genome


@given(genomes(), st.randoms(use_true_random=False))
def test_node_order_in_the_file_does_not_matter(genome, random):
    data = genome.to_dict()
    random.shuffle(data["nodes"])
    assert Genome.from_dict(data) == genome


@given(genomes())
def test_pickle_round_trip_for_worker_processes(genome):
    assert pickle.loads(pickle.dumps(genome)) == genome


def test_json_is_human_readable_one_node_per_line(tiny):
    lines = tiny.to_json().splitlines()
    assert any('"op": "conv"' in line and '"channels": 4' in line for line in lines)
    assert len(lines) == len(tiny) + 8


def test_fresh_ids_survive_the_round_trip(tiny):
    tiny.remove(tiny.inputs(tiny.output_node)[0])  # drop the dense layer: its id is retired
    back = Genome.from_json(tiny.to_json(), validate=False)
    assert back.new_id() == tiny.new_id()


@pytest.fixture
def tiny() -> Genome:
    g = Genome((1, 6, 6), 3)
    x = g.add("conv", [g.add("input", id="input")], channels=4, kernel=3)
    x = g.add("dense", [g.add("globalpool", [x])], units=3)
    g.add("output", [x], id="output")
    return g


def _doc(tiny, **changes):
    data = tiny.to_dict()
    data.update(changes)
    return data


@pytest.mark.parametrize("mutate, node, words", [
    (lambda d: d["nodes"].append({"id": "n0", "op": "identity", "inputs": ["input"]}), "n0",
     "appears twice"),
    (lambda d: d["nodes"][1].update(inputs=["ghost"]), "n0", "not nodes"),
    (lambda d: d["nodes"][1].update(inputs=["input", "input"]), "n0", "twice"),
    (lambda d: d["nodes"][1].update(colour="red"), "n0", "unknown key 'colour'"),
    (lambda d: d["nodes"][1].update(params=[4, 3]), "n0", "'params' must be an object"),
    (lambda d: d["nodes"][1].update(op=7), "n0", "'op' must be a string"),
    (lambda d: d["nodes"][1]["params"].update(channels=0), "n0", "channels"),
    (lambda d: d["nodes"][1]["params"].update(kernel=9), "n0", "larger than its input"),
])
def test_malformed_nodes_are_reported_by_id(tiny, mutate, node, words):
    data = tiny.to_dict()
    mutate(data)
    with pytest.raises(GenomeError) as info:
        Genome.from_dict(data)
    assert node in info.value.nodes
    assert words in str(info.value)


@pytest.mark.parametrize("text, words", [
    ("{not json", "not valid JSON"),
    ("[1, 2]", "JSON object"),
    ('{"format": 99}', "unsupported genome format 99"),
    ('{"format": 1, "input_shape": [1, 6, 6], "num_outputs": 3}', "missing key 'nodes'"),
    ('{"format": 1, "input_shape": 5, "num_outputs": 3, "nodes": []}', "input_shape"),
])
def test_malformed_documents_give_a_genome_error(text, words):
    with pytest.raises(GenomeError, match=words):
        Genome.from_json(text)


def test_ids_are_never_reused_even_after_a_hand_chosen_one_is_removed(tiny):
    tiny.add("identity", [tiny.input_node], id="n9")
    tiny.remove("n9")
    assert tiny.new_id() == "n10"
    loaded = Genome.from_dict({**tiny.to_dict(), "next_id": 0}, validate=False)
    assert int(loaded.new_id()[1:]) > max(int(n[1:]) for n in loaded if n[1:].isdigit())


def test_relabel_refuses_bad_or_clashing_ids(tiny):
    with pytest.raises(GenomeError, match="must start with a letter"):
        tiny.relabel({"n0": 5})
    with pytest.raises(GenomeError, match="two nodes"):
        tiny.relabel({"n0": "n1"})


def test_format_must_be_the_integer_1(tiny):
    for bad in (True, 1.0, "1"):
        with pytest.raises(GenomeError, match="unsupported genome format"):
            Genome.from_dict({**tiny.to_dict(), "format": bad})


def test_replace_input_keeps_the_port(tiny):
    g = Genome((1, 6, 6), 3)
    x = g.add("input", id="input")
    a = g.add("conv", [x], channels=2, kernel=1)
    b = g.add("conv", [x], channels=2, kernel=1)
    c = g.add("conv", [x], channels=2, kernel=1)
    m = g.add("identity", [a, b], merge="concat")
    g.replace_input(m, a, c)
    assert g.inputs(m) == [c, b]
    with pytest.raises(GenomeError, match="has no input"):
        g.replace_input(m, a, c)
