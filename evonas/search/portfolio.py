"""The adaptive operator portfolio: operator weights that follow what pays off during a run.

Each evaluated child earns its operator a credit: its hypervolume improvement over the Pareto
front known before its generation, in the objective space normalised over that front and the
generation's children (``hv_credits``). Pruned and failed children earn 0. The rule is adaptive
pursuit (Thierens, GECCO 2005): an operator's quality is a recency-weighted mean of its credits,
and the selection probabilities move a step ``beta`` towards ``p_max`` for the best operator
and ``p_min`` for every other, so no operator ever falls below ``p_min`` and a change of which
operator pays is followed. The configured weights are the starting probabilities.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

__all__ = ["Portfolio", "hv_credits"]

REFERENCE = 1.1  # the hypervolume's reference point in the normalised space, in every objective


class Portfolio:
    """Adaptive pursuit over named operators.

    ``priors``: name -> configured weight (> 0), the starting point. ``p_min``: the floor every
    operator keeps (``len(priors) * p_min < 1``). ``alpha``: how fast an operator's quality
    follows its credits (its first credits are averaged plainly, so the starting 0 does not
    linger). ``beta``: how fast the probabilities pursue the best operator.
    """

    def __init__(self, priors: Mapping[str, float], *, p_min: float = 0.05, alpha: float = 0.2,
                 beta: float = 0.2):
        if not priors:
            raise ValueError("a portfolio needs at least one operator")
        if any(not (w > 0) for w in priors.values()):
            raise ValueError(f"operator weights must be > 0, got {dict(priors)}")
        k = len(priors)
        if not 0 <= p_min < 1 / k:
            raise ValueError(f"option 'p_min' must be >= 0 and below 1 / {k} operators "
                             f"({1 / k:.4g}), got {p_min}")
        for key, value in (("alpha", alpha), ("beta", beta)):
            if not 0 < value <= 1:
                raise ValueError(f"option {key!r} must be in (0, 1], got {value}")
        self.names = list(priors)
        self.p_min, self.alpha, self.beta = float(p_min), float(alpha), float(beta)
        w = np.array([float(priors[n]) for n in self.names])
        self.p = p_min + (1 - k * p_min) * w / w.sum()
        self.quality = np.zeros(k)
        self.credited = np.zeros(k, dtype=np.int64)  # credits received, per operator

    @property
    def p_max(self) -> float:
        return 1 - (len(self.names) - 1) * self.p_min

    def probabilities(self) -> dict[str, float]:
        return {n: float(v) for n, v in zip(self.names, self.p)}

    def credit(self, credits: Sequence[tuple[str, float]]) -> None:
        """Take ``(operator, credit)`` pairs in order (names outside the portfolio are ignored)."""
        index = {n: i for i, n in enumerate(self.names)}
        for name, value in credits:
            i = index.get(name)
            if i is None:
                continue
            self.credited[i] += 1
            rate = max(1.0 / self.credited[i], self.alpha)
            self.quality[i] += rate * (float(value) - self.quality[i])
            best = np.flatnonzero(self.quality == self.quality.max())
            target = np.full(len(self.names), self.p_min)
            target[best] += (1 - len(self.names) * self.p_min) / len(best)
            self.p += self.beta * (target - self.p)
            self.p /= self.p.sum()  # against rounding drift; the floor holds exactly otherwise

    def state(self) -> dict[str, Any]:
        """JSON: floats as written by ``float.__repr__`` round-trip exactly."""
        return {"names": self.names, "p": self.p.tolist(), "quality": self.quality.tolist(),
                "credited": self.credited.tolist()}

    def load_state(self, data: Mapping[str, Any]) -> None:
        if not data:
            return
        saved = list(data["names"])
        for i, name in enumerate(self.names):  # by name: an operator added on resume starts anew
            if name in saved:
                j = saved.index(name)
                self.p[i], self.quality[i] = data["p"][j], data["quality"][j]
                self.credited[i] = data["credited"][j]
        if saved != self.names:  # the mix changed: keep the floor, sum to 1
            self.p = np.maximum(self.p, self.p_min)
            self.p /= self.p.sum()


def hv_credits(front: np.ndarray, children: Sequence[np.ndarray | None]) -> list[float]:
    """Each child's hypervolume improvement over ``front`` (rows of minimised objective values).

    ``children`` holds a row per child, or None for one that gets 0 (pruned, failed). The space
    is normalised to [0, 1] over the front and the children together, with the reference point
    at ``REFERENCE`` in every objective, so credits compare across runs and generations. Each
    child is measured against the front alone, not against its siblings. An empty front gives
    every child 0: there is nothing to improve on yet.
    """
    from pymoo.indicators.hv import HV

    rows = [c for c in children if c is not None]
    if len(front) == 0 or not rows:
        return [0.0] * len(children)
    front = np.asarray(front, dtype=float)
    pts = np.vstack([front, *rows])
    lo, hi = pts.min(0), pts.max(0)
    span = np.where(hi > lo, hi - lo, 1.0)
    indicator = HV(ref_point=np.full(front.shape[1], REFERENCE))
    base = indicator((front - lo) / span)
    out = []
    for c in children:
        if c is None:
            out.append(0.0)
            continue
        both = np.vstack([front, np.asarray(c, dtype=float)[None, :]])
        out.append(max(0.0, float(indicator((both - lo) / span)) - base))
    return out
