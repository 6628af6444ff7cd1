"""Search-strategy pillar: morphisms, mutation, crossover, proposers (built in a later issue)."""

__all__: list[str] = []
