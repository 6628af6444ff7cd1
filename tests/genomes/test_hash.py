"""Canonical hashes: invariant under node relabelling, sensitive to every op parameter, and
equal exactly when two genomes are isomorphic."""

import numpy as np
from hypothesis import assume, given
from hypothesis import strategies as st

import genomes
from genomes import Genome, spaces
from genomes.ops import OPS
from tests.strategies import genomes as random_genomes


@given(random_genomes(), st.randoms(use_true_random=False))
def test_hash_is_invariant_under_node_relabelling(genome, random):
    ids = genome.nodes
    fresh = [f"v{k}" for k in random.sample(range(10 * len(ids)), len(ids))]
    relabelled = genome.relabel(dict(zip(ids, fresh)))
    assert relabelled != genome
    assert relabelled.canonical_hash() == genome.canonical_hash()


@given(random_genomes(), st.randoms(use_true_random=False))
def test_hash_is_invariant_under_the_order_nodes_were_added_in(genome, random):
    """Scheme 1 read igraph's canonical permutation the wrong way round: a genome whose JSON
    listed its nodes in another order hashed differently."""
    data = genome.to_dict()
    random.shuffle(data["nodes"])
    reordered = Genome.from_dict(data)
    assert reordered == genome
    assert reordered.canonical_hash() == genome.canonical_hash()


def _other_value(op: str, name: str, value):
    """A different legal value for a parameter, so the hash test changes exactly one thing."""
    spec = next(p for p in OPS[op].params if p.name == name)
    if spec.choices:
        return next(c for c in spec.choices if c != value)
    if spec.type is bool:
        return not value
    if value in spec.also:
        return 1
    return (value or 0) + 1


@given(random_genomes(), st.data())
def test_hash_changes_when_one_op_parameter_changes(genome, data):
    nodes = [n for n in genome if genome.params(n)]
    node = data.draw(st.sampled_from(nodes))
    name = data.draw(st.sampled_from(sorted(genome.params(node))))
    changed = genome.copy()
    changed.set_params(node, **{name: _other_value(genome.op(node), name, genome.params(node)[name])})
    assert changed.canonical_hash() != genome.canonical_hash()


@given(random_genomes())
def test_hash_changes_when_an_edge_moves(genome):
    # Feed the head's pooling layer from one node earlier than the body's last node.
    pooling = genome.inputs(genome.inputs(genome.output_node)[0])[0]
    if genome.op(pooling) == "act":  # a hidden dense layer sits between
        pooling = genome.inputs(genome.inputs(pooling)[0])[0]
    last = genome.inputs(pooling)[0]
    earlier = genome.inputs(last)[0]
    assume(genome.op(earlier) != "input")
    moved = genome.copy()
    moved.disconnect(last, pooling)
    moved.connect(earlier, pooling)
    assert moved.canonical_hash() != genome.canonical_hash()


def _two_branches(merge: str, swap: bool) -> Genome:
    g = Genome((1, 8, 8), 2)
    x = g.add("input", id="input")
    a = g.add("conv", [x], channels=4, kernel=1)
    b = g.add("conv", [x], channels=4, kernel=3)
    y = g.add("identity", [b, a] if swap else [a, b], merge=merge)
    g.add("output", [g.add("dense", [g.add("globalpool", [y])], units=2)], id="output")
    return g


def test_input_order_counts_for_concat_but_not_for_add():
    assert _two_branches("add", False).canonical_hash() == _two_branches("add", True).canonical_hash()
    assert _two_branches("concat", False).canonical_hash() != _two_branches("concat", True).canonical_hash()


def test_distinct_nb201_cells_hash_apart():
    space = spaces.get("nb201", input_shape=(3, 32, 32), num_outputs=10)
    rng = np.random.default_rng(0)
    archs = {tuple(space.ops[i] for i in rng.integers(5, size=6)) for _ in range(150)}
    hashes = {space.from_arch(a).canonical_hash() for a in archs}
    assert len(hashes) == len(archs)


def test_equal_hash_exactly_when_isomorphic_among_samples():
    for name in ("chain", "multibranch", "cell"):
        space = spaces.get(name, input_shape=(1, 8, 8), num_outputs=10,
                           **({"ops": ["none", "nor_conv_1x1"]} if name == "cell" else {}))
        rng = np.random.default_rng(1)
        sampled = [space.sample(rng) for _ in range(40)]
        for a, b in zip(sampled, sampled[1:] + sampled[:1]):
            assert (a.canonical_hash() == b.canonical_hash()) == _isomorphic(a, b)
        groups = {}
        for g in sampled:
            groups.setdefault(g.canonical_hash(), []).append(g)
        assert all(_isomorphic(grp[0], other) for grp in groups.values() for other in grp[1:])
        assert len(groups) < len(sampled) or name != "cell"  # the small cell space repeats


def _branches(first: list[int], second: list[int]) -> Genome:
    g = Genome((4, 16, 16), 3)
    x = g.add("input", id="input")
    ends = []
    for kernels in (first, second):
        y = x
        for k in kernels:
            y = g.add("conv", [y], channels=4, kernel=k)
        ends.append(y)
    y = g.add("dense", [g.add("globalpool", [g.add("identity", ends, merge="add")])], units=3)
    g.add("output", [y], id="output")
    return g.validate()


def _pairings(pairs) -> Genome:
    g = Genome((4, 8, 8), 3)
    x = g.add("input", id="input")
    convs = [g.add("conv", [x], channels=4, kernel=3) for _ in range(6)]
    sums = [g.add("act", [g.add("identity", [convs[u], convs[v]], merge="add")]) for u, v in pairs]
    y = g.add("dense", [g.add("globalpool", [g.add("identity", sums, merge="add")])], units=3)
    g.add("output", [y], id="output")
    return g.validate()


def test_structures_that_weisfeiler_lehman_cannot_separate_hash_apart():
    # Long branches whose ends are paired differently: WL needs as many rounds as the branch is long.
    middle = [3] * 8
    a, b = _branches([1, *middle, 1], [5, *middle, 5]), _branches([1, *middle, 5], [5, *middle, 1])
    assert a.canonical_hash() != b.canonical_hash()
    # Six equal convs summed in pairs along one 6-cycle or two 3-cycles: WL never separates them.
    ring = _pairings([(0, 1), (1, 2), (2, 3), (3, 4), (4, 5), (5, 0)])
    triangles = _pairings([(0, 1), (1, 2), (2, 0), (3, 4), (4, 5), (5, 3)])
    assert not _isomorphic(ring, triangles)
    assert ring.canonical_hash() != triangles.canonical_hash()
    shuffled = ring.relabel({n: f"z{i}" for i, n in enumerate(reversed(ring.nodes))})
    assert shuffled.canonical_hash() == ring.canonical_hash()


def test_the_hash_scheme_names_what_the_hash_depends_on():
    import igraph

    assert igraph.__version__ in genomes.HASH_SCHEME


def _isomorphic(a: Genome, b: Genome) -> bool:
    import networkx as nx

    def label(g):
        out = g.graph.copy()
        for n, d in out.nodes(data=True):
            d["label"] = (d["op"], sorted(d["params"].items()), d.get("merge"))
        for u, v, d in out.edges(data=True):  # input order matters only into a concat
            d["key"] = d["port"] if out.nodes[v].get("merge") == "concat" else None
        return out

    return nx.is_isomorphic(label(a), label(b), node_match=lambda x, y: x["label"] == y["label"],
                            edge_match=lambda x, y: x["key"] == y["key"])
