"""Evaluation: screening on cheap objectives, successive halving over dispatched batches, the
jobs workers run, and the devices they run on."""
