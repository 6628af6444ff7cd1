"""The ``gradient`` proposer (issue 14): the relaxed network starts as its parent where the
initialisation says so, children are legal members that load their weights and keep the
parent's untouched layers, GAEA stays on the simplex, the guard never returns an all skip/none
cell, one seed gives one child, a diverging job is a failed result, options are named in their
errors, and ``propose`` runs its jobs through ``request.dispatch``."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import objectives as O
from genomes import spaces
from operators import Member, NotApplicable, morphisms
from operators.gradient import (
    EMPTY_CELL_OPS, Gradient, Relaxation, make_job, relax, relax_job, relaxable_sites,
    site_nodes, weights_from_bytes)
from operators.proposer import PARTIAL

from .helpers import close, outputs, trained_looking

SHAPE = (1, 8, 8)
TRAINING = O.TrainConfig(batch_size=32)
TASK_SPEC = {"dataset": "synthetic", "seed": 0,
             "options": {"input_shape": list(SHAPE), "num_classes": 3, "samples": 160}}


@pytest.fixture(scope="module")
def task():
    return O.tasks.get("synthetic", input_shape=SHAPE, num_classes=3, samples=160, seed=0)


def cell_space(**options):
    return spaces.get("cell", input_shape=SHAPE, num_outputs=3, channels=8, **options)


def block_space(**options):
    return spaces.get("multibranch", input_shape=SHAPE, num_outputs=3, channels=[4, 8], **options)


def trained(genome, task, seed=0):
    out = O.train(genome, task, O.TrainConfig(epochs=1, batch_size=32), until=1, seed=seed)
    assert not out.failed, out.reason
    return out.state.model


# ---------------------------------------------------------------------- the start
def test_cell_start_is_the_parent_where_every_candidate_reproduces_its_op():
    """A 1x1 conv edge among 3x3 and separable convs: the 3x3 is the zero-padded kernel and the
    separable conv a delta depthwise kernel times the 1x1 weights, so the relaxed network is its
    parent (eval mode, float64) whatever the mixture weights."""
    space = cell_space()
    arch = ["nor_conv_1x1", "skip_connect", "nor_conv_3x3", "avg_pool_3x3", "none", "sep_conv_3x3"]
    genome = space.from_arch(arch)
    state = trained_looking(genome, seed=3)
    x = torch.randn((5, *SHAPE), dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    rel = Relaxation(genome, state, [0], space=space, init_mass=0.5,
                     ops=["nor_conv_1x1", "nor_conv_3x3", "sep_conv_3x3"])
    assert rel.sites[0].exact == [[True, True, True], [True, True, True]]  # one row per cell
    with torch.no_grad():
        assert close(rel.module(x), outputs(genome, state, x)) < 1e-5


def test_block_start_is_the_parent_for_larger_kernels():
    """A 1x1 conv block among 3x3 and 5x5 convs (zero-padded kernels, batch norm copied)."""
    genome = block_space(kernels=[1], ops=["conv"]).sample(np.random.default_rng(4))
    space = block_space(kernels=[1, 3, 5], ops=["conv"])
    assert space.contains(genome)
    state = trained_looking(genome, seed=4)
    sites = relaxable_sites(genome, space)
    x = torch.randn((5, *SHAPE), dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    rel = Relaxation(genome, state, sites[:3], space=space, init_mass=0.5)
    assert all(all(row) for site in rel.sites for row in site.exact)
    with torch.no_grad():
        assert close(rel.module(x), outputs(genome, state, x)) < 1e-5


def test_inexact_candidates_move_the_start_by_at_most_their_share():
    """Where candidates do not reproduce the parent's op, a smaller ``init_mass`` keeps the
    relaxed network closer to its parent (the deviation is linear in it)."""
    space = cell_space()
    genome = space.from_arch(["nor_conv_3x3"] * 6)
    state = trained_looking(genome, seed=5)
    x = torch.randn((5, *SHAPE), dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    parent = outputs(genome, state, x)
    gaps = []
    for mass in (0.2, 0.02):
        rel = Relaxation(genome, state, [1, 4], space=space, init_mass=mass)
        with torch.no_grad():
            gaps.append(close(rel.module(x), parent))
    assert gaps[0] > 1e-3 and gaps[1] < gaps[0] / 5


# ---------------------------------------------------------------------- the child
@pytest.mark.parametrize("kind", ["cell", "multibranch"])
def test_child_is_a_member_with_its_weights_and_the_parents_elsewhere(task, kind):
    space = cell_space() if kind == "cell" else block_space()
    genome = space.sample(np.random.default_rng(7))
    weights = trained(genome, task)
    sites = relaxable_sites(genome, space)[:2]
    child, state, info = relax(genome, weights, task, sites, space=space, training=TRAINING,
                               epochs=0.5, seed=1)
    assert space.contains(child), space.why_not(child)
    assert child.canonical_hash() != genome.canonical_hash()  # not a duplicate of its parent
    net = child.build()
    missing, unexpected = net.load_state_dict(state, strict=False)
    assert not missing and not unexpected
    touched = set(site_nodes(genome, space, sites))
    untouched = [k for k in state if k.split(".")[0] in genome and k.split(".")[0] not in touched]
    assert untouched and all(torch.equal(state[k], weights[k]) for k in untouched)
    assert O.accuracy(net, task.val) == pytest.approx(info["child_val_acc"])
    assert {s["site"] for s in info["sites"]} == set(sites)
    assert info["seconds"] > 0 and info["steps"] >= 2


def test_gaea_keeps_the_weights_on_the_simplex(task):
    space = block_space()
    genome = space.sample(np.random.default_rng(8))
    rel_sites = relaxable_sites(genome, space)[:2]
    _, _, info = relax(genome, trained(genome, task), task, rel_sites, space=space,
                       training=TRAINING, update="gaea", arch_lr=2.0, epochs=1.0, seed=0)
    for site in info["sites"]:
        w = np.array(site["weights"])
        assert (w >= 0).all() and w.sum() == pytest.approx(1.0, abs=1e-5)
        assert not np.allclose(w, w[0])  # it moved


def test_a_grown_cell_genome_has_no_sites():
    space = cell_space()
    genome = space.sample(np.random.default_rng(0))
    child = morphisms.apply("deepen", genome, trained_looking(genome, 0),
                            np.random.default_rng(0), space=space)
    assert space.contains(child.genome) and relaxable_sites(child.genome, space) == []


@settings(max_examples=8, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**16), guard=st.sampled_from(["pt", "cap"]),
       update=st.sampled_from(["darts", "gaea"]))
def test_the_guard_never_returns_an_all_skip_none_cell(task, seed, guard, update):
    """A parent whose one conv edge is relaxed with two skip/none edges: every child must keep
    an op outside skip and none, whatever the seed, guard and update."""
    space = cell_space()
    rng = np.random.default_rng(seed)
    edges = space.edges()
    keep = [e for e, (i, j) in enumerate(edges) if j == space.nodes - 1][int(rng.integers(3))]
    arch = [("nor_conv_3x3" if e == keep else EMPTY_CELL_OPS[int(rng.integers(2))])
            for e in range(len(edges))]
    genome = space.from_arch(arch)
    eligible = relaxable_sites(genome, space)
    others = [e for e in eligible if e != keep]
    sites = [keep] + [others[int(i)] for i in rng.choice(len(others), min(2, len(others)),
                                                          replace=False)]
    child, _, info = relax(genome, genome.build(seed=seed).state_dict(), task, sites, space=space,
                           training=TRAINING, epochs=0.3, guard=guard, update=update, seed=seed)
    assert not all(op in EMPTY_CELL_OPS for op in space.decode(child))
    assert tuple(info["arch"]) == space.decode(child)


def test_one_seed_gives_one_child(task):
    space = cell_space()
    genome = space.sample(np.random.default_rng(2))
    weights = trained(genome, task)
    sites = relaxable_sites(genome, space)[-2:]
    runs = [relax(genome, weights, task, sites, space=space, training=TRAINING, epochs=0.5,
                  seed=5) for _ in range(2)]
    (g1, w1, i1), (g2, w2, i2) = runs
    assert g1.to_json() == g2.to_json()
    assert w1.keys() == w2.keys() and all(torch.equal(w1[k], w2[k]) for k in w1)
    assert i1["sites"] == i2["sites"]


# ---------------------------------------------------------------------- the job
def test_a_diverging_job_is_a_failed_result(task):
    space = cell_space()
    genome = space.sample(np.random.default_rng(1))
    job = make_job(genome=genome, weights=trained(genome, task), space=space, task=TASK_SPEC,
                   training={"batch_size": 32}, sites=relaxable_sites(genome, space)[:2],
                   options={"lr": 1e9, "epochs": 10.0}, seed=0)
    json.dumps({k: v for k, v in job.items() if k != "weights"})  # plain data
    result = relax_job(job)
    assert set(result) == {"failed", "seconds"} and "diverged" in result["failed"]


def test_a_broken_job_is_a_failed_result_too():
    result = relax_job({"genome": "{not json", "space": {"name": "cell", "options": {}}})
    assert "failed" in result and result["failed"]


def test_a_job_round_trips_as_plain_data(task):
    space = block_space()
    genome = space.sample(np.random.default_rng(3))
    weights = trained(genome, task)
    job = make_job(genome=genome, weights=weights, space=space, task=TASK_SPEC,
                   training={"batch_size": 32, "threads": 1, "early_ranking": None},
                   sites=relaxable_sites(genome, space)[:1], options={"epochs": 0.5}, seed=0)
    result = relax_job(job)
    assert "failed" not in result, result.get("failed")
    child = type(genome).from_json(result["genome"])
    assert space.contains(child)
    child.build().load_state_dict(weights_from_bytes(result["weights"]))


# ---------------------------------------------------------------------- the proposer
@pytest.mark.parametrize("options, name", [
    ({"sites": 4}, "sites"), ({"sites": 0}, "sites"), ({"epochs": 0}, "epochs"),
    ({"update": "adam"}, "update"), ({"lr": -1.0}, "lr"), ({"arch_lr": 0}, "arch_lr"),
    ({"guard": "none"}, "guard"), ({"max_free": -1}, "max_free"), ({"init_mass": 1.0}, "init_mass"),
    ({"scope": "cells"}, "scope"), ({"ops": ["conv", "bogus"]}, "ops"),
    ({"handover": 2}, "handover"),
    ({"epochs": True}, "epochs"),
])
def test_option_errors_name_the_option(options, name):
    with pytest.raises(ValueError, match=f"option '{name}'"):
        Gradient(**options)


def fake_request(space, parents, *, dispatch=None, weights=True, seed=0):
    members = tuple(Member(k, g, None, "random", 0, weights=(lambda w=w: w))
                    for k, (g, w) in enumerate(parents))
    request = SimpleNamespace(
        n=len(members), parents=tuple((m,) for m in members), population=members,
        seen=frozenset(m.genome.canonical_hash() for m in members), space=space,
        rng=np.random.default_rng(seed), weights=weights, generation=1,
        task=TASK_SPEC, training={"batch_size": 32, "threads": 1, "inherited_lr_scale": 0.2})
    if dispatch is not None:
        request.dispatch = dispatch
    return request


def inline(fn, jobs):
    return [fn(job, "cpu") for job in jobs]


@pytest.mark.parametrize("kind", ["cell", "multibranch"])
def test_propose_dispatches_jobs_and_returns_legal_children(task, kind):
    space = cell_space() if kind == "cell" else block_space()
    parents = [(g, trained(g, task, k)) for k, g in
               enumerate(space.initial(np.random.default_rng(9), 2))]
    calls = []

    def dispatch(fn, jobs):
        calls.append(len(jobs))
        return inline(fn, jobs)

    children = Gradient(sites=2, epochs=0.5).propose(fake_request(space, parents,
                                                                  dispatch=dispatch))
    assert calls == [2] and len(children) == 2
    for child, (genome, _) in zip(children, parents):
        assert space.contains(child.genome)
        assert child.treatment == PARTIAL and child.provenance.operator == "gradient"
        assert child.provenance.parents == (genome.canonical_hash(),)
        assert set(child.provenance.site) <= set(genome)
        assert child.genome.canonical_hash() not in {g.canonical_hash() for g, _ in parents}
        child.genome.build().load_state_dict(child.state_dict)


def test_propose_leaves_out_failed_jobs(task):
    space = cell_space()
    parents = [(g, trained(g, task)) for g in space.initial(np.random.default_rng(1), 2)]
    children = Gradient(epochs=0.5).propose(fake_request(
        space, parents, dispatch=lambda fn, jobs: [{"failed": "time-out"}, fn(jobs[1], "cpu")]))
    assert len(children) == 1


def test_propose_refuses_without_dispatch_or_trained_weights(task):
    space = cell_space()
    genome = space.sample(np.random.default_rng(0))
    with pytest.raises(NotApplicable, match="dispatch"):
        Gradient().propose(fake_request(space, [(genome, trained(genome, task))]))
    with pytest.raises(NotApplicable, match="trains nothing"):
        Gradient().propose(fake_request(space, [(genome, None)], dispatch=inline, weights=False))
