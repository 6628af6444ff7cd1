"""The search-space registry and the contract every space keeps."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from genomes import Genome, spaces
from tests.strategies import SMALL_SPACES, input_shapes

ALL = spaces.names()


def _space(name, shape=None, **options):
    shape = shape or ((3, 32, 32) if name == "nb201" else (1, 8, 8))
    return spaces.get(name, input_shape=shape, num_outputs=10, **options)


def test_registry_lists_the_four_spaces():
    assert set(ALL) == {"chain", "multibranch", "cell", "nb201"}


def test_unknown_space_and_option_are_refused_by_name():
    with pytest.raises(ValueError, match="unknown search space 'resnet'.*chain"):
        spaces.get("resnet", input_shape=(1, 8, 8), num_outputs=10)
    with pytest.raises(ValueError, match="unknown option 'depth' for search space 'chain'.*max_layers"):
        spaces.get("chain", input_shape=(1, 8, 8), num_outputs=10, depth=3)


@pytest.mark.parametrize("name, options, key", [
    ("chain", {"channels": []}, "channels"),
    ("chain", {"kernels": [3, 0]}, "kernels"),
    ("chain", {"ops": ["conv", "lstm"]}, "ops"),
    ("chain", {"min_layers": 4, "max_layers": 2}, "max_layers"),
    ("chain", {"pool_prob": 1.5}, "pool_prob"),
    ("multibranch", {"stages": 9}, "stages"),
    ("multibranch", {"activations": ["swish"]}, "activations"),
    ("cell", {"ops": ["nor_conv_7x7"]}, "ops"),
    ("cell", {"nodes": 1}, "nodes"),
    ("cell", {"stages": 4}, "stages"),
    ("cell", {"strict": 1}, "strict"),
    ("nb201", {"max_params": 0}, "max_params"),
])
def test_bad_options_name_the_option(name, options, key):
    with pytest.raises(ValueError, match=f"option '{key}'"):
        _space(name, **options)


def test_bad_input_shapes_are_refused():
    with pytest.raises(ValueError, match="input_shape"):
        spaces.get("chain", input_shape=(8,), num_outputs=10)
    with pytest.raises(ValueError, match="input_shape"):
        spaces.get("cell", input_shape=(1, 2, 2), num_outputs=10)
    with pytest.raises(ValueError, match="num_outputs"):
        spaces.get("multibranch", input_shape=(1, 8), num_outputs=0)


@pytest.mark.parametrize("name", ALL)
def test_rng_must_be_a_numpy_generator(name):
    with pytest.raises(TypeError, match="numpy.random.Generator"):
        _space(name).sample(42)


@given(st.sampled_from(SMALL_SPACES), input_shapes(), st.integers(0, 2**32 - 1))
def test_samples_are_legal_members_within_bounds_and_reproducible(name, shape, seed):
    space = spaces.get(name, input_shape=shape, num_outputs=5)
    genome = space.sample(np.random.default_rng(seed))
    assert space.contains(genome), space.why_not(genome)
    assert len(genome) <= space.bounds.max_nodes
    assert genome.num_params() <= space.bounds.max_params
    assert genome == space.sample(np.random.default_rng(seed))


@pytest.mark.parametrize("name", ALL)
def test_initial_population_is_distinct_and_reproducible(name):
    space = _space(name)
    first = space.initial(np.random.default_rng(7), 12)
    assert len({g.canonical_hash() for g in first}) == 12
    assert all(space.contains(g) for g in first)
    assert first == space.initial(np.random.default_rng(7), 12)


def test_too_small_a_space_says_so():
    space = _space("cell", ops=["none", "skip_connect"], nodes=2)
    with pytest.raises(ValueError, match="only 2 distinct genomes"):
        space.initial(np.random.default_rng(0), 5)


def test_impossible_bounds_say_so():
    with pytest.raises(ValueError, match="drew no legal genome.*more than max_params=10"):
        _space("chain", max_params=10).sample(np.random.default_rng(0))


def test_bounds_are_enforced_by_contains():
    space = _space("chain")
    genome = space.sample(np.random.default_rng(0))
    tight = _space("chain", max_params=genome.num_params() - 1)
    assert not tight.contains(genome)
    assert "more than max_params" in tight.why_not(genome)[0]


def test_membership_follows_each_spaces_structure():
    chain, multi, cell = _space("chain"), _space("multibranch"), _space("cell")
    rng = np.random.default_rng(0)
    branched = next(g for g in (multi.sample(rng) for _ in range(50))
                    if any(len(g.inputs(n)) > 1 for n in g))
    assert multi.contains(branched)
    assert not chain.contains(branched)
    assert "at most one input" in " ".join(chain.why_not(branched))
    assert not cell.contains(chain.sample(rng))
    assert multi.contains(chain.sample(rng))  # a chain is a DAG of multibranch ops
    other_shape = spaces.get("chain", input_shape=(1, 9, 9), num_outputs=10)
    assert not other_shape.contains(chain.sample(rng))


def test_members_may_grow_beyond_the_sampling_choices():
    """Membership is structural, so a widened child (as a morphism makes) stays in the space."""
    space = _space("chain")
    genome = space.sample(np.random.default_rng(2))
    conv = next(n for n in genome if genome.op(n) in ("conv", "sepconv"))
    genome.set_params(conv, channels=max(space.channels) + 3)
    assert space.contains(genome), space.why_not(genome)


def test_cell_space_reads_back_its_architecture_even_after_relabelling():
    space = _space("cell", shape=(2, 24), cells_per_stage=2)
    arch = ("nor_conv_3x3", "sep_conv_3x3", "skip_connect", "none", "max_pool_3x3", "avg_pool_3x3")
    genome = space.from_arch(arch)
    assert space.decode(genome) == arch
    relabelled = genome.relabel({n: f"q{i}" for i, n in enumerate(genome)})
    assert space.decode(relabelled) == arch and space.contains(relabelled)


def test_decode_refuses_cells_that_differ_or_extra_nodes():
    space = _space("cell", cells_per_stage=2)
    genome = space.from_arch(["nor_conv_3x3"] * 6)
    odd = genome.copy()
    odd.set_params("c1_e0_1_1", kernel=1)  # cell 1's first edge becomes a 1x1 conv
    extra = genome.copy()
    extra.add("identity", ["c0_n3", "c0_n2"], merge="add")
    for grown in (odd, extra):
        with pytest.raises(ValueError, match="not a genome of the cell space"):
            space.decode(grown)


def test_grown_cell_genomes_stay_in_the_cell_space_but_not_in_nb201():
    cell = _space("cell", cells_per_stage=2)
    genome = cell.from_arch(["nor_conv_3x3"] * 6)
    grown = genome.copy()
    grown.set_params("c0_e0_1_1", kernel=1)  # cells no longer alike: decode refuses it
    grown.add("identity", ["c0_n3", "c0_n2"], merge="add")
    grown.replace_input("c1_e0_1_0", "c0_n3", grown.nodes[-1])
    assert grown.problems() == [] and cell.contains(grown)
    headless = genome.copy()
    dense = headless.inputs(headless.output_node)[0]
    headless.replace_input(dense, headless.inputs(dense)[0], "c1_n3")
    headless.remove("head_pool")
    assert not cell.contains(headless) and "head" in " ".join(cell.why_not(headless))
    nb201 = spaces.get("nb201", input_shape=(3, 32, 32), num_outputs=10)
    member = nb201.from_arch(["nor_conv_3x3"] * 6)
    changed = member.copy()
    changed.set_params("c1_e0_1_1", kernel=1)
    assert nb201.contains(member) and not nb201.contains(changed)
    assert cell.bounds.max_params == 2 * max(
        cell.from_arch([op] * 6).num_params() for op in cell.ops)


@pytest.mark.parametrize("name", ALL)
def test_options_echo_the_constructor(name):
    space = _space(name)
    assert spaces.get(name, **space.options()).options() == space.options()
    assert name in repr(space) or type(space).__name__ in repr(space)


def test_spaces_build_genomes_not_modules():
    genome = _space("multibranch").sample(np.random.default_rng(0))
    assert isinstance(genome, Genome)
    assert not hasattr(genome, "forward")


def test_initial_needs_a_count():
    space = _space("chain")
    assert space.initial(np.random.default_rng(0), 0) == []
    for bad in (-1, 2.5):
        with pytest.raises(ValueError, match="option 'n'"):
            space.initial(np.random.default_rng(0), bad)


def test_even_kernels_are_refused_because_same_padding_would_shrink_them():
    with pytest.raises(ValueError, match="option 'kernels' must be odd"):
        _space("chain", kernels=[2, 3])


def test_a_failed_draw_says_why():
    space = _space("chain", shape=(1, 3, 3), min_layers=2, kernels=[1], max_nodes=5)
    with pytest.raises(ValueError, match="nodes, more than max_nodes=5"):
        space.sample(np.random.default_rng(0))


def test_nb201_needs_images_it_can_halve_twice():
    for shape in [(3, 8, 8), (3, 64), (3, 30, 30)]:
        with pytest.raises(ValueError, match="option 'input_shape'.*multiples of 4"):
            spaces.get("nb201", input_shape=shape, num_outputs=10)
    assert spaces.get("nb201", input_shape=(3, 16, 16), num_outputs=120).contains(
        spaces.get("nb201", input_shape=(3, 16, 16), num_outputs=120).sample(np.random.default_rng(0)))
