"""The search strategy: parents, the operator mix, LEMONADE's candidates, survival, and the one
ranking (fronts, crowding, scaling) everything else uses."""
