"""A job function whose module takes ``EVONAS_TEST_IMPORT_S`` seconds to import where that is set
(a dask worker started with it, say), as a worker importing torch does under load."""

from __future__ import annotations

import os
import time

from tests.evonas import faults

__all__ = ["sleepy"]

time.sleep(float(os.environ.get("EVONAS_TEST_IMPORT_S", "0")))


def sleepy(job: dict, device: str) -> dict:
    """``faults.sleepy``, pickled by reference to this module."""
    return faults.sleepy(job, device)
