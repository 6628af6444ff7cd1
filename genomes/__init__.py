"""Search-space pillar: graph genomes, their validation, JSON form, hashes, compilation to
PyTorch, and the search spaces that say which genomes are legal."""

from .checks import FORMAT
from .errors import GenomeError, Problem
from .genome import Genome, Node
from .ops import ACTIVATIONS, MERGES, OPS
from . import hashing


def __getattr__(name: str):
    if name == "HASH_SCHEME":  # names the igraph version: imports igraph, so only when asked
        return hashing.HASH_SCHEME
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "ACTIVATIONS", "FORMAT", "HASH_SCHEME", "MERGES", "OPS", "Genome", "GenomeError", "Node",
    "Problem",
]
