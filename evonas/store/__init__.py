"""What a run keeps on disk: the journal, checkpoints, training states, the run directory and
its lock."""
