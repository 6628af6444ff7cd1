"""validate(): every kind of illegal genome gives a GenomeError naming the node, all at once."""

import networkx as nx
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from genomes import Genome, GenomeError
from tests.strategies import genomes


def _base() -> dict:
    """input -> c1 conv -> b1 bn -> a1 relu -> c2 conv -> m = a1 + c2 -> gp -> d dense -> output."""
    g = Genome((1, 6, 6), 3)
    x = g.add("input", id="input")
    a1 = g.add("act", [g.add("batchnorm", [g.add("conv", [x], id="c1", channels=4, kernel=3)],
                             id="b1")], id="a1")
    c2 = g.add("conv", [a1], id="c2", channels=4, kernel=3)
    m = g.add("identity", [a1, c2], id="m", merge="add")
    d = g.add("dense", [g.add("globalpool", [m], id="gp")], id="d", units=3)
    g.add("output", [d], id="output")
    g.validate()
    return g.to_dict()


def _node(data, node):
    return next(n for n in data["nodes"] if n["id"] == node)


def _set(node, **params):
    return lambda d: _node(d, node).setdefault("params", {}).update(params)


def _add(**item):
    return lambda d: d["nodes"].append(item)


CASES = {
    "cycle": (lambda d: _node(d, "b1").update(inputs=["c1", "a1"], merge="add"), "a1", "cycle"),
    "no inputs": (_add(id="orphan", op="identity"), "orphan", "has no inputs"),
    "unreachable": (lambda d: (_add(id="o1", op="identity")(d),
                               _add(id="o2", op="identity", inputs=["o1"])(d)),
                    "o2", "not reachable from the input"),
    "dead end": (_add(id="spur", op="conv", inputs=["a1"], params={"channels": 2, "kernel": 1}),
                 "spur", "dead end"),
    "add shape mismatch": (_set("c2", stride=2), "m", "shape mismatch"),
    "add channel mismatch": (_set("c2", channels=8), "m", "channel mismatch"),
    "concat spatial mismatch": (lambda d: (_set("c2", stride=2)(d), _node(d, "m").update(merge="concat")),
                                "m", "equal spatial size"),
    "kernel larger than input": (_set("c1", kernel=7), "c1", "larger than its input"),
    "dilated kernel larger than input": (_set("c1", dilation=3), "c1", "larger than its input"),
    "non-positive channels": (_set("c1", channels=0), "c1", "'channels' must be >= 1"),
    "non-positive stride": (_set("c2", stride=0), "c2", "'stride' must be >= 1"),
    "negative padding": (_set("c2", padding=-1), "c2", "'padding' must be >= 0"),
    "unknown op": (lambda d: _node(d, "c2").update(op="convolution"), "c2", "unknown op"),
    "unknown parameter": (_set("c1", colour="red"), "c1", "unknown parameter 'colour'"),
    "missing parameter": (lambda d: _node(d, "c1")["params"].pop("kernel"), "c1", "needs parameter 'kernel'"),
    "wrong type": (_set("c1", channels="4"), "c1", "must be int"),
    "bool for int": (_set("c1", kernel=True), "c1", "must be int"),
    "missing merge": (lambda d: _node(d, "m").pop("merge"), "m", "no merge"),
    "bad merge": (lambda d: _node(d, "m").update(merge="mul"), "m", "merge must be one of"),
    "dense on spatial input": (lambda d: _node(d, "gp").update(op="identity", params={}), "d", "flat input"),
    "globalpool on flat input": (lambda d: (_node(d, "gp").update(inputs=["d2"]),
                                            _add(id="d2", op="dense", inputs=["fl"], params={"units": 4})(d),
                                            _add(id="fl", op="flatten", inputs=["m"])(d)),
                                 "gp", "needs a (C, L) or (C, H, W) input"),
    "output shape": (_set("d", units=5), "output", "declares 3 outputs"),
    "groups": (_set("c2", groups=3), "c2", "groups 3 must divide"),
    "second input node": (_add(id="input2", op="input"), "input2", "second input"),
    "output with consumers": (_add(id="after", op="identity", inputs=["output"]), "output", "cannot feed"),
    "input with inputs": (lambda d: _node(d, "input").update(inputs=["a1"]), "input", "cannot have inputs"),
    "bad id": (lambda d: (_node(d, "c1").update(id="1c"), _node(d, "b1").update(inputs=["1c"])),
               "1c", "must start with a letter"),
    "reserved id": (lambda d: (_node(d, "c1").update(id="forward"), _node(d, "b1").update(inputs=["forward"])),
                    "forward", "reserved"),
    "pool padding": (lambda d: (_node(d, "gp").update(inputs=["p"]),
                                _add(id="p", op="maxpool", inputs=["m"], params={"kernel": 2, "padding": 2})(d)),
                     "p", "exceeds half its kernel"),
    "bad activation": (lambda d: _node(d, "a1").update(params={"fn": "swish"}), "a1", "must be one of"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_each_kind_of_illegal_genome_is_named_by_node(case):
    mutate, node, words = CASES[case]
    data = _base()
    mutate(data)
    genome = Genome.from_dict(data, validate=False)
    with pytest.raises(GenomeError) as info:
        genome.validate()
    assert node in info.value.nodes, str(info.value)
    assert words in str(info.value)
    with pytest.raises(GenomeError):
        Genome.from_dict(data)  # validating on load is the default


def test_all_problems_are_reported_at_once():
    data = _base()
    for case in ("kernel larger than input", "missing merge", "no inputs", "dead end"):
        CASES[case][0](data)
    with pytest.raises(GenomeError) as info:
        Genome.from_dict(data)
    assert {"c1", "m", "orphan", "spur"} <= set(info.value.nodes)
    assert str(info.value).startswith(f"{len(info.value.problems)} problems in genome")


def test_genome_wide_problems():
    g = Genome((1, 0, 6), 0)
    problems = " ".join(str(p) for p in g.problems())
    assert "input_shape" in problems and "num_outputs" in problems and "no input node" in problems


def test_editing_refuses_bad_parameters_at_once_naming_the_node():
    g = Genome((1, 6, 6), 3)
    x = g.add("input", id="input")
    with pytest.raises(GenomeError, match="'c'.*'channels' must be >= 1"):
        g.add("conv", [x], id="c", channels=0, kernel=3)
    with pytest.raises(GenomeError, match="'c'.*not nodes"):
        g.add("conv", ["nowhere"], id="c", channels=2, kernel=3)
    c = g.add("conv", [x], id="c", channels=2, kernel=3)
    with pytest.raises(GenomeError, match="'c'.*unknown parameter"):
        g.set_params(c, width=3)
    with pytest.raises(GenomeError, match="already exists"):
        g.add("identity", [x], id="c")
    assert g.params(c)["channels"] == 2


CORRUPTIONS = ("cycle", "dead end", "orphan", "huge kernel", "wrong output")


@given(genomes(), st.sampled_from(CORRUPTIONS), st.data())
def test_corrupting_a_random_genome_names_the_corrupted_node(genome, how, data):
    g = genome.copy()
    inner = [n for n in g if g.op(n) not in ("input", "output")]
    if how == "cycle":
        v = data.draw(st.sampled_from([n for n in inner if g.op(g.successors(n)[0]) != "output"]))
        w = g.successors(v)[0]
        g.connect(w, v)
        g.set_merge(v, "add")
        named, words = {v, w}, "cycle"
    elif how == "dead end":
        src = data.draw(st.sampled_from(inner))
        named, words = {g.add("identity", [src])}, "dead end"
    elif how == "orphan":
        named, words = {g.add("identity", [])}, "has no inputs"
    elif how == "huge kernel":
        windows = [n for n in inner if "kernel" in g.params(n)]
        assume(windows)
        node = data.draw(st.sampled_from(windows))
        g.set_params(node, kernel=99)
        named, words = {node}, "larger than its input"
    else:
        g.set_params(g.inputs(g.output_node)[0], units=g.num_outputs + 1)
        named, words = {g.output_node}, "outputs"
    with pytest.raises(GenomeError) as info:
        g.validate()
    assert named & set(info.value.nodes), str(info.value)
    assert words in str(info.value)


def test_parameter_types_are_not_confused_by_equal_values():
    """3.0 == 3 and True == 1 in Python; a 3.0 kernel must stay illegal before and after a 3."""
    def doc(kernel, bias):
        data = _base()
        _node(data, "c1")["params"].update(kernel=kernel, bias=bias)
        return data

    for first, second in [((3.0, 1), (3, True)), ((3, True), (3.0, 1))]:
        for kernel, bias in (first, second):
            genome = Genome.from_dict(doc(kernel, bias), validate=False)
            legal = type(kernel) is int and type(bias) is bool
            assert (genome.problems() == []) == legal
            assert genome.params("c1")["kernel"] == kernel and type(genome.params("c1")["kernel"]) is type(kernel)


def test_self_is_not_a_node_id():
    g = Genome((1, 6, 6), 3)
    with pytest.raises(GenomeError, match="reserved"):
        g.add("input", id="self")


def test_shape_and_output_count_are_read_only():
    g = Genome.from_dict(_base())
    with pytest.raises(AttributeError):
        g.num_outputs = 5
    with pytest.raises(AttributeError):
        g.input_shape = (1, 2, 2)


def test_inputs_given_as_a_string_get_a_hint():
    g = Genome((1, 6, 6), 3)
    g.add("input", id="input")
    with pytest.raises(GenomeError, match=r"did you mean \['input'\]"):
        g.add("act", "input")


def test_the_graph_property_is_a_copy_that_cannot_change_the_genome():
    g = Genome.from_dict(_base())
    view = g.graph
    view.nodes["c1"]["params"]["kernel"] = 99
    assert g.params("c1")["kernel"] == 3 and g.problems() == []
    with pytest.raises(nx.NetworkXError, match="Frozen"):
        view.add_node("extra")
