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
    or max pooling for average pooling and back.

    In a fixed space that offers edge mutation (``nb201``, a strict ``cell``), where layer edits
    never land on a member, it changes one edge op instead, as regularised evolution does (Real
    et al., "Regularized Evolution for Image Classifier Architecture Search", AAAI 2019): the
    space's ``mutate_edge`` gives one cell edge another op, all neighbours alike likely.

    Parents may come without weights (``None``, as in a table-lookup run that trains nothing);
    then the child gets none either (``state`` is None) and nothing is built.
    """

    name, exact = "mutate", False
    needs_weights = False  # a parent without weights gives a child without weights

    def applies(self, space) -> bool:
        return _edge_mode(space) or super().applies(space)

    def _check_room(self, genome, space):
        if _edge_mode(space):
            return  # every member has neighbours one edge op away
        super()._check_room(genome, space)

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
        # ``_sites`` does not see the space; in edge mode a site only stands for one try and
        # ``_make`` draws the edge, so keep at least one.
        return sites or [None]

    def _make(self, genome, state, site, parents, rng, space):
        if _edge_mode(space):
            nodes, where = space.mutate_edge(genome, rng)
            self._inherit(genome, state, parents, rng)
            return nodes, where
        if site is None:
            raise Skip("no layer to change")
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
                choices = sorted({max(1, round(old * f)) for f in (0.5, 0.75, 1.5, 2.0)} - {old})
            if not choices:
                raise Skip("nothing to change")
            new = choices[int(rng.integers(len(choices)))]
            genome.set_params(node, **{what: new})
        if genome.problems():
            raise Skip("the mutated genome is not legal")
        self._inherit(genome, state, parents, rng)
        return f"{node} {what} -> {new}"

    @staticmethod
    def _inherit(genome, state, parents, rng) -> None:
        """Fill ``state`` with what fits of the parent's weights; nothing when there are none."""
        if state is not None:
            state.clear()
            state.update(inherit_partial(genome, [parents[0][1]], rng))


def _edge_mode(space) -> bool:
    """Whether to mutate edge ops: a fixed space that offers it."""
    return space is not None and not space.editable and space.edge_mutation
