"""Encodings for predictors: a fixed length per space, finite, blind to node ids, and for NB201
one-hot edge ops that tell every architecture apart."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from genomes import Genome, GenomeError, spaces
from tests.strategies import input_shapes

SMALL = ("chain", "multibranch", "cell")


def _nb201():
    return spaces.get("nb201", input_shape=(3, 12, 12), num_outputs=3)


@st.composite
def spaces_and_genomes(draw):
    """(space, genome): a small space of any kind (strict cells too), or NB201."""
    name = draw(st.sampled_from(SMALL + ("strict cell", "nb201")))
    if name == "nb201":
        space = _nb201()
    else:
        options = {"strict": True} if name == "strict cell" else {}
        space = spaces.get(name.split()[-1], input_shape=draw(input_shapes()),
                           num_outputs=draw(st.integers(1, 5)), **options)
    return space, space.sample(np.random.default_rng(draw(st.integers(0, 2**32 - 1))))


def _shuffled(genome: Genome, seed: int) -> Genome:
    """An isomorphic genome: other ids, nodes listed in another order, add inputs permuted."""
    rng = np.random.default_rng(seed)
    nodes = genome.nodes
    names = {n: f"z{k}" for n, k in zip(nodes, rng.permutation(len(nodes)))}
    data = genome.to_dict()
    items = []
    for item in data["nodes"]:
        item = {**item, "id": names[item["id"]]}
        if "inputs" in item:
            inputs = [names[u] for u in item["inputs"]]
            if item.get("merge") == "add":
                inputs = [inputs[k] for k in rng.permutation(len(inputs))]
            item["inputs"] = inputs
        items.append(item)
    data["nodes"] = [items[k] for k in rng.permutation(len(items))]
    data["next_id"] = 0
    return Genome.from_dict(data)


@settings(max_examples=40, deadline=None)
@given(spaces_and_genomes(), st.integers(0, 2**32 - 1))
def test_encodings_have_the_space_length_are_finite_and_ignore_node_ids(case, seed):
    space, genome = case
    vector = space.encode(genome)
    assert vector.shape == (space.encoding_size,) == (len(space.encoding_names()),)
    assert vector.dtype == np.float64 and np.isfinite(vector).all()
    twin = _shuffled(genome, seed)
    assert twin.canonical_hash() == genome.canonical_hash()
    assert np.array_equal(space.encode(twin), vector)
    assert np.array_equal(space.encode(genome.relabel({genome.input_node: "source"})), vector)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(0, 5**6 - 1), min_size=2, max_size=6, unique=True))
def test_nb201_encodings_tell_architectures_apart(indices):
    space = _nb201()
    strings = list(space.arch_strings())
    vectors = [space.encode(space.from_arch_string(strings[k])) for k in indices]
    assert len({v.tobytes() for v in vectors}) == len(indices)
    for k, v in zip(indices, vectors):  # one-hot: one op per edge, in edges() x ops order
        blocks = v.reshape(len(space.edges()), len(space.ops))
        assert (blocks.sum(axis=1) == 1).all()
        assert tuple(space.ops[i] for i in blocks.argmax(axis=1)) == space.parse_arch_string(strings[k])


def test_nb201_encoding_is_the_30_one_hot_edge_ops():
    space = _nb201()
    assert space.encoding_size == 6 * 5
    assert space.encoding_names()[:5] == [f"edge_0_1_{op}" for op in space.ops]


def test_a_grown_cell_genome_keeps_the_length_with_an_empty_one_hot_block():
    space = spaces.get("cell", input_shape=(1, 8, 8), num_outputs=3, cells_per_stage=2)
    genome = space.from_arch(["nor_conv_3x3"] * 6)
    grown = genome.copy()
    grown.set_params("c0_e0_1_1", kernel=1)  # cells no longer alike: it does not decode
    assert space.contains(grown)
    with pytest.raises(ValueError):
        space.decode(grown)
    before, after = space.encode(genome), space.encode(grown)
    width = len(space.edges()) * len(space.ops)
    assert after.shape == before.shape == (space.encoding_size,) and np.isfinite(after).all()
    assert before[:width].sum() == 6 and not after[:width].any()
    assert not np.array_equal(before[width:], after[width:])  # the description sees the change


def test_strict_spaces_encode_only_their_members():
    nb201 = _nb201()
    genome = nb201.sample(np.random.default_rng(0))
    genome.set_params(next(n for n in genome if genome.op(n) == "conv" and n != "stem_conv"),
                      channels=5)
    with pytest.raises(ValueError, match="not a genome of the nb201 space"):
        nb201.encode(genome)


def test_an_op_outside_the_vocabulary_or_an_illegal_genome_is_refused():
    chain = spaces.get("chain", input_shape=(1, 8, 8), num_outputs=3)
    cell = spaces.get("cell", input_shape=(1, 8, 8), num_outputs=3)
    with pytest.raises(ValueError, match="'zero' is not in the vocabulary"):
        chain.encode(cell.from_arch(["none"] * 6))
    broken = chain.sample(np.random.default_rng(0))
    broken.remove(broken.inputs(broken.output_node)[0])
    with pytest.raises(GenomeError):
        chain.encode(broken)


def test_descriptions_count_what_they_name():
    space = spaces.get("multibranch", input_shape=(1, 8, 8), num_outputs=3)
    genome = space.sample(np.random.default_rng(3))
    v = dict(zip(space.encoding_names(), space.encode(genome)))
    ops = [genome.op(n) for n in genome]
    assert all(v[f"count_{op}"] == ops.count(op) for op in set(ops))
    assert v["nodes"] == len(genome) and v["log10_params"] == pytest.approx(
        np.log10(1 + genome.num_params()))
    assert v["merges_add"] + v["merges_concat"] == sum(len(genome.inputs(n)) > 1 for n in genome)
