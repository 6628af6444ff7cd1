"""The one error type of the search-space pillar, listing every problem it found."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["GenomeError", "Problem", "ShapeError"]


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a genome; ``node`` is None for genome-wide problems."""

    node: str | None
    message: str

    def __str__(self) -> str:
        return f"node {self.node!r}: {self.message}" if self.node is not None else self.message


class GenomeError(ValueError):
    """A genome is illegal; ``problems`` lists all that was found, each with its node id."""

    def __init__(self, problems: list[Problem] | str, *, node: str | None = None):
        if isinstance(problems, str):
            problems = [Problem(node, problems)]
        self.problems: list[Problem] = list(problems)
        if len(self.problems) == 1:
            text = str(self.problems[0])
        else:
            lines = "\n".join(f"  - {p}" for p in self.problems)
            text = f"{len(self.problems)} problems in genome:\n{lines}"
        super().__init__(text)

    @property
    def nodes(self) -> list[str]:
        """Ids of the nodes named by the problems, in order, without repeats."""
        return list(dict.fromkeys(p.node for p in self.problems if p.node is not None))


class ShapeError(ValueError):
    """Raised by an op's shape rule; the caller attaches the node id."""
