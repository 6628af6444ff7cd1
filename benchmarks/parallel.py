"""One generation of evaluations through the local dispatcher: 1 worker vs 2 workers (each
single-threaded), and 1 worker with 2 threads, measured side by side in one run.

    python benchmarks/parallel.py [--evaluations 8] [--epochs 8] [--repeats 3] [--seed 0]

Workers are started and warmed up (torch imported, data loaded) before the clock starts, as they
are after a run's first generation. The three set-ups take turns, ``repeats`` times; medians are
reported. Prints one JSON object on its last line.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from evonas.evaluation.dispatch import LocalPool, Slot
from evonas.evaluation.jobs import evaluate_job, make_job
from genomes import spaces
from objectives import TrainConfig, tasks


def generation(n: int, epochs: int, seed: int, threads: int) -> list[dict]:
    task = tasks.get("digits", seed=seed)
    space = spaces.get("multibranch", input_shape=task.input_shape, num_outputs=task.num_classes,
                       channels=[16, 32], max_blocks=3)
    genomes = space.initial(np.random.default_rng(seed), n)
    training = TrainConfig(epochs=epochs, batch_size=64, threads=threads)
    return [make_job(ident=i, genome=g, objectives=[("val_error", {})], report=[],
                     task={"dataset": "digits", "seed": seed, "options": {}}, training=training,
                     epochs=epochs, seed=seed + i) for i, g in enumerate(genomes)]


def timed(pools: dict[str, LocalPool], name: str, jobs: list[dict]) -> tuple[float, list[float]]:
    start = time.perf_counter()
    results = dict(pools[name].run(evaluate_job, jobs))
    seconds = time.perf_counter() - start
    return seconds, [results[i]["record"]["objectives"]["val_error"] for i in range(len(jobs))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--evaluations", type=int, default=8)
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    single = generation(args.evaluations, args.epochs, args.seed, threads=1)
    double = generation(args.evaluations, args.epochs, args.seed, threads=2)
    setups = {"1_worker_1_thread": (1, single), "2_workers_1_thread": (2, single),
              "1_worker_2_threads": (1, double)}
    pools = {name: LocalPool([Slot("cpu", "cpu")] * workers) for name, (workers, _) in setups.items()}
    seconds: dict[str, list[float]] = {name: [] for name in setups}
    values: dict[str, list[float]] = {}
    try:
        for name, (workers, jobs) in setups.items():  # warm: torch imported, digits loaded
            warm = {**jobs[0], "epochs": 1, "training": {**jobs[0]["training"], "epochs": 1}}
            list(pools[name].run(evaluate_job, [warm] * workers))
        for _ in range(args.repeats):
            for name, (_, jobs) in setups.items():
                took, values[name] = timed(pools, name, jobs)
                seconds[name].append(took)
    finally:
        for pool in pools.values():
            pool.close()
    same = values["1_worker_1_thread"] == values["2_workers_1_thread"]
    assert same, "the same evaluations must give the same values on 1 or 2 workers"
    median = {name: float(np.median(s)) for name, s in seconds.items()}
    base = median["1_worker_1_thread"]
    figures = {
        "evaluations": args.evaluations, "epochs": args.epochs, "repeats": args.repeats,
        "seed": args.seed, **{f"seconds_{k}": round(v, 2) for k, v in median.items()},
        "speedup_2_workers": round(base / median["2_workers_1_thread"], 2),
        "speedup_1_worker_2_threads": round(base / median["1_worker_2_threads"], 2),
        "speedups_2_workers_each_repeat": [round(a / b, 2) for a, b in
                                           zip(seconds["1_worker_1_thread"], seconds["2_workers_1_thread"])],
        "same_values": same,
    }
    print(f"{args.evaluations} evaluations of {args.epochs} epochs (median of {args.repeats}): "
          f"1 worker {base:.1f} s, 2 workers {median['2_workers_1_thread']:.1f} s "
          f"({figures['speedup_2_workers']}x), 1 worker x 2 threads "
          f"{median['1_worker_2_threads']:.1f} s ({figures['speedup_1_worker_2_threads']}x)")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
