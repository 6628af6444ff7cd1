"""The search-space interface: sample, contains, initial population, bounds, encodings."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from ..checks import input_shape_problem
from ..genome import Genome
from ..ops import OPS
from ..registry import MAX_ITEMS, option_names, shown
from .encoding import describe, description_names

__all__ = ["MAX_DEPTH", "MAX_KERNEL", "MAX_NODES", "MAX_PARAMS", "MAX_WIDTH", "Bounds", "SearchSpace",
           "check_rng", "choices", "count_range", "flag", "odd_kernels", "probability", "require",
           "spatial_fit"]

SAMPLE_TRIES = 200
# Upper bounds on size options: generous, but finite, so a typo cannot ask for a network that
# takes hours to draw or terabytes to build.
MAX_WIDTH = 4096  # channels, hidden units
MAX_DEPTH = 100  # layers of a chain, blocks of a multibranch stage
MAX_NODES = 100_000  # the max_nodes option
MAX_PARAMS = 10**10  # the max_params option
MAX_KERNEL = 63  # kernel choices


@dataclass(frozen=True)
class Bounds:
    """Hard limits every genome of a space respects."""

    max_nodes: int
    max_params: int


def check_rng(rng: Any) -> np.random.Generator:
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy.random.Generator (numpy.random.default_rng(seed)), "
                        f"got {type(rng).__name__}")
    return rng


def spatial_fit(values: Iterable[int], size: int) -> list[int]:
    """The kernel sizes among ``values`` that fit a spatial size."""
    return [v for v in values if v <= size]


class SearchSpace(ABC):
    """Which genomes are legal, and how to draw them.

    Subclasses implement ``_sample`` (draw one genome; it may exceed the bounds, ``sample``
    rejects those), ``_structure_problems`` (why a valid genome has the wrong shape of graph
    for this space) and ``_default_bounds``. Constructors take keyword options only and check
    them, naming the option in the error.

    ``encode`` turns a genome into a vector of ``encoding_size`` floats for predictors; by
    default the graph description of ``genomes.spaces.encoding.describe`` over the space's
    ``vocabulary``.
    """

    name: ClassVar[str]
    branching: ClassVar[bool] = True  # False: members are paths (no node has two inputs)
    editable: ClassVar[bool] = True  # False: a fixed benchmark space that operators cannot edit
    edge_mutation: ClassVar[bool] = False  # True: ``mutate_edge`` changes one edge op (REA)
    vocabulary: ClassVar[frozenset[str]] = frozenset(OPS)  # the ops its members may use

    def __init__(self, *, input_shape: Sequence[int], num_outputs: int,
                 max_nodes: int | None = None, max_params: int | None = None):
        self.input_shape = tuple(input_shape)
        self.num_outputs = num_outputs
        self.max_nodes = max_nodes
        self.max_params = max_params
        if (msg := input_shape_problem(self.input_shape)) is not None:
            raise ValueError(f"option 'input_shape' {msg}")
        require(type(num_outputs) is int and num_outputs >= 1, "num_outputs",
                "must be a positive int", num_outputs)
        for key, most in (("max_nodes", MAX_NODES), ("max_params", MAX_PARAMS)):
            value = getattr(self, key)
            require(value is None or (type(value) is int and 1 <= value <= most), key,
                    f"must be an int in [1, {most:,}] (or null for the space's default)", value)

    # ---------------------------------------------------------------- interface
    @property
    def bounds(self) -> Bounds:
        default = self._default_bounds()
        return Bounds(self.max_nodes or default.max_nodes, self.max_params or default.max_params)

    def sample(self, rng: np.random.Generator) -> Genome:
        """One legal genome of this space, drawn with ``rng``."""
        check_rng(rng)
        for _ in range(SAMPLE_TRIES):
            genome = self._sample(rng)
            if not (reasons := self.why_not(genome)):
                return genome
        raise ValueError(f"space {self.name!r} drew no legal genome in {SAMPLE_TRIES} tries (bounds "
                         f"{self.bounds}); the last draw {reasons[0]}")

    def initial(self, rng: np.random.Generator, n: int) -> list[Genome]:
        """``n`` distinct genomes for a first population (distinct up to node ids)."""
        check_rng(rng)
        require(type(n) is int and n >= 0, "n", "must be an int >= 0", n)
        out: list[Genome] = []
        seen: set[str] = set()
        tries = 20 * n + 100
        for _ in range(tries):
            if len(out) == n:
                break
            genome = self.sample(rng)
            key = genome.canonical_hash()
            if key not in seen:
                seen.add(key)
                out.append(genome)
        if len(out) < n:
            raise ValueError(f"space {self.name!r} gave only {len(out)} distinct genomes in "
                             f"{tries} draws; ask for fewer or widen the space")
        return out

    def contains(self, genome: Genome) -> bool:
        """Whether ``genome`` is a legal member of this space."""
        return not self.why_not(genome)

    def why_not(self, genome: Genome) -> list[str]:
        """Reasons ``genome`` is not in this space; empty if it is."""
        if genome.input_shape != self.input_shape or genome.num_outputs != self.num_outputs:
            return [(f"genome is for input {genome.input_shape} and {genome.num_outputs} outputs, "
                     f"the space for {self.input_shape} and {self.num_outputs}")]
        if problems := genome.problems():
            return [str(p) for p in problems]
        reasons = self._structure_problems(genome)
        bounds = self.bounds
        if len(genome) > bounds.max_nodes:
            reasons.append(f"has {len(genome)} nodes, more than max_nodes={bounds.max_nodes}")
        if not reasons and (params := genome.num_params()) > bounds.max_params:
            reasons.append(f"has {params} parameters, more than max_params={bounds.max_params}")
        return reasons

    # ---------------------------------------------------------------- encodings
    def encoding_names(self) -> list[str]:
        """The name of each entry of ``encode``'s vector, in order."""
        return description_names(self.vocabulary)

    @property
    def encoding_size(self) -> int:
        """The length of every vector ``encode`` returns for this space."""
        return len(self.encoding_names())

    def encode(self, genome: Genome) -> np.ndarray:
        """A 1-D float vector of ``encoding_size`` finite entries describing ``genome``, equal for
        isomorphic genomes (it ignores node ids). ``GenomeError`` for an illegal genome,
        ``ValueError`` for one that uses ops outside ``vocabulary``."""
        return describe(genome, self.vocabulary)

    def mutate_edge(self, genome: Genome, rng: np.random.Generator) -> tuple[tuple[str, ...], str]:
        """Give one edge of ``genome`` another op, in place, drawn with ``rng``; return (the
        genome's node ids at the site, a description). Only spaces with ``edge_mutation``
        (the cell spaces) implement it: regularised evolution's mutation on fixed spaces."""
        raise NotImplementedError(f"the {self.name} space has no edge ops to mutate")

    def options(self) -> dict[str, Any]:
        """The constructor options, as given (scikit-learn's ``get_params``)."""
        return {k: getattr(self, k) for k in option_names(type(self))}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.options().items())
        return f"{type(self).__name__}({args})"

    # ---------------------------------------------------------------- hooks
    @abstractmethod
    def _sample(self, rng: np.random.Generator) -> Genome: ...

    @abstractmethod
    def _structure_problems(self, genome: Genome) -> list[str]: ...

    @abstractmethod
    def _default_bounds(self) -> Bounds: ...


