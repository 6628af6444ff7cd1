"""Selection on hand-made populations: survivors are exactly the ones each rule keeps, on
both back-ends."""

import numpy as np
import pytest

from evonas.search.selection import inverse_density, make_selection

BACKENDS = ["deap", "pymoo"]

# Minimisation. Non-dominated: 0, 1, 2, 3, 6. Dominated: 4 (by 1), 5 (by all), 7 (by 6).
F = np.array([[1, 9], [2, 5], [2.2, 4.8], [9, 1], [5, 9.5], [9.5, 9.5], [3, 3], [4, 4]], float)
BORN = np.array([0, 1, 2, 3, 4, 5, 6, 7])


def _survivors(mode, backend, k, F=F, born=BORN, **kw):
    return set(make_selection(mode, backend, **kw).survivors(F, born, k, np.random.default_rng(0)).tolist())


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("mode", ["nsga2", "nsga3", "spea2", "sms-emoa"])
def test_the_first_front_survives_whole_when_it_fits(mode, backend):
    assert _survivors(mode, backend, 5) == {0, 1, 2, 3, 6}
    assert _survivors(mode, backend, 6) == {0, 1, 2, 3, 6, 7}  # then the best of front two


@pytest.mark.parametrize("backend", BACKENDS)
def test_nsga2_keeps_the_extremes_and_the_least_crowded(backend):
    # Crowding in the first front: 0 and 3 are extremes (infinite); 6: 1.325, 1: 0.675, 2: 0.375.
    assert _survivors("nsga2", backend, 3) == {0, 3, 6}
    assert _survivors("nsga2", backend, 4) == {0, 1, 3, 6}


@pytest.mark.parametrize("backend", BACKENDS)
def test_nsga3_keeps_one_member_per_reference_direction(backend):
    # Directions (0, 1), (0.5, 0.5), (1, 0): niches {0, 1, 2}, {6}, {3}; 0 lies on its direction.
    assert _survivors("nsga3", backend, 3) == {0, 3, 6}


@pytest.mark.parametrize("backend", BACKENDS)
def test_spea2_truncates_the_most_crowded_by_nearest_neighbours(backend):
    # 1 and 2 are nearest neighbours; 2's second neighbour is closer, so 2 goes first, then 1.
    assert _survivors("spea2", backend, 3) == {0, 3, 6}


@pytest.mark.parametrize("backend", BACKENDS)
def test_sms_emoa_drops_the_least_hypervolume_contributor(backend):
    front = np.array([[0, 10], [1, 5], [1.2, 4.9], [5, 1], [10, 0]], float)
    # (1.2, 4.9) adds only [1.2, 5) x [4.9, 5) = 0.38; every other point adds at least 1.
    assert _survivors("sms-emoa", backend, 4, F=front, born=np.arange(5)) == {0, 1, 3, 4}


@pytest.mark.parametrize("backend", BACKENDS)
def test_lemonade_keeps_the_whole_non_dominated_archive(backend):
    assert _survivors("lemonade", backend, 2, cheap=[1]) == {0, 1, 2, 3, 6}


@pytest.mark.parametrize("backend", BACKENDS)
def test_aging_kills_the_oldest(backend):
    born = np.array([5, 0, 7, 1, 6, 2, 4, 3])
    assert _survivors("aging", backend, 5, born=born) == {0, 2, 4, 6, 7}  # born 5, 7, 6, 4, 3


@pytest.mark.parametrize("backend", BACKENDS)
def test_aging_tournaments_pick_the_best_of_each_sample(backend):
    sel = make_selection("aging", backend, tournament=8)  # the whole population: always the best
    parents = sel.parents(F, BORN, 20, np.random.default_rng(0))
    assert set(parents.tolist()) <= {0, 3}  # the extremes of the first front win on crowding


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("mode", ["nsga2", "nsga3", "spea2", "sms-emoa", "lemonade", "aging"])
def test_selection_is_reproducible_and_returns_members(mode, backend):
    sel = make_selection(mode, backend, cheap=[1])
    a = sel.parents(F, BORN, 12, np.random.default_rng(3))
    b = sel.parents(F, BORN, 12, np.random.default_rng(3))
    assert a.tolist() == b.tolist() and len(a) == 12 and set(a.tolist()) <= set(range(8))


def test_nsga2_parents_prefer_the_first_front():
    for backend in BACKENDS:
        picks = make_selection("nsga2", backend).parents(F, BORN, 400, np.random.default_rng(0))
        counts = np.bincount(picks, minlength=8)
        assert counts[[0, 1, 2, 3, 6]].sum() > 3 * counts[[4, 5, 7]].sum()


def test_lemonade_samples_sparse_regions_more_often():
    cheap = np.array([[0.0], [0.05], [0.1], [0.15], [5.0]])  # four crowded, one alone
    p = inverse_density(cheap, cheap)
    assert p[4] > 2 * p[:4].max() and np.isclose(p.sum(), 1)
    children = np.array([[0.02], [2.5]])
    choose = make_selection("lemonade", "pymoo", cheap=[0])
    picks = [choose.choose_children(cheap, children, 1, np.random.default_rng(s))[0] for s in range(200)]
    assert picks.count(1) > picks.count(0)


def test_deap_selection_leaves_the_global_random_state_alone():
    import random

    random.seed(123)
    before = random.getstate()
    make_selection("nsga2", "deap").parents(F, BORN, 8, np.random.default_rng(0))
    make_selection("spea2", "deap").survivors(F, BORN, 3, np.random.default_rng(0))
    assert random.getstate() == before
