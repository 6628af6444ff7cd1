"""Crossover of two parents that share node ids (relatives from one lineage): the child has the
first parent's graph, and each layer both parents have with the same op takes its parameters
(and, where shapes allow, its weights) from either parent at random."""

from __future__ import annotations

from .base import NotApplicable, Operator, Skip
from .inheritance import inherit_partial

__all__ = ["Crossover"]

ATTEMPTS = 8


class Crossover(Operator):
    """Uniform crossover over the layers two parents share (same node id and op)."""

    name, exact, arity = "crossover", False, 2
    needs_weights = False

    def _sites(self, parents):
        (a, _), (b, _) = parents
        shared = [n for n in a.topological_order()
                  if n in b and a.op(n) == b.op(n) and a.params(n) != b.params(n)]
        if not shared:
            raise NotApplicable("crossover: the parents share no layer with different parameters")
        return [(attempt,) for attempt in range(ATTEMPTS)]

    def _make(self, genome, state, site, parents, rng, space):
        (a, a_state), (b, b_state) = parents
        taken = []
        for n in a.topological_order():
            if n in b and a.op(n) == b.op(n) and a.params(n) != b.params(n) and rng.random() < 0.5:
                genome.set_params(n, **b.params(n))
                taken.append(n)
        if not taken or genome.problems():
            raise Skip("no legal mix at this attempt")
        if state is not None:
            state.clear()
            donors = [a_state] + ([b_state] if b_state is not None else [])
            state.update(inherit_partial(genome, donors, rng, prefer={n: 1 for n in taken}
                                         if b_state is not None else None))
        return tuple(taken), f"{len(taken)} layer(s) from the second parent: {', '.join(taken)}"
