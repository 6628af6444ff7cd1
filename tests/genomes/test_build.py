"""Compiling genomes to PyTorch: every space builds and trains; weights are addressed by node
id and deterministic per (seed, node)."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from genomes import Genome, spaces
from tests.strategies import genomes, nb201_genomes


def _forward_backward(genome: Genome, batch: int = 3) -> torch.Tensor:
    net = genome.build(seed=1).train()
    x = torch.randn((batch, *genome.input_shape), generator=torch.Generator().manual_seed(0))
    y = net(x)
    assert y.shape == (batch, genome.num_outputs)
    assert torch.isfinite(y).all()
    y.square().mean().backward()
    grads = [p.grad for p in net.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)
    assert sum(g.abs().sum() for g in grads) > 0
    return y


@given(genomes(ndim=1))
def test_random_1d_genomes_build_and_run_forward_and_backward(genome):
    _forward_backward(genome)


@given(genomes(ndim=2))
def test_random_2d_genomes_build_and_run_forward_and_backward(genome):
    _forward_backward(genome)


@settings(max_examples=4)
@given(nb201_genomes())
def test_random_nb201_genomes_build_and_run_forward_and_backward(genome):
    _forward_backward(genome, batch=2)


@given(genomes())
def test_parameters_are_keyed_by_node_id_and_counted_without_building(genome):
    net = genome.build()
    for key in net.state_dict():
        assert key.split(".")[0] in genome
    assert genome.num_params() == sum(p.numel() for p in net.parameters())


@given(genomes(), st.integers(0, 2**31))
def test_same_genome_and_seed_give_same_weights_without_touching_global_rng(genome, seed):
    before = torch.get_rng_state()
    a, b = genome.build(seed=seed).state_dict(), genome.build(seed=seed).state_dict()
    assert torch.equal(before, torch.get_rng_state())
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    other = genome.build(seed=seed + 1).state_dict()
    drawn = [k for k in a if k.endswith(".weight") and a[k].ndim > 1]  # conv and dense kernels
    assert drawn and all(not torch.equal(a[k], other[k]) for k in drawn)


def test_a_nodes_initial_weights_do_not_depend_on_the_rest_of_the_graph():
    space = spaces.get("chain", input_shape=(1, 8, 8), num_outputs=10, min_layers=3)
    genome = space.sample(np.random.default_rng(3))
    changed = genome.copy()
    dense = genome.inputs(genome.output_node)[0]
    changed.set_params(dense, units=10, bias=False)
    a, b = genome.build(seed=5).state_dict(), changed.build(seed=5).state_dict()
    shared = [k for k in a if not k.startswith(dense + ".")]
    assert shared and all(torch.equal(a[k], b[k]) for k in shared)


def test_build_in_float64_on_an_explicit_device():
    genome = spaces.get("cell", input_shape=(2, 12), num_outputs=3).sample(np.random.default_rng(0))
    net = genome.build(dtype=torch.float64, device="cpu")
    assert all(p.dtype == torch.float64 for p in net.parameters())
    assert net(torch.randn(2, 2, 12, dtype=torch.float64)).dtype == torch.float64


def _twenty_node_genome() -> Genome:
    g = Genome((1, 8, 8), 10)
    x = g.add("input", id="input")
    x = g.add("act", [g.add("batchnorm", [g.add("conv", [x], channels=32, kernel=3)])])
    skip = x
    for _ in range(3):  # 3 x (conv, bn, act) = 9 nodes
        x = g.add("act", [g.add("batchnorm", [g.add("conv", [x], channels=32, kernel=3)])])
    x = g.add("identity", [x, skip], merge="add")
    x = g.add("maxpool", [x], kernel=2)
    x = g.add("act", [g.add("sepconv", [x], channels=64, kernel=3)])
    x = g.add("globalpool", [x])
    x = g.add("dense", [x], units=10)
    g.add("output", [x], id="output")
    return g


def test_twenty_node_genome_compiles_to_generated_code_and_runs_a_batch():
    # how fast it builds and runs is measured by benchmarks/build_forward.py, not asserted here
    genome = _twenty_node_genome()
    assert len(genome) == 20
    net = genome.build()
    assert isinstance(net, torch.fx.GraphModule) and "def forward" in net.code  # compiled, not walked
    with torch.no_grad():
        y = net(torch.randn(64, 1, 8, 8))
    assert y.shape == (64, 10) and torch.isfinite(y).all()


def test_build_refuses_an_invalid_genome_naming_the_node():
    g = _twenty_node_genome()
    g.set_params(g.inputs(g.output_node)[0], units=3)
    with pytest.raises(Exception, match="output"):
        g.build()


def test_the_reserved_ids_listed_without_torch_cover_the_installed_torchs_graph_module():
    # ``checks`` lists GraphModule's members so that reading genomes needs no torch; a torch
    # that adds one must be listed there (and ``build`` refuses it meanwhile, as below)
    from genomes.checks import _ID, _MEMBERS

    members = {n for n in dir(torch.fx.GraphModule) if _ID.match(n)}
    assert members <= _MEMBERS, sorted(members - _MEMBERS)
    for name in ("forward", "graph", "recompile", sorted(members)[-1]):
        g = Genome((1, 8, 8), 10)
        with pytest.raises(Exception, match=f"node id '{name}' is reserved"):
            g.add("input", id=name)


def test_build_refuses_an_id_that_this_torchs_graph_module_has_added(monkeypatch):
    import genomes.build

    genome = _twenty_node_genome()
    node = genome.inputs(genome.output_node)[0]

    class Newer(torch.fx.GraphModule):  # as if a newer torch had grown a member named ``node``
        pass

    setattr(Newer, node, None)
    monkeypatch.setattr(genomes.build.fx, "GraphModule", Newer)
    with pytest.raises(Exception, match=f"node id '{node}' is reserved \\(a member of torch"):
        genome.build()
