"""Multi-objective selection: which individuals survive and which become parents.

Everything works on a minimisation matrix ``F`` (one row per individual). Two population
back-ends supply the algorithms: ``deap`` (``tools.selNSGA2``, ``selNSGA3``, ``selSPEA2``,
``selTournamentDCD``, its hypervolume indicator) and ``pymoo`` (``RankAndCrowding``,
``ReferenceDirectionSurvival``, ``SPEA2Survival``, ``LeastHypervolumeContributionSurvival``,
``TournamentSelection``). The selection modes combine them:

- ``nsga2``, ``nsga3``, ``spea2``, ``sms-emoa``: the back-end's survival of the best ``k``;
- ``lemonade`` (Elsken et al. 2019): the population is the non-dominated archive; parents and the
  children worth training are drawn with probability inversely proportional to a kernel density
  estimate over the cheap objectives, so sparse regions of the front are explored;
- ``aging`` (Real et al. 2019): tournament parents, and the oldest members die.

DEAP draws from Python's global ``random``; calls into it run under ``_python_random(rng)``, which
seeds it from our generator and restores its state afterwards, so nothing outside changes.
"""

from __future__ import annotations

import contextlib
import math
import random
from abc import ABC, abstractmethod
from types import SimpleNamespace
from typing import ClassVar, Sequence

import numpy as np

from .ranking import normalise, rank

__all__ = ["Backend", "Selection", "backend", "inverse_density", "make_selection"]


@contextlib.contextmanager
def _python_random(rng: np.random.Generator):
    state = random.getstate()
    random.seed(int(rng.integers(2**63)))
    try:
        yield
    finally:
        random.setstate(state)


