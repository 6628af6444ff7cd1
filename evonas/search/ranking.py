"""The one ranking everything uses: objective values as a minimisation matrix, non-dominated
fronts, ranking by front then crowding, and per-column scaling. Selection, early ranking, the
engine's front and the run view all call these (pymoo's sorting and crowding underneath)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from pymoo.util.nds.non_dominated_sorting import NonDominatedSorting

from objectives import EvaluationRecord

__all__ = ["first_front", "fronts", "minimisation_matrix", "normalise", "rank"]


def minimisation_matrix(records: Sequence[EvaluationRecord], directions: Mapping[str, str]) -> np.ndarray:
    """Objective values as rows, each column turned into minimisation by its direction."""
    if not directions or any(d not in ("min", "max") for d in directions.values()):
        raise ValueError(f"directions must map objective keys to 'min' or 'max', got {dict(directions)}")
    keys = list(directions)
    for r in records:
        if missing := [k for k in keys if k not in r.objectives]:
            raise ValueError(f"record {r.genome_hash} has no value for objective {missing[0]!r}")
    sign = np.array([1.0 if directions[k] == "min" else -1.0 for k in keys])
    return np.array([[r.objectives[k] for k in keys] for r in records],
                    dtype=float).reshape(-1, len(keys)) * sign


def fronts(F: np.ndarray) -> list[np.ndarray]:
    """Row indices of a minimisation matrix by non-dominated front, best front first."""
    if len(F) == 0:
        return []
    return [np.sort(np.asarray(f, dtype=int)) for f in NonDominatedSorting().do(np.asarray(F, float))]


def first_front(F: np.ndarray) -> np.ndarray:
    """The non-dominated rows, in index order (equal rows all belong to it)."""
    found = fronts(F)
    return found[0] if found else np.zeros(0, dtype=int)


def rank(F: np.ndarray) -> np.ndarray:
    """Row indices, best first: by non-dominated front, then by crowding distance (most isolated
    first) within a front; equal crowding keeps index order. (Identical rows share a front, and
    pymoo's crowding treats them as neighbours.)"""
    from pymoo.operators.survival.rank_and_crowding.metrics import calc_crowding_distance  # scipy

    order: list[int] = []
    for front in fronts(F):
        if len(front) > 2:
            crowding = calc_crowding_distance(np.asarray(F, float)[front])
            front = front[np.argsort(-crowding, kind="stable")]
        order.extend(int(i) for i in front)
    return np.array(order, dtype=int)


def normalise(F: np.ndarray) -> np.ndarray:
    """Each column to [0, 1] (constant columns to 0): dominance is unchanged, and distances,
    crowding and hypervolume no longer depend on the objectives' units (errors vs parameters)."""
    F = np.asarray(F, dtype=float)
    if len(F) == 0:
        return F
    low, span = F.min(0), np.ptp(F, axis=0)
    return (F - low) / np.where(span > 0, span, 1.0)
