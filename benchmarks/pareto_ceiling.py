"""What the multi-objective hypervolume bar asks of a predictor, on the NAS-Bench-201 table.

``benchmarks/pareto_efficiency.py`` measures the hypervolume ratio of the front a search finds
(``--column`` maximised, ``params`` minimised). ``params`` is exact and free, so the front is
decided inside each parameter level (28 on NB201): the best cell of each level. This script
asks how well a model must rank the cells of a level for a 300-query search to reach a given
ratio, without running a search:

- **noise**: the std of (``--column`` - its test column) over all cells. NB201's val and test
  columns are one training run scored on two halves of the test images, so this is the
  column's own scoring noise; and for each true-front cell, its lead over the runner-up of its
  level and its rank there on the test half;
- **k per level**: the hypervolume ratio (same normalisation and reference as
  ``pareto_efficiency.py``) of the ``k`` best cells of every level by an ordering, for k in
  ``--ks``. Orderings: ``test half`` (a ranking by architecture quality that knows nothing of
  the column's scoring noise), and the ``bayesian`` proposer's own surrogate (default
  features and ensemble) fitted on ``--observations`` cells drawn uniformly, one fit per seed.
  k = 10 spends 254 queries purely on the model's picks, with no exploration cost.

    python benchmarks/pareto_ceiling.py [--table ../shared/data/nb201_12ep_c100_in16.csv]
        [--column cifar100_val] [--observations 300,2000] [--seeds 10] [--ks 1,3,10]

About a minute. Last line: one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from pareto_efficiency import REF, front, table_params  # noqa: E402
from search_efficiency import (DEFAULT_TABLE, INPUT_SHAPE, NUM_CLASSES, read_table,  # noqa: E402
                               table_file)


def surrogate_means(archs: list[str], values: np.ndarray, observations: int,
                    seed: int) -> np.ndarray:
    """The ``bayesian`` surrogate's mean prediction of every cell (larger is better), fitted
    on ``observations`` cells drawn uniformly by ``seed``, as the proposer fits."""
    from genomes import spaces
    from operators.bayesian import Bayesian, _CellCoder, _standardise

    space = spaces.get("nb201", input_shape=INPUT_SHAPE, num_outputs=NUM_CLASSES)
    b = Bayesian()
    coder = _CellCoder(space, b.encoding)
    A = np.array([[space.ops.index(o) for o in space.parse_arch_string(a)] for a in archs])
    rng = np.random.default_rng(seed)
    seen = rng.choice(len(archs), size=observations, replace=False)
    X, C = _standardise(coder.features(A[seen]), coder.features(A))
    model, mu, sd = b._fit(X, -values[seen, None], rng)
    return -(model.predict(C).mean(0)[:, 0] * sd[0] + mu[0])


def main() -> None:
    from pymoo.indicators.hv import HV

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--table", default=DEFAULT_TABLE,
                    help="NB201 CSV (relative paths are taken from the repository root)")
    ap.add_argument("--column", default="cifar100_val", help="the column maximised")
    ap.add_argument("--observations", default="300,2000",
                    help="comma-separated numbers of uniformly drawn cells the surrogate sees")
    ap.add_argument("--seeds", type=int, default=10, help="surrogate fits per number")
    ap.add_argument("--ks", default="1,3,10", help="comma-separated cells taken per level")
    args = ap.parse_args()
    try:
        sizes = [int(x) for x in args.observations.split(",")]
        ks = [int(x) for x in args.ks.split(",")]
    except ValueError:
        ap.error("--observations and --ks take comma-separated integers")
    if args.seeds < 1 or not all(n > 1 for n in sizes) or not all(k > 0 for k in ks):
        ap.error("--seeds, --ks must be positive and --observations above 1")

    import torch
    torch.set_num_threads(2)
    start = time.perf_counter()
    path = table_file(args.table)
    test_column = args.column.replace("_val", "_test")
    table = read_table(path, args.column, test_column)
    archs = sorted(table)
    params = table_params(path, archs)
    par = np.array([params[a] for a in archs], dtype=float)
    val = np.array([table[a][0] for a in archs])
    test = np.array([table[a][1] for a in archs])

    true = front(np.column_stack([par, -val]))
    ideal, nadir = true.min(0), true.max(0)
    scale = np.where(nadir > ideal, nadir - ideal, 1.0)
    hv = HV(ref_point=np.full(2, REF))
    true_hv = float(hv((true - ideal) / scale))
    levels = [np.flatnonzero(par == p) for p in np.unique(par)]

    def ratio(order: np.ndarray, k: int) -> float:
        """HV ratio of the k cells of each level that ``order`` (larger is better) ranks first."""
        pick = np.concatenate([lv[np.argsort(-order[lv], kind="stable")[:k]] for lv in levels])
        pts = np.column_stack([par[pick], -val[pick]])
        return float(hv((front(pts) - ideal) / scale)) / true_hv

    points = []
    for p, v in true:
        lv = np.flatnonzero(par == p)
        best = lv[np.argmax(val[lv])]
        others = np.sort(val[lv])[::-1]
        points.append({"params": int(p), args.column: round(-v, 2),
                       "lead": round(float(others[0] - others[1]), 2) if len(lv) > 1 else None,
                       "test_rank": int((test[lv] > test[best]).sum()) + 1, "level_size": len(lv)})
    noise = float(np.std(val - test))
    print(f"{path.name}: {len(archs)} cells in {len(levels)} parameter levels; true front "
          f"{len(true)} points. std of ({args.column} - {test_column}): {noise:.2f} points")
    print("front cell: lead over its level's runner-up, rank on the test half")
    for q in points:
        print(f"  params {q['params']:>7}: {q[args.column]:6.2f}, lead {q['lead']}, test rank "
              f"{q['test_rank']} of {q['level_size']}")

    tables = {"test half": {str(k): round(ratio(test, k), 4) for k in ks}}
    queries = {str(k): int(sum(min(k, len(lv)) for lv in levels)) for k in ks}
    surrogate = {}
    for n in sizes:
        per_k = {str(k): [] for k in ks}
        for seed in range(args.seeds):
            order = surrogate_means(archs, val, n, seed)
            for k in ks:
                per_k[str(k)].append(ratio(order, k))
        surrogate[str(n)] = {k: {"mean": round(statistics.fmean(r), 4),
                                 "std": round(statistics.pstdev(r), 4)} for k, r in per_k.items()}
    print("HV ratio of the k best cells per level (queries: " +
          ", ".join(f"k={k}: {q}" for k, q in queries.items()) + ")")
    print(f"  {'test half':<28}" + "".join(f"  k={k}: {v:.4f}" for k, v in
                                            tables["test half"].items()))
    for n, per_k in surrogate.items():
        print(f"  {'surrogate, ' + n + ' uniform cells':<28}" +
              "".join(f"  k={k}: {v['mean']:.4f} ± {v['std']:.4f}" for k, v in per_k.items()))
    print(json.dumps({"table": path.name, "column": args.column, "levels": len(levels),
                      "noise_std": round(noise, 3), "front": points, "queries": queries,
                      "k_per_level": {"test_half": tables["test half"],
                                      "surrogate": surrogate, "seeds": args.seeds},
                      "seconds": round(time.perf_counter() - start, 1)}))


if __name__ == "__main__":
    main()