def require(ok: bool, key: str, what: str, value: Any) -> None:
    if not ok:
        raise ValueError(f"option {key!r} {what}, got {shown(value)}")


def choices(key: str, values: Any, allowed: Iterable[Any] | None = None, *,
            most: int = MAX_WIDTH) -> tuple:
    """Check a non-empty list option (ints in [1, ``most``], or members of ``allowed``);
    return a tuple."""
    allowed = None if allowed is None else list(allowed)
    ok = isinstance(values, (list, tuple)) and 0 < len(values) <= MAX_ITEMS
    if ok and allowed is None:
        ok = all(type(v) is int and 1 <= v <= most for v in values)
    elif ok:
        ok = all(isinstance(v, str) and v in allowed for v in values)
    what = f"must be a non-empty list of ints in [1, {most:,}]" if allowed is None else \
        f"must be a non-empty list drawn from {allowed}"
    require(ok, key, what, values)
    return tuple(values)


def count_range(low_key: str, low: Any, high_key: str, high: Any, *,
                most: int = MAX_DEPTH) -> tuple[int, int]:
    """Check a pair of options ``1 <= low <= high <= most`` (e.g. min_layers, max_layers)."""
    require(type(low) is int and 1 <= low <= most, low_key, f"must be an int in [1, {most}]", low)
    require(type(high) is int and low <= high <= most, high_key,
            f"must be an int in [{low_key}, {most}]", high)
    return low, high


def flag(key: str, value: Any) -> bool:
    require(isinstance(value, bool), key, "must be true or false", value)
    return value


def probability(key: str, value: Any) -> float:
    ok = type(value) in (int, float) and 0 <= value <= 1
    require(ok, key, "must be a probability in [0, 1]", value)
    return value


def odd_kernels(key: str, values: Any) -> tuple:
    """Kernel choices: positive odd ints, so that 'same' padding keeps the size."""
    kernels = choices(key, values, most=MAX_KERNEL)
    require(all(k % 2 for k in kernels), key, "must be odd (so 'same' padding keeps the size)",
            values)
    return kernels
