"""Search-space pillar: graph genomes, their validation, JSON form, hashes, compilation to
PyTorch, and the search spaces that say which genomes are legal."""

from .checks import FORMAT
from .errors import GenomeError, Problem
from .genome import Genome, Node
from .hashing import HASH_SCHEME
from .ops import ACTIVATIONS, MERGES, OPS

__all__ = [
    "ACTIVATIONS", "FORMAT", "HASH_SCHEME", "MERGES", "OPS", "Genome", "GenomeError", "Node",
    "Problem",
]
