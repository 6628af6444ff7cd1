"""``tabular``: objective values looked up in a published benchmark table instead of measured.

The key comes from the genome: ``lookup: nb201`` gives the NAS-Bench-201 arch string,
``lookup: hash`` its canonical hash. With a CSV of NB201 results, strategies compare in seconds.
``source`` is free text saying where the table comes from; a missing file's message shows it.
"""

from __future__ import annotations

import csv
import functools
from pathlib import Path

from genomes import spaces
from genomes.registry import shown

from .base import Context, Objective, ObjectiveError
from .tasks.npz import how_to_get

__all__ = ["Tabular"]

LOOKUPS = ("nb201", "hash")


class Tabular(Objective):
    """The value in ``value_column`` of the row whose ``key_column`` equals the genome's key."""

    # Cheap to read, but it stands in for training: a proposer must not preview it (a learning
    # proposer that read the table ahead would be reading the benchmark's answers).
    name, cost, preview = "tabular", "cheap", False

    def __init__(self, *, path: str, value_column: str, key_column: str = "arch",
                 direction: str = "max", lookup: str = "nb201", source: str | None = None):
        if direction not in ("min", "max"):
            raise ValueError(f"option 'direction' must be 'min' or 'max', got {shown(direction)}")
        if lookup not in LOOKUPS:
            raise ValueError(f"option 'lookup' must be one of {list(LOOKUPS)}, got {shown(lookup)}")
        self.path, self.value_column, self.key_column = path, value_column, key_column
        self.direction, self.lookup, self.source = direction, lookup, source
        self._table: dict[str, float] | None = None

    @property
    def key(self) -> str:
        """Recorded under the value column's name, so two tables can serve two objectives."""
        return self.value_column

    def check(self) -> None:
        self.table()

    def table(self) -> dict[str, float]:
        """The key -> value table, read once; ``ValueError`` names a missing file or column."""
        if self._table is None:
            self._table = _read(Path(self.path).expanduser(), self.key_column, self.value_column,
                                self.source)
        return self._table

    def genome_key(self, ctx: Context) -> str:
        if self.lookup == "hash":
            return ctx.genome.canonical_hash()
        space = _nb201(tuple(ctx.genome.input_shape), ctx.genome.num_outputs)
        try:
            return space.to_arch_string(ctx.genome)
        except ValueError as exc:
            raise ObjectiveError(f"no NB201 arch string for this genome: {exc}") from None

    def measure(self, ctx: Context) -> float:
        key = self.genome_key(ctx)
        table = self.table()
        if key not in table:
            raise ObjectiveError(f"key {key!r} is not in {self.path!r} (column {self.key_column!r})")
        return table[key]


@functools.lru_cache(maxsize=8)
def _nb201(input_shape: tuple[int, ...], num_outputs: int):
    """One NB201 space per shape (it keeps what it decoded)."""
    return spaces.get("nb201", input_shape=input_shape, num_outputs=num_outputs)


def _read(path: Path, key_column: str, value_column: str,
          source: str | None = None) -> dict[str, float]:
    if not path.is_file():
        raise ValueError(f"tabular file {str(path)!r} does not exist{how_to_get(source)}")
    with path.open(newline="") as f:
        reader = csv.DictReader(f)
        columns = reader.fieldnames or []
        for column in (key_column, value_column):
            if column not in columns:
                raise ValueError(f"{str(path)!r} has no column {column!r}; columns: {columns}")
        table, lines = {}, {}
        for line, row in enumerate(reader, start=2):
            key = row[key_column]
            if key in lines:
                raise ValueError(f"{str(path)!r}: key {key!r} appears on lines {lines[key]} and {line}")
            try:
                value = float(row[value_column])
            except (TypeError, ValueError):
                raise ValueError(f"{str(path)!r} line {line}: {value_column} is not a number: "
                                 f"{row[value_column]!r}") from None
            table[key], lines[key] = value, line
    return table
