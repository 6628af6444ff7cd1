"""How promptly the dispatchers react (the timings ``tests/evonas/test_dispatch.py`` used to
assert; the tests now check behaviour only).

    python benchmarks/dispatch_latency.py [--repeats 3] [--timeout 2] [--no-dask]
    python benchmarks/load.py -- python benchmarks/dispatch_latency.py     # on a busy machine

Per repeat, on fresh pools of two workers:

- ``close_after_stop_s``: a caller stops early (Ctrl-C) while a worker holds a 600 s job: seconds
  from closing the generator to ``close()`` returning (busy workers are killed, not waited for);
- ``local_timeout_late_s``: a 600 s job with ``timeout_s``: seconds past the limit until it fails;
- ``local_start_lag_s``: from handing a fresh worker its job to the job running (torch import);
- ``dask_start_lag_s``: from submission to the job running on a fresh dask worker, which the
  scheduler already calls "processing" (why time-outs must count from the worker's start);
- ``dask_timeout_late_s``: as ``local_timeout_late_s``, on dask.

Medians are reported. Last line: one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from contextlib import closing
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the job functions live in tests/
# Nothing heavy is imported at the top: dask's worker processes re-import this file, and a worker
# that found torch already imported would hide the start lag this measures.


def local(timeout: float) -> dict[str, float]:
    from evonas.evaluation.dispatch import LocalPool, Slot
    from tests.evonas import faults

    out = {}
    pool = LocalPool([Slot("cpu", "cpu")] * 2)
    sent = time.time()
    with closing(pool.run(faults.sleepy, [{"id": 0, "genome_hash": "a", "hold": 0.1},
                                          {"id": 1, "genome_hash": "b", "hold": 600}])) as results:
        _, first = next(results)
        out["local_start_lag_s"] = first["started"] - sent
        start = time.monotonic()
    pool.close()
    out["close_after_stop_s"] = time.monotonic() - start
    with LocalPool([Slot("cpu", "cpu")] * 2, timeout_s=timeout) as pool:
        list(pool.run(faults.sleepy, [{"id": -1, "genome_hash": "w", "hold": 0}] * 2))  # warm
        start = time.monotonic()
        list(pool.run(faults.sleepy, [{"id": 2, "genome_hash": "c", "hold": 600}]))
        out["local_timeout_late_s"] = time.monotonic() - start - timeout
    return out


def dask(timeout: float) -> dict[str, float]:
    import dask as dask_
    import distributed

    from evonas.evaluation.dispatch import DaskPool
    from tests.evonas import faults

    out = {}
    with dask_.config.set({"distributed.scheduler.worker-saturation": 1.0}), \
            distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                     host="127.0.0.1", dashboard_address=None) as cluster:
        with DaskPool(cluster.scheduler_address, timeout_s=timeout) as pool:
            submitted = time.time()
            results = dict(pool.run(faults.sleepy, [{"id": 0, "genome_hash": "a", "hold": 0.1}]))
            out["dask_start_lag_s"] = results[0]["started"] - submitted
            warm = [{"id": -1, "genome_hash": "w", "hold": 1.0}] * 2  # one on each worker
            list(pool.run(faults.sleepy, warm))
            start = time.monotonic()
            list(pool.run(faults.sleepy, [{"id": 1, "genome_hash": "b", "hold": 600}]))
            out["dask_timeout_late_s"] = time.monotonic() - start - timeout
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--timeout", type=float, default=2.0)
    parser.add_argument("--no-dask", action="store_true")
    args = parser.parse_args()
    rows = []
    for r in range(args.repeats):
        row = local(args.timeout)
        if not args.no_dask:
            row.update(dask(args.timeout))
        rows.append(row)
        print(f"repeat {r}: " + ", ".join(f"{k} {v:.2f}" for k, v in row.items()), flush=True)
    figures = {k: round(statistics.median(row[k] for row in rows), 3) for k in rows[0]}
    print(json.dumps({"repeats": args.repeats, "timeout_s": args.timeout, "cpus": os.cpu_count(),
                      "loadavg": os.getloadavg(), **figures}))


if __name__ == "__main__":
    main()
