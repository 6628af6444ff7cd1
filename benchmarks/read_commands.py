"""How long the read-only commands take to answer (``evonas front``, ``show``, ``runs``), each a
fresh process as a user types it, beside the interpreter's own start and a bare ``import torch``
(what every one of them paid before reading a run stopped importing torch, igraph and
matplotlib).

Without ``--run`` it first writes a small run (the quick start cut to 2 generations of 4, 2
epochs; a few seconds) in a temporary folder. Each command runs ``--repeats`` times, alternated;
medians are reported, with the ratio of each command to ``python -c "import torch"``. Last line:
one JSON object.

    python benchmarks/read_commands.py [--run DIR] [--repeats 5]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SMALL = ["--set", "search.population=4", "--set", "search.offspring=4",
         "--set", "search.generations=2", "--set", "training.epochs=2",
         "--set", "training.early_ranking.rungs=[1,2]", "--quiet"]


def evonas(*args: str) -> list[str]:
    return [sys.executable, "-m", "evonas.cli", *args]


def seconds(argv: list[str]) -> float:
    start = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True)
    took = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed ({done.returncode}): {done.stderr[-2000:]}")
    return took


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--run", type=Path, default=None, help="an existing run directory")
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        run = args.run
        if run is None:
            run = Path(tmp) / "small"
            seconds(evonas("run", "--run-dir", str(run), *SMALL))
        ident = json.loads(subprocess.run(evonas("front", str(run), "--format", "json"),
                                          capture_output=True, text=True,
                                          check=True).stdout)[0]["id"]
        cases = {
            "python -c pass": [sys.executable, "-c", "pass"],
            "python -c 'import torch'": [sys.executable, "-c", "import torch"],
            "evonas front": evonas("front", str(run)),
            "evonas show": evonas("show", str(run), str(ident)),
            "evonas runs": evonas("runs", str(run.parent)),
        }
        times: dict[str, list[float]] = {k: [] for k in cases}
        for _ in range(args.repeats):
            for name, argv in cases.items():
                times[name].append(seconds(argv))
    median = {k: statistics.median(v) for k, v in times.items()}
    torch_s = median["python -c 'import torch'"]
    for name, s in median.items():
        print(f"{name:<28} {s:6.2f} s   ({s / torch_s:4.2f} x a bare torch import)")
    print(json.dumps({"repeats": args.repeats, "median_seconds": {k: round(v, 3)
                                                                   for k, v in median.items()},
                      "ratio_to_torch_import": {k: round(v / torch_s, 3)
                                                for k, v in median.items()},
                      "load_average": round(os.getloadavg()[0], 2)}))


if __name__ == "__main__":
    main()
