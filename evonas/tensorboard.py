"""TensorBoard scalars of a run, one point per generation (``logging: {tensorboard: true}``):
the front's hypervolume, the best value of each objective, and the run's seconds so far, in
``<run>/tensorboard/``; ``tensorboard --logdir <run>/tensorboard`` shows them.

The engine calls ``Scalars.generation`` at each generation's end, with the hypervolume of the
front (``evonas.runview.hypervolume``) on a scale fixed by generation 0's individuals, so the
curve only rises as the front improves (``evonas front --plot`` and the report rescale over the
whole run, so their values differ).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

__all__ = ["FOLDER", "Scalars"]

FOLDER = "tensorboard"  # inside the run directory


class Scalars:
    """Writes the per-generation scalars of the run in ``run_dir`` (a ``SummaryWriter`` of
    ``torch.utils.tensorboard``, opened on the first generation). Tags: ``hypervolume``,
    ``best/<objective>``, ``elapsed_s``; the step is the generation."""

    def __init__(self, run_dir: str | Path):
        self.path = Path(run_dir) / FOLDER
        self._writer = None

    def generation(self, generation: int, *, hypervolume: float, best: Mapping[str, float],
                   elapsed: float | None = None) -> None:
        """One generation's points, flushed at once (a killed run keeps them)."""
        writer = self._open()
        writer.add_scalar("hypervolume", float(hypervolume), generation)
        for key, value in best.items():
            writer.add_scalar(f"best/{key}", float(value), generation)
        if elapsed is not None:
            writer.add_scalar("elapsed_s", float(elapsed), generation)
        writer.flush()

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def __enter__(self) -> Scalars:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _open(self):
        if self._writer is None:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:
                raise ImportError("logging.tensorboard needs the tensorboard package: "
                                  "pip install tensorboard") from None
            self._writer = SummaryWriter(log_dir=str(self.path))
        return self._writer