class Backend(ABC):
    """The algorithms one population library provides, on minimisation matrices."""

    name: ClassVar[str]

    @abstractmethod
    def fronts(self, F: np.ndarray) -> list[np.ndarray]: ...

    @abstractmethod
    def crowding(self, F: np.ndarray) -> np.ndarray: ...

    @abstractmethod
    def survive(self, mode: str, F: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray: ...

    @abstractmethod
    def nsga2_parents(self, F: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray: ...


def _partitions(n_obj: int, k: int) -> int:
    """Das-Dennis partitions giving at least ``k`` reference directions."""
    p = 1
    while math.comb(p + n_obj - 1, n_obj - 1) < k:
        p += 1
    return p


class _DeapIndividual:
    __slots__ = ("index", "fitness")


class DeapBackend(Backend):
    name = "deap"

    @staticmethod
    def _population(F: np.ndarray) -> list:
        from deap import base

        # A Fitness class made here, per call: no ``creator`` classes in module globals.
        fitness = type("Fitness", (base.Fitness,), {"weights": (-1.0,) * F.shape[1]})
        pop = []
        for i, row in enumerate(F):
            ind = _DeapIndividual()
            ind.index, ind.fitness = i, fitness(tuple(float(v) for v in row))
            pop.append(ind)
        return pop

    def fronts(self, F):
        from deap import tools

        pop = self._population(F)
        return [np.array([ind.index for ind in front]) for front in
                tools.sortNondominated(pop, len(pop))]

    def crowding(self, F):
        from deap import tools

        pop = self._population(F)
        tools.emo.assignCrowdingDist(pop)
        return np.array([ind.fitness.crowding_dist for ind in pop])

    def survive(self, mode, F, k, rng):
        from deap import tools

        pop = self._population(F)
        with _python_random(rng):
            if mode == "nsga2":
                chosen = tools.selNSGA2(pop, k)
            elif mode == "nsga3":
                refs = tools.uniform_reference_points(F.shape[1], _partitions(F.shape[1], k))
                chosen = tools.selNSGA3(pop, k, refs)
            elif mode == "spea2":
                chosen = tools.selSPEA2(pop, k)
            elif mode == "sms-emoa":
                chosen = self._sms_emoa(pop, k)
            else:
                raise ValueError(f"deap has no survival {mode!r}")
        return np.array(sorted(ind.index for ind in chosen), dtype=int)

    @staticmethod
    def _sms_emoa(pop: list, k: int) -> list:
        """Drop, one at a time, the member of the last front with the least hypervolume share."""
        from deap import tools

        pool = list(pop)
        while len(pool) > k:
            last = tools.sortNondominated(pool, len(pool))[-1]
            worst = last[0] if len(last) == 1 else last[int(tools.indicator.hypervolume(last))]
            pool.remove(worst)
        return pool

    def nsga2_parents(self, F, n, rng):
        from deap import tools

        pop = self._population(F)
        for front in tools.sortNondominated(pop, len(pop)):
            tools.emo.assignCrowdingDist(front)
        chosen: list = []
        with _python_random(rng):
            while len(chosen) < n:  # DCD picks at most len(pop), in groups of four
                room = len(pop) - len(pop) % 4 if len(pop) >= 4 else 0
                if room == 0:
                    chosen += random.choices(pop, k=n - len(chosen))
                    break
                chosen += tools.selTournamentDCD(pop, room)
        return np.array([ind.index for ind in chosen[:n]], dtype=int)


class PymooBackend(Backend):
    name = "pymoo"

    @staticmethod
    def _setup(F: np.ndarray):
        from pymoo.core.population import Population
        from pymoo.core.problem import Problem

        return Problem(n_var=1, n_obj=F.shape[1]), Population.new("F", F, "index", np.arange(len(F)))

    def fronts(self, F):
        from pymoo.util.nds.non_dominated_sorting import NonDominatedSorting

        return [np.asarray(f) for f in NonDominatedSorting().do(F)]

    def crowding(self, F):
        from pymoo.operators.survival.rank_and_crowding.metrics import calc_crowding_distance

        return calc_crowding_distance(F)

    def survive(self, mode, F, k, rng):
        problem, pop = self._setup(F)
        if mode == "nsga2":
            from pymoo.operators.survival.rank_and_crowding import RankAndCrowding as survival
            algorithm = survival()
        elif mode == "nsga3":
            from pymoo.algorithms.moo.nsga3 import ReferenceDirectionSurvival
            from pymoo.util.ref_dirs import get_reference_directions

            dirs = get_reference_directions("das-dennis", F.shape[1],
                                            n_partitions=_partitions(F.shape[1], k))
            algorithm = ReferenceDirectionSurvival(dirs)
        elif mode == "spea2":
            from pymoo.algorithms.moo.spea2 import SPEA2Survival
            algorithm = SPEA2Survival(normalize=False)  # Selection normalises every column
        elif mode == "sms-emoa":
            from pymoo.algorithms.moo.sms import LeastHypervolumeContributionSurvival
            algorithm = LeastHypervolumeContributionSurvival()
        else:
            raise ValueError(f"pymoo has no survival {mode!r}")
        kept = algorithm.do(problem, pop, n_survive=k, random_state=rng)
        return np.array(sorted(int(i) for i in kept.get("index")), dtype=int)

    def nsga2_parents(self, F, n, rng):
        from pymoo.algorithms.moo.nsga2 import binary_tournament
        from pymoo.operators.selection.tournament import TournamentSelection
        from pymoo.operators.survival.rank_and_crowding import RankAndCrowding

        problem, pop = self._setup(F)
        ranked = RankAndCrowding().do(problem, pop, n_survive=len(F), random_state=rng)
        algorithm = SimpleNamespace(tournament_type="comp_by_dom_and_crowding", random_state=rng)
        chosen = TournamentSelection(func_comp=binary_tournament).do(
            problem, ranked, n, n_parents=1, algorithm=algorithm, random_state=rng, to_pop=False)
        return np.array([int(ranked[int(i)].get("index")) for i in np.asarray(chosen).ravel()],
                        dtype=int)


_BACKENDS = {"deap": DeapBackend, "pymoo": PymooBackend}


def backend(name: str) -> Backend:
    return _BACKENDS[name]()


class Selection:
    """One selection mode on one back-end.

    ``survivors(F, born, k)`` gives the indices that stay (``born``: birth order, for aging);
    ``parents(F, born, n)`` gives ``n`` parent indices (with repeats). ``archive`` modes keep
    every non-dominated individual rather than ``k``. ``cheap`` are the columns LEMONADE's
    density estimate uses.
    """

    def __init__(self, mode: str, back: Backend, *, cheap: Sequence[int] = (), tournament: int = 4):
        self.mode, self.back, self.cheap, self.tournament = mode, back, tuple(cheap), tournament

    @property
    def archive(self) -> bool:
        return self.mode == "lemonade"

    def survivors(self, F: np.ndarray, born: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
        F = normalise(F)
        n = len(F)
        if n == 0:
            return np.zeros(0, dtype=int)
        if self.mode == "lemonade":
            return np.sort(self.back.fronts(F)[0])
        if n <= k:
            return np.arange(n)
        if self.mode == "aging":
            return np.sort(np.argsort(-np.asarray(born), kind="stable")[:k])  # the k youngest
        return self.back.survive(self.mode, F, k, rng)

    def parents(self, F: np.ndarray, born: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
        F = normalise(F)
        if len(F) == 1:
            return np.zeros(n, dtype=int)
        if self.mode == "nsga2":
            return self.back.nsga2_parents(F, n, rng)
        if self.mode == "nsga3":
            return rng.integers(len(F), size=n)  # NSGA-III mates at random
        if self.mode == "lemonade":
            return rng.choice(len(F), size=n, p=inverse_density(F[:, self.cheap], F[:, self.cheap]))
        if self.mode == "aging":
            size = min(self.tournament, len(F))
            out = []
            for _ in range(n):
                sample = rng.choice(len(F), size=size, replace=False)
                out.append(sample[rank(F[sample])[0]])
            return np.array(out, dtype=int)
        place = np.empty(len(F), dtype=int)  # spea2, sms-emoa: binary tournament by rank and crowding
        place[rank(F)] = np.arange(len(F))
        pairs = rng.integers(len(F), size=(n, 2))
        return np.where(place[pairs[:, 0]] <= place[pairs[:, 1]], pairs[:, 0], pairs[:, 1])

    def choose_children(self, population: np.ndarray, children: np.ndarray, n: int,
                        rng: np.random.Generator) -> np.ndarray:
        """LEMONADE: which ``n`` of the proposed children to train (rows: cheap objectives)."""
        if len(children) <= n:
            return np.arange(len(children))
        p = inverse_density(population, children)
        return np.sort(rng.choice(len(children), size=n, replace=False, p=p))


def inverse_density(reference: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Probabilities proportional to 1 / (kernel density of ``reference`` at each point).

    Columns are standardised by the reference; with too few reference points for a density,
    every point is equally likely.
    """
    points = np.asarray(points, dtype=float)
    if len(reference) < 2 or points.shape[1] == 0:
        return np.full(len(points), 1 / len(points))
    from sklearn.neighbors import KernelDensity

    mean, std = reference.mean(0), reference.std(0)
    std[std == 0] = 1.0
    kde = KernelDensity(bandwidth="scott").fit((reference - mean) / std)
    density = np.exp(kde.score_samples((points - mean) / std))
    weight = 1.0 / np.maximum(density, 1e-12)
    return weight / weight.sum()


def make_selection(mode: str, backend_name: str, *, cheap: Sequence[int] = (),
                   tournament: int = 4) -> Selection:
    return Selection(mode, backend(backend_name), cheap=cheap, tournament=tournament)
