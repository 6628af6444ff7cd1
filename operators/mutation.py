"""Plain mutation: random changes that do not keep the parent's function. The child inherits
what still fits (``inherit_partial``) and trains the rest from scratch."""

from __future__ import annotations

from genomes import ACTIVATIONS

from .base import Operator, Skip
from .inheritance import inherit_partial

__all__ = ["Mutate"]

KERNELS = (1, 3, 5)


class Mutate(Operator):
    """Change one parameter of one layer: a kernel size, a width (x0.5 to x2), an activation,
    or max pooling for average pooling and back."""

    name, exact = "mutate", False

    def _sites(self, parents):
        g = parents[0][0]
        sites = []
        for n in g.topological_order():
            op = g.op(n)
            if op in ("conv", "sepconv"):
                sites += [(n, "kernel"), (n, "channels")]
            elif op == "dense" and g.successors(n) != [g.output_node]:
                sites.append((n, "units"))
            elif op == "act":
                sites.append((n, "fn"))
            elif op in ("maxpool", "avgpool"):
                sites.append((n, "op"))
        return sites

    def _make(self, genome, state, site, parents, rng, space):
        node, what = site
        params = genome.params(node)
        if what == "op":
            other = "avgpool" if genome.op(node) == "maxpool" else "maxpool"
            genome.set_op(node, other, **params)
            new = other
        else:
            old = params[what]
            if what == "kernel":
                choices = [k for k in KERNELS if k != old]
            elif what == "fn":
                choices = [f for f in ACTIVATIONS if f != old]
            else:
                choices = sorted({max(1, int(round(old * f))) for f in (0.5, 0.75, 1.5, 2.0)} - {old})
            if not choices:
                raise Skip("nothing to change")
            new = choices[int(rng.integers(len(choices)))]
            genome.set_params(node, **{what: new})
        if genome.problems():
            raise Skip("the mutated genome is not legal")
        state.clear()
        state.update(inherit_partial(genome, [parents[0][1]], rng))
        return f"{node} {what} -> {new}"
