"""The engine's own cost: per evaluation with a zero-cost objective, and its share of the quick start.

(a) Per evaluation. The objective is ``tabular`` on the NB201 table (a dict lookup of the
genome's arch string: no training, nothing to evaluate), space ``nb201``, aging selection,
population 10, offspring 1 (one evaluation per generation), operator ``mutate`` (``random``
when a short engine run shows ``mutate`` cannot make an nb201 child yet; the output names the
operator used and why). Run through ``evonas.engine.run`` twice: with checkpoints (a run
directory in a temporary folder: journal, checkpoint, front every generation) and without
(``run_dir=None``). A ``Progress`` subclass records ``time.perf_counter()`` at each
``advance()`` (the engine calls it once per evaluation); the intervals between successive
advances after the initial population are the per-evaluation engine times, whose median is the
headline figure (target: <= 20 ms). Also: their mean, and the whole call (start-up included)
divided by its evaluations.

(b) Share of the digits quick start (``evonas.run(None, run_dir=TMP)``: the built-in config;
``--quick`` stops it after 2 generations). Evaluations run on parallel workers, so the sum of
their seconds can exceed the wall time. The share is the part of the wall time during which no
evaluation ran: ``1 - |union of [started, ended]| / wall`` when the journal's evaluation lines
carry ``started`` and ``ended``. The pre-rewrite journal has only each evaluation's
``seconds`` (cumulative over an individual's rungs: the last line of each id counts, and it
includes the driver's cheap objectives), so then the share is reported as bounds:
``1 - E / (W x wall)`` (E: summed evaluation seconds, W: workers; the share of worker-slot time
not spent evaluating, an upper bound on the time no evaluation ran, since at most W run at
once) and ``1 - min(E, wall) / wall`` (a lower bound). The headline is the upper bound then.

Last line: one JSON object with the figures.

    python benchmarks/overhead.py [--table ../shared/data/nb201_12ep_c100_in16.csv]
        [--evaluations 200] [--seed 0] [--quick] [--skip-quickstart]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))

from search_efficiency import DEFAULT_TABLE, table_file  # noqa: E402
TARGET_MS = 20.0
POPULATION = 10


def timed_progress():
    from evonas.progress import Progress

    class Timed(Progress):
        """Quiet; keeps a perf_counter stamp per evaluation counted."""

        def __init__(self):
            super().__init__(quiet=True)
            self.marks: list[float] = []

        def advance(self, n: int = 1) -> None:
            self.marks.extend([time.perf_counter()] * n)
            super().advance(n)

    return Timed()


def tabular_config(table: str, operator: str, evaluations: int, seed: int) -> dict:
    return {
        "name": "overhead", "seed": seed,
        "task": {"dataset": "synthetic", "input_shape": [3, 32, 32], "num_classes": 100,
                 "samples": 1000},
        "space": {"kind": "nb201"},
        "search": {"selection": "aging", "population": POPULATION, "offspring": 1,
                   "generations": 10 * evaluations, "max_evaluations": evaluations,
                   "operators": {operator: 1.0}},
        "objectives": [{"name": "tabular", "path": table, "value_column": "cifar100_val",
                        "direction": "max"}],
    }


def mutate_unavailable(table: str) -> str | None:
    """Why ``mutate`` cannot drive an nb201 run yet (a 15-evaluation engine run), or None."""
    import evonas.engine

    cfg = tabular_config(table, "mutate", POPULATION + 5, 0)
    cfg["search"]["generations"] = 5
    try:
        result = evonas.engine.run(cfg, run_dir=None)
    except Exception as exc:  # noqa: BLE001  (any failure is the reason it cannot run)
        return f"the engine raised {type(exc).__name__}: {exc}"
    if not any(i.operator == "mutate" for i in result.individuals):
        return "mutate made no child in 5 generations (it cannot propose an nb201 genome)"
    return None


def per_evaluation(table: str, operator: str, evaluations: int, seed: int,
                   run_dir: Path | None) -> dict:
    import evonas.engine

    progress = timed_progress()
    start = time.perf_counter()
    result = evonas.engine.run(tabular_config(table, operator, evaluations, seed),
                               run_dir=run_dir, progress=progress)
    wall = time.perf_counter() - start
    marks = progress.marks
    steps = [(b - a) * 1e3 for a, b in zip(marks[POPULATION - 1:], marks[POPULATION:])]
    checkpoints = len(list((run_dir / "checkpoints").iterdir())) if run_dir is not None else 0
    return {
        "evaluations": len(marks), "individuals": len(result.individuals),
        "wall_s": round(wall, 3), "startup_s": round(marks[0] - start, 3) if marks else None,
        "median_ms": round(statistics.median(steps), 2) if steps else None,
        "p90_ms": round(statistics.quantiles(steps, n=10)[-1], 2) if len(steps) > 1 else None,
        "mean_ms": round(statistics.fmean(steps), 2) if steps else None,
        # a cost that grows with the run shows as a later quarter slower than the first
        "first_quarter_median_ms": round(statistics.median(steps[:max(len(steps) // 4, 1)]), 2)
        if steps else None,
        "last_quarter_median_ms": round(statistics.median(steps[-max(len(steps) // 4, 1):]), 2)
        if steps else None,
        "whole_call_ms_per_evaluation": round(1e3 * wall / max(len(marks), 1), 2),
        "checkpoints_kept": checkpoints,
    }


def workers_of(config) -> int:
    d = config.dispatch
    if d.backend == "inline":
        return 1
    devices = 1
    if isinstance(d.devices, list):
        devices = len(d.devices)
    elif d.devices == "auto":
        import torch

        devices = max(torch.cuda.device_count(), 1)
    return devices * d.workers_per_device


def quickstart(quick: bool) -> dict:
    import evonas

    overrides = ["search.generations=2"] if quick else []
    with tempfile.TemporaryDirectory(prefix="evonas-overhead-") as tmp:
        run_dir = Path(tmp) / "quickstart"
        start, cpu = time.perf_counter(), time.process_time()
        result = evonas.run(None, run_dir=run_dir, overrides=overrides)
        wall, cpu = time.perf_counter() - start, time.process_time() - cpu
        lines = [json.loads(line) for line in (run_dir / "journal.jsonl").read_text().splitlines()
                 if line.strip()]
    evals = [ln for ln in lines if ln.get("event") in ("evaluated", "failed")]
    last: dict[int, float] = {}
    for ln in evals:  # seconds are cumulative over an individual's rungs
        last[ln["id"]] = max(last.get(ln["id"], 0.0), float(ln.get("seconds", 0.0)))
    busy = sum(last.values())
    workers = workers_of(result.config)
    out = {"generations": result.config.search.generations, "individuals": len(last),
           "journal_lines": len(evals), "workers": workers, "wall_s": round(wall, 2),
           "evaluation_seconds_sum": round(busy, 2),
           # the driver's own CPU time (evaluations run in worker processes): proposing,
           # screening, journaling, checkpoints and handing jobs over, as a share of the wall time
           "driver_cpu_s": round(cpu, 2), "driver_cpu_share": round(cpu / wall, 4)}
    intervals = [(float(ln["started"]), float(ln["ended"])) for ln in evals
                 if ln.get("started") is not None and ln.get("ended") is not None]
    if evals and len(intervals) == len(evals):
        covered, end = 0.0, float("-inf")
        for a, b in sorted(intervals):
            if b > end:
                covered += b - max(a, end)
                end = b
        out.update(method="union of journaled [started, ended] intervals",
                   evaluations_running_s=round(covered, 2),
                   engine_share=round(1 - covered / wall, 4))
    else:
        upper = 1 - busy / (workers * wall)
        lower = 1 - min(busy, wall) / wall
        out.update(method="bounds from journaled seconds (no started/ended in the journal): "
                          "upper = 1 - sum/(workers x wall), lower = 1 - min(sum, wall)/wall",
                   engine_share=round(upper, 4), engine_share_upper=round(upper, 4),
                   engine_share_lower=round(lower, 4))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--table", default=DEFAULT_TABLE,
                    help="NB201 CSV (relative paths are taken from the repository root)")
    ap.add_argument("--evaluations", type=int, default=200, help="per tabular run")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--quick", action="store_true", help="quick start cut to 2 generations")
    ap.add_argument("--skip-quickstart", action="store_true", help="only part (a)")
    args = ap.parse_args()
    if args.evaluations <= POPULATION:
        ap.error(f"--evaluations must exceed the population ({POPULATION})")

    table = table_file(args.table)

    import torch

    import evonas.engine  # noqa: F401  (imports before any clock starts)

    results = {"torch": torch.__version__, "seed": args.seed, "target_ms": TARGET_MS,
               "objective": "tabular (NB201 cifar100_val lookup), space nb201"}
    why = mutate_unavailable(str(table))
    operator = "mutate" if why is None else "random"
    results["operator"] = operator
    if why is not None:
        results["mutate_unavailable"] = why
        print(f"warning: using 'random', not 'mutate': {why}", file=sys.stderr)
    with tempfile.TemporaryDirectory(prefix="evonas-overhead-") as tmp:
        on = per_evaluation(str(table), operator, args.evaluations, args.seed, Path(tmp) / "run")
    off = per_evaluation(str(table), operator, args.evaluations, args.seed, None)
    results["checkpoints_on"], results["checkpoints_off"] = on, off
    results["meets_target"] = on["median_ms"] is not None and on["median_ms"] <= TARGET_MS

    print(f"(a) engine time per evaluation: tabular on nb201, aging, population {POPULATION}, "
          f"offspring 1, operator {operator}, {args.evaluations} evaluations")
    print(f"{'checkpoints':<12} {'median ms':>9} {'p90 ms':>8} {'mean ms':>8} "
          f"{'1st/4th quarter median':>22} {'whole call ms/eval':>18} {'start-up s':>10} "
          f"{'wall s':>7}")
    for name, r in (("on", on), ("off", off)):
        quarters = f"{r['first_quarter_median_ms']:.1f} / {r['last_quarter_median_ms']:.1f}"
        print(f"{name:<12} {r['median_ms']:>9.1f} {r['p90_ms']:>8.1f} {r['mean_ms']:>8.1f} "
              f"{quarters:>22} {r['whole_call_ms_per_evaluation']:>18.1f} {r['startup_s']:>10.2f} "
              f"{r['wall_s']:>7.1f}")
    print(f"target <= {TARGET_MS:g} ms (median, checkpoints on): "
          f"{'met' if results['meets_target'] else 'NOT met'}")

    if not args.skip_quickstart:
        q = quickstart(args.quick)
        results["quickstart"] = {**q, "quick": args.quick}
        print(f"\n(b) quick start{' (--quick: 2 generations)' if args.quick else ''}: wall "
              f"{q['wall_s']:.1f} s, {q['individuals']} individuals, evaluations "
              f"{q['evaluation_seconds_sum']:.1f} s summed on {q['workers']} workers")
        if "engine_share_upper" in q:
            print(f"driver CPU {q['driver_cpu_s']:.1f} s = {q['driver_cpu_share']:.1%} of the wall time")
            print(f"engine share {q['engine_share_lower']:.1%} - {q['engine_share_upper']:.1%} "
                  f"(lower: 1 - min(sum, wall)/wall; upper: 1 - sum/(workers x wall))")
        else:
            print(f"engine share {q['engine_share']:.1%} (no evaluation running)")
    print(json.dumps(results))


if __name__ == "__main__":
    main()
