"""How much early ranking saves on digits, and how far a 1-epoch ranking can be trusted.

Trains N random chain/multibranch genomes (half each) straight to the last rung, then runs the
successive-halving schedule (rungs [1, 3, 10], keep 1/3) on the same genomes, in one process.
Reports the Kendall tau between the 1-epoch and 10-epoch rankings (validation accuracy, all N
genomes), the compute the schedule saves (epochs and seconds), and the best final validation
accuracy of both. Last line: one JSON object with the figures.

    python benchmarks/early_ranking.py [--genomes 30] [--rungs 1,3,10] [--keep 0.3333] [--seed 0]
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch
from scipy.stats import kendalltau

import objectives as O
from evonas.evaluation.halving import SuccessiveHalving
from genomes import spaces


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--genomes", type=int, default=30)
    ap.add_argument("--rungs", default="1,3,10")
    ap.add_argument("--keep", type=float, default=1 / 3)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    rungs = [int(r) for r in args.rungs.split(",")]
    torch.set_num_threads(1)

    task = O.tasks.get("digits", seed=args.seed)
    rng = np.random.default_rng(args.seed)
    genomes = []
    for k in range(args.genomes):
        space = spaces.get("chain" if k % 2 == 0 else "multibranch", input_shape=task.input_shape,
                           num_outputs=task.num_classes)
        genomes.append(space.sample(rng))
    config = O.TrainConfig(epochs=rungs[-1], batch_size=64, lr=0.05)
    objective = [O.get("val_error")]

    # All genomes straight to the last rung: the reference ranking and cost.
    start = time.perf_counter()
    full = [O.evaluate(g, objective, task=task, training=config, seed=i).record
            for i, g in enumerate(genomes)]
    full_seconds = time.perf_counter() - start
    ok = [r for r in full if r.ok]
    first = [r.curve[0].val_accuracy for r in ok]
    last = [r.curve[-1].val_accuracy for r in ok]
    tau = float(kendalltau(first, last).statistic)

    # The same genomes under successive halving, for real.
    states: dict[int, O.TrainState | None] = {}

    def advance(i: int, epochs: int) -> O.EvaluationRecord:
        result = O.evaluate(genomes[i], objective, task=task, training=config, epochs=epochs,
                            seed=i, state=states.get(i))
        states[i] = result.state
        return result.record

    start = time.perf_counter()
    report = SuccessiveHalving(rungs=rungs, keep=args.keep).run(len(genomes), advance,
                                                                 {"val_error": "min"})
    halving_seconds = time.perf_counter() - start
    best_full = max(last)
    best_halving = max(1 - report.records[i].objectives["val_error"] for i in report.survivors)
    figures = {
        "genomes": len(genomes), "failed": len(full) - len(ok), "seed": args.seed, "task": "digits",
        "kendall_tau_epoch1_vs_last": round(tau, 3),
        "rungs": rungs, "keep": round(args.keep, 4),
        "epochs_full": report.epochs_full, "epochs_halving": report.epochs_trained,
        "compute_saved_epochs": round(report.saved, 3),
        "seconds_full": round(full_seconds, 1), "seconds_halving": round(halving_seconds, 1),
        "compute_saved_seconds": round(1 - halving_seconds / full_seconds, 3),
        "best_val_accuracy_full": round(best_full, 4),
        "best_val_accuracy_halving": round(best_halving, 4),
        "best_accuracy_ratio_halving_over_full": round(best_halving / best_full, 4),
        "rung_kendall_tau_vs_last": [r.kendall_tau for r in report.rungs[:-1]],
    }
    print(f"Kendall tau, epoch-1 vs epoch-{rungs[-1]} ranking over {len(ok)} genomes: {tau:.3f}")
    print(f"schedule {rungs} keep {args.keep:.3f}: {report.epochs_trained} of {report.epochs_full} "
          f"epochs ({report.saved:.0%} saved), {halving_seconds:.1f} s vs {full_seconds:.1f} s")
    print(f"best validation accuracy: schedule {best_halving:.4f}, all trained {best_full:.4f}")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
