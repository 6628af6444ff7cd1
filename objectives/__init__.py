"""Performance-estimation pillar: training, accuracy, cost objectives (built in a later issue)."""

__all__: list[str] = []
