"""``random``: a fresh genome drawn from the space, with fresh weights (random search's
operator, and a source of diversity beside the morphisms)."""

from __future__ import annotations

from .base import Operator

__all__ = ["RandomSample"]


class RandomSample(Operator):
    """A new sample of the search space; it has no parents and inherits nothing."""

    name, exact, arity = "random", False, 0
    needs_weights = False

    def _fresh(self, space, rng, weights):
        """No weights: a fresh child is initialised where it trains, from its own seed."""
        return space.sample(rng), None, "fresh sample"
