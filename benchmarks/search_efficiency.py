"""Search efficiency of evonas's strategies on the NAS-Bench-201 table (CIFAR-100, 12 epochs).

Each (strategy, seed) is ONE engine run, ``evonas.run(config, run_dir=None)``, of the largest
budget's queries (``search.max_evaluations``) with the ``tabular`` objective as its only
objective, so nothing is trained. The smaller budgets are read off the same run (anytime
performance): the first N evaluated individuals in id order, i.e. the first N cells the engine
queried. Per strategy and budget, over seeds:

- validation regret = (best ``--column`` in the whole table) - (best ``--column`` among the first
  N queried cells); mean, std, median, min, max;
- found share: the share of seeds whose first N queries include a cell with the table's best
  ``--column`` value;
- the ``--test-column`` value of the pick (the queried cell with the best ``--column``; the first
  queried one on ties), read from the CSV here: reported, never used for selection.

Strategies: ``random`` (the ``random`` operator, aging selection, population 10, offspring 10)
and ``rea`` (regularised evolution: aging selection, ``mutate``, population 10, tournament 3,
offspring 1). Generations are set to 10x the budget so that ``max_evaluations`` binds (a
generation whose child duplicates a queried cell queries nothing). A strategy whose operator
cannot propose an ``nb201`` child (checked by a short engine run of 15 queries) is skipped
with its reason.

Random search's expected range is computed exactly from the table: with M cells and a budget
of N distinct cells drawn uniformly, P(best <= v) = C(#cells <= v, N) / C(M, N); the per-seed
regret distribution this gives is sampled ``--mc`` times for the mean over the run's seed count,
and the 2.5-97.5 % interval of that mean is the expected range (the found share's range is the
binomial one). With ``bayesian`` among the strategies, its surrogate's Kendall tau is reported per
seed: the proposer's own features and ensemble (default options) fitted on 100 cells drawn
uniformly by the seed (the bar's figure), and on the run's first 100 queried cells, predicting
1,000 held-out cells drawn uniformly (by the seed) from the rest of the table. Last line: one JSON object with the figures and the bars' checks (REA@150; bayesian@150
per column; the mean tau; rl@300 against random).

    python benchmarks/search_efficiency.py [--table ../shared/data/nb201_12ep_c100_in16.csv]
        [--column cifar100_val] [--test-column cifar100_test] [--seeds 30]
        [--budgets 50,100,150,300] [--strategies random,rea] [--workers 2] [--mc 10000]
        [--tau-only]
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_TABLE = "../shared/data/nb201_12ep_c100_in16.csv"  # relative to the repository root
INPUT_SHAPE = (3, 32, 32)  # the nb201 space's skeleton wants (C, H, W), H and W multiples of 4
NUM_CLASSES = 100  # CIFAR-100; nothing is trained, so the synthetic task only shapes the genome
STRATEGIES = {
    # name: (search section without the budget, the operator to check on nb201)
    "random": ({"selection": "aging", "population": 10, "offspring": 10,
                "operators": {"random": 1.0}}, "random"),
    "rea": ({"selection": "aging", "population": 10, "offspring": 1, "tournament": 3,
             "operators": {"mutate": 1.0}}, "mutate"),
    # the learning proposers (issue 13): a batch of 10 per generation, chosen by the proposer
    "bayesian": ({"selection": "aging", "population": 10, "offspring": 10,
                  "operators": {"bayesian": 1.0}}, "bayesian"),
    "rl": ({"selection": "aging", "population": 10, "offspring": 10,
            "operators": {"rl": 1.0}}, "rl"),
    # the operator portfolio (issue 14): the four proposers that apply to nb201, mixed with
    # fixed equal weights, or adapted ("auto": the same four, from equal weights)
    "uniform": ({"selection": "aging", "population": 10, "offspring": 10,
                 "operators": {"random": 1.0, "mutate": 1.0, "bayesian": 1.0, "rl": 1.0}},
                "bayesian"),
    "auto": ({"selection": "aging", "population": 10, "offspring": 10, "operators": "auto"},
             "bayesian"),
}
SINGLES = ("random", "rea", "bayesian", "rl")  # the single proposers "auto" mixes on nb201
BARS = {"rea": {"budget": 150, "max_mean_regret": 0.85, "min_found_share": 0.12}}
# issue 13: bayesian at 150 queries reaches what REA needs 300 for (per searched column)
BAYESIAN_BARS = {"cifar100_val": {"budget": 150, "max_mean_regret": 0.25, "min_found_share": 0.35},
                 "imagenet16_val": {"budget": 150, "max_mean_regret": 0.55, "min_found_share": 0.35}}
TAU = {"observations": 100, "held_out": 1000, "min_mean": 0.6}


def surrogate_tau(run: dict, table: dict, observations: int, held_out: int,
                  sample: str) -> float:
    """Kendall tau between the ``bayesian`` surrogate's predictions and the table on
    ``held_out`` cells it has not observed, after ``observations`` observations: ``uniform``
    cells drawn by the run's seed (the usual protocol for performance predictors), or the
    ``search``'s own first queries (concentrated on good cells, so ranking the whole table is
    extrapolation). The proposer's own features and ensemble, default options, fitted as it
    fits."""
    from scipy.stats import kendalltau

    from genomes import spaces
    from operators.bayesian import Bayesian, _CellCoder, _standardise

    space = spaces.get("nb201", input_shape=INPUT_SHAPE, num_outputs=NUM_CLASSES)
    rng = np.random.default_rng(run["seed"])
    if sample == "search":
        first = [a for a, v in run["cells"][:observations] if v is not None]
    else:
        every = sorted(table)
        first = [every[k] for k in rng.choice(len(every), size=observations, replace=False)]
    rest = sorted(set(table) - set(first))
    test = [rest[k] for k in rng.choice(len(rest), size=held_out, replace=False)]

    def features(archs: list[str]) -> np.ndarray:
        return coder.features(np.array([[space.ops.index(o) for o in space.parse_arch_string(a)]
                                        for a in archs]))

    b = Bayesian()
    coder = _CellCoder(space, b.encoding)
    X, C = _standardise(features(first), features(test))
    model, _, _ = b._fit(X, -np.array([[table[a][0]] for a in first]), rng)
    return float(kendalltau(-model.predict(C).mean(0)[:, 0], [table[a][0] for a in test]).statistic)


def propose_seconds(cells: list[tuple], column: str, options: dict, *, params: bool = False,
                    n: int = 10, repeats: int = 3) -> float:
    """Median seconds of one ``bayesian`` generation (refit plus acquisition of ``n``
    proposals, with the preview of ``params`` when ``params``) after observing ``cells``
    ((arch, value) or (arch, value, params)), in this process. As in a run, each timed
    generation follows one that observed all but the last ``n`` cells (so the previews and
    decoded observations from before are kept); a fresh proposer each repeat."""
    from genomes import spaces
    from objectives import Context, EvalState, EvaluationRecord
    from objectives import get as objective
    from operators import Request, Result
    from operators.bayesian import Bayesian

    space = spaces.get("nb201", input_shape=INPUT_SHAPE, num_outputs=NUM_CLASSES)
    told = []
    for k, cell in enumerate(c for c in cells if c[1] is not None):
        genome = space.from_arch_string(cell[0])
        values = {column: cell[1], **({"params": cell[2]} if params else {})}
        record = EvaluationRecord(genome.canonical_hash(), EvalState.COMPLETE, values)
        told.append(Result(k, genome, record, "bayesian", (), None, "evaluated", 0))
    counter = objective("params")

    def preview(genomes):
        return [{"params": counter.measure(Context(g))} for g in genomes]

    directions = {column: "max", **({"params": "min"} if params else {})}
    times = []
    def request(upto: int, seed: int) -> Request:
        return Request(n=n, parents=(), population=(), objectives=np.zeros((0, len(directions))),
                       directions=directions,
                       seen=frozenset(r.genome.canonical_hash() for r in told[:upto]),
                       space=space, budget={}, generation=upto // n,
                       rng=np.random.default_rng(seed), weights=False,
                       preview=preview, previewed=("params",) if params else ())

    for k in range(repeats):
        b = Bayesian(**options)
        b.tell(told[:-n])
        b.propose(request(len(told) - n, k))
        b.tell(told[-n:])
        start = time.perf_counter()
        b.propose(request(len(told), k))
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def budgets_and_strategies(ap: argparse.ArgumentParser, args: argparse.Namespace,
                           known: dict) -> tuple[list[int], list[str]]:
    """``--budgets`` (ascending) and ``--strategies`` checked against ``known``; a bad value is
    an argparse error (exit 2) naming it."""
    budgets = sorted({int(b) for b in args.budgets.split(",") if b.strip()})
    strategies = [s.strip() for s in args.strategies.split(",") if s.strip()]
    for s in strategies:
        if s not in known:
            ap.error(f"unknown strategy {s!r}; known: {list(known)}")
    if not budgets or budgets[0] < 1 or args.seeds < 1 or args.workers < 1:
        ap.error("budgets, seeds and workers must be >= 1")
    return budgets, strategies


def table_file(arg: str) -> Path:
    """The ``--table`` path (relative ones from the repository root); exit 2 naming it if it is
    not a file."""
    path = Path(arg).expanduser()
    if not path.is_absolute():
        path = ROOT / path
    if not path.is_file():
        print(f"error: the NB201 table {str(path)!r} does not exist; pass --table PATH "
              f"(see shared/data/README.md)", file=sys.stderr)
        sys.exit(2)
    return path


def read_table(path: Path, column: str, test_column: str) -> dict[str, tuple[float, float]]:
    """arch -> (search value, test value)."""
    with path.open(newline="") as f:
        reader = csv.DictReader(f)
        for c in ("arch", column, test_column):
            if c not in (reader.fieldnames or []):
                sys.exit(f"error: {path} has no column {c!r}; columns: {reader.fieldnames}")
        return {row["arch"]: (float(row[column]), float(row[test_column])) for row in reader}


def run_seeds(run, strategies, seeds, workers: int, *args) -> dict[str, list[dict]]:
    """``run(strategy, seed, *args)`` for every strategy and seed in ``workers`` spawned
    processes, a progress line per finished run; the runs per strategy, in seed order."""
    jobs = [(s, seed) for s in strategies for seed in seeds]
    runs: dict[str, list[dict]] = {s: [] for s in strategies}
    with ProcessPoolExecutor(workers, mp_context=get_context("spawn")) as pool:
        futures = [pool.submit(run, s, seed, *args) for s, seed in jobs]
        for k, fut in enumerate(futures):
            out = fut.result()
            runs[out["strategy"]].append(out)
            print(f"  {out['strategy']} seed {out['seed']}: {len(out['cells'])} queries, "
                  f"{out['wall_s']:.1f} s ({k + 1}/{len(jobs)})", flush=True)
    return runs


def nb201_config(name: str, seed: int, search: dict, budget: int, table: str, column: str,
                 more: tuple[dict, ...] = ()) -> dict:
    """An engine config on the ``nb201`` space: ``column`` of the table maximised (plus the
    objectives in ``more``), ``budget`` queries, generations enough that the budget binds."""
    return {
        "name": name, "seed": seed,
        "task": {"dataset": "synthetic", "input_shape": list(INPUT_SHAPE),
                 "num_classes": NUM_CLASSES, "samples": 10 * NUM_CLASSES},
        "space": {"kind": "nb201"},
        "search": {**search, "generations": 10 * budget, "max_evaluations": budget},
        "objectives": [{"name": "tabular", "path": table, "value_column": column,
                        "direction": "max"}, *more],
    }


def config(strategy: str, seed: int, budget: int, table: str, column: str) -> dict:
    return nb201_config(f"nb201-{strategy}", seed, STRATEGIES[strategy][0], budget, table, column)


def unavailable(strategy: str, table: str, column: str) -> str | None:
    """Why the strategy cannot run on nb201 (its operator makes no child in a short engine run,
    or the run raises), or None if it can."""
    import evonas

    cfg = config(strategy, 0, 15, table, column)
    cfg["search"]["generations"] = 5
    try:
        result = evonas.run(cfg, run_dir=None)
    except Exception as exc:  # noqa: BLE001  (any failure is the reason it cannot run)
        return f"the engine raised {type(exc).__name__}: {exc}"
    children = [i for i in result.individuals if i.operator != "initial"]
    if not children:
        return (f"its operator {STRATEGIES[strategy][1]!r} made no child in 5 generations "
                f"(it cannot propose an nb201 genome yet)")
    return None


def one_run(strategy: str, seed: int, budget: int, table: str, column: str) -> dict:
    """One engine run; the queried cells' arch strings and values in id order."""
    import evonas
    import evonas.engine
    from genomes import spaces

    space = spaces.get("nb201", input_shape=INPUT_SHAPE, num_outputs=NUM_CLASSES)
    start = time.perf_counter()
    result = evonas.run(config(strategy, seed, budget, table, column), run_dir=None)
    wall = time.perf_counter() - start
    queried = sorted((i for i in result.individuals if i.record is not None), key=lambda i: i.id)
    cells = []
    for ind in queried:
        value = ind.record.objectives.get(column) if ind.complete else None
        cells.append((space.to_arch_string(ind.genome), value))
    return {"strategy": strategy, "seed": seed, "wall_s": wall, "cells": cells,
            "failed": sum(v is None for _, v in cells)}


def summarise(runs: list[dict], table: dict, best: float, budgets: list[int]) -> dict:
    out = {}
    for n in budgets:
        regrets, tests, found = [], [], 0
        for run in runs:
            first = [(a, v) for a, v in run["cells"][:n] if v is not None]
            if not first:
                continue
            arch, value = max(first, key=lambda c: c[1])  # max keeps the first on ties
            regrets.append(best - value)
            tests.append(table[arch][1])
            found += value >= best
        out[str(n)] = {
            "seeds": len(regrets),
            "mean_regret": _r(statistics.fmean(regrets)), "std_regret": _r(_std(regrets)),
            "median_regret": _r(statistics.median(regrets)),
            "min_regret": _r(min(regrets)), "max_regret": _r(max(regrets)),
            "found_share": _r(found / len(regrets)),
            "mean_test": _r(statistics.fmean(tests)), "std_test": _r(_std(tests)),
            "short_runs": sum(len(r["cells"]) < n for r in runs),
            "regrets": [_r(x) for x in regrets],  # per seed, in seed order (for tests between)
        }
    return out


def random_expectation(values: np.ndarray, budgets: list[int], seeds: int, sims: int,
                       rng: np.random.Generator) -> dict:
    """Exact per-seed law of random search's regret over N distinct uniform cells; the 2.5-97.5 %
    interval of its mean over ``seeds`` seeds by sampling that law ``sims`` times."""
    m = len(values)
    uniq, counts = np.unique(values, return_counts=True)  # ascending
    below = np.cumsum(counts)  # cells with value <= uniq[k]
    best = uniq[-1]
    out = {}
    for n in budgets:
        cdf = np.exp(_log_cdf(below, n, m))  # P(best <= uniq[k])
        pmf = np.diff(np.concatenate([[0.0], cdf]))
        pmf = np.clip(pmf, 0, None)
        pmf /= pmf.sum()
        regret = best - uniq
        mean = float(pmf @ regret)
        std = float(math.sqrt(max(pmf @ (regret - mean) ** 2, 0.0)))
        p_found = float(pmf[-1])
        draws = rng.choice(regret, size=(sims, seeds), p=pmf).mean(axis=1)
        lo, hi = np.percentile(draws, [2.5, 97.5])
        found = rng.binomial(seeds, p_found, size=sims) / seeds
        flo, fhi = np.percentile(found, [2.5, 97.5])
        out[str(n)] = {"mean_regret": _r(mean), "std_regret_per_seed": _r(std),
                       "mean_regret_interval": [_r(lo), _r(hi)], "found_probability": _r(p_found),
                       "found_share_interval": [_r(flo), _r(fhi)]}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--table", default=DEFAULT_TABLE,
                    help="NB201 CSV (relative paths are taken from the repository root)")
    ap.add_argument("--column", default="cifar100_val", help="the column searched on (max)")
    ap.add_argument("--test-column", default=None,
                    help="the column reported for the pick (default: --column with _val -> _test)")
    ap.add_argument("--seeds", type=int, default=30)
    ap.add_argument("--first-seed", type=int, default=0,
                    help="seeds first-seed .. first-seed + seeds - 1 (others for development)")
    ap.add_argument("--budgets", default="50,100,150,300")
    ap.add_argument("--strategies", default="random,rea")
    ap.add_argument("--workers", type=int, default=2, help="processes running seeds in parallel")
    ap.add_argument("--mc", type=int, default=10_000, help="samples for random search's range")
    ap.add_argument("--tau-only", action="store_true",
                    help="only the bayesian surrogate's Kendall tau per seed, 100 uniform "
                         "observations (no engine runs)")
    args = ap.parse_args()

    table_path = table_file(args.table)
    test_column = args.test_column or args.column.replace("_val", "_test")
    budgets, strategies = budgets_and_strategies(ap, args, STRATEGIES)
    budget = budgets[-1]

    table = read_table(table_path, args.column, test_column)
    values = np.array([v for v, _ in table.values()])
    best = float(values.max())
    best_cells = int((values == best).sum())
    print(f"table {table_path.name}: {len(table)} cells, best {args.column} {best} "
          f"({best_cells} cell{'s' * (best_cells > 1)}); budgets {budgets}, {args.seeds} seeds")

    if args.tau_only:
        start = time.perf_counter()
        taus = [surrogate_tau({"seed": seed}, table, TAU["observations"], TAU["held_out"],
                              "uniform") for seed in range(args.seeds)]
        out = {"table": table_path.name, "column": args.column, **TAU, "sample": "uniform",
               "seeds": args.seeds, "mean": _r(statistics.fmean(taus)), "std": _r(_std(taus)),
               "min": _r(min(taus)), "max": _r(max(taus)), "per_seed": [_r(t) for t in taus],
               "seeds_at_or_above": sum(t >= TAU["min_mean"] for t in taus),
               "bar": statistics.fmean(taus) >= TAU["min_mean"],
               "wall_s": _r(time.perf_counter() - start)}
        print(f"bayesian surrogate, Kendall tau on {TAU['held_out']} held-out cells after "
              f"{TAU['observations']} uniform observations, {args.seeds} seeds: "
              f"{out['mean']:.3f} +- {out['std']:.3f} (min {out['min']:.3f}, max {out['max']:.3f})")
        print(json.dumps(out))
        return

    skipped = {}
    for s in list(strategies):
        if (why := unavailable(s, str(table_path), args.column)) is not None:
            print(f"warning: skipping {s}: {why}", file=sys.stderr)
            skipped[s] = why
            strategies.remove(s)

    os.environ.setdefault("OMP_NUM_THREADS", "1")
    start = time.perf_counter()
    runs = run_seeds(one_run, strategies, range(args.first_seed, args.first_seed + args.seeds),
                     args.workers, budget,
                     str(table_path), args.column)
    total = time.perf_counter() - start

    results = {"table": table_path.name, "column": args.column, "test_column": test_column,
               "table_cells": len(table), "table_best": best, "seeds": args.seeds,
               "budgets": budgets, "workers": args.workers, "strategies": {}, "skipped": skipped}
    for s in strategies:
        walls = [r["wall_s"] for r in runs[s]]
        dup = sum(len(r["cells"]) - len({a for a, _ in r["cells"]}) for r in runs[s])
        results["strategies"][s] = {
            "budgets": summarise(runs[s], table, best, budgets),
            "mean_wall_s_per_run": _r(statistics.fmean(walls)),
            "mean_ms_per_query": _r(1e3 * sum(walls) / sum(len(r["cells"]) for r in runs[s])),
            "failed_queries": sum(r["failed"] for r in runs[s]), "duplicate_queries": dup,
        }
    expected = random_expectation(values, budgets, args.seeds, args.mc, np.random.default_rng(0))
    results["random_expected"] = {"method": f"exact per-seed law, {args.mc} samples of the "
                                            f"{args.seeds}-seed mean", "budgets": expected}
    inside = {}
    if "random" in strategies:
        for n in budgets:
            got = results["strategies"]["random"]["budgets"][str(n)]
            lo, hi = expected[str(n)]["mean_regret_interval"]
            flo, fhi = expected[str(n)]["found_share_interval"]
            inside[str(n)] = {"mean_regret": lo <= got["mean_regret"] <= hi,
                              "found_share": flo <= got["found_share"] <= fhi}
        results["random_in_expected_range"] = inside
    results["total_wall_s"] = _r(total)

    if "random" in strategies:  # does a strategy beat random search? (one-sided Mann-Whitney)
        from scipy.stats import mannwhitneyu

        base = results["strategies"]["random"]["budgets"]
        results["vs_random"] = {
            s: {str(n): _r(float(mannwhitneyu(results["strategies"][s]["budgets"][str(n)]["regrets"],
                                              base[str(n)]["regrets"], alternative="less").pvalue))
                for n in budgets} for s in strategies if s != "random"}
    if "bayesian" in strategies:
        ordered = sorted(runs["bayesian"], key=lambda r: r["seed"])
        results["strategies"]["bayesian"]["surrogate_tau"] = {**TAU}
        for sample in ("uniform", "search"):
            taus = [surrogate_tau(r, table, TAU["observations"], TAU["held_out"], sample)
                    for r in ordered]
            results["strategies"]["bayesian"]["surrogate_tau"][sample] = {
                "mean": _r(statistics.fmean(taus)), "std": _r(_std(taus)), "min": _r(min(taus)),
                "max": _r(max(taus)), "per_seed": [_r(t) for t in taus]}
    if "bayesian" in strategies:  # the speed bar: one generation at the largest budget
        run = min(runs["bayesian"], key=lambda r: r["seed"])
        results["strategies"]["bayesian"]["generation_seconds"] = {
            "observations": len(run["cells"]),
            "median_s": _r(propose_seconds(run["cells"], args.column, {})),
            "loadavg": [round(x, 2) for x in os.getloadavg()]}
    bar = BARS["rea"]
    rea = results["strategies"].get("rea", {}).get("budgets", {}).get(str(bar["budget"]))
    rand = inside.get(str(bar["budget"]))
    results["bars"] = {
        "rea@150 mean_regret <= 0.85": None if rea is None else rea["mean_regret"] <= bar["max_mean_regret"],
        "rea@150 found_share >= 0.12": None if rea is None else rea["found_share"] >= bar["min_found_share"],
        "random@150 mean_regret in expected range": None if rand is None else rand["mean_regret"],
    }
    bo_bar = BAYESIAN_BARS.get(args.column)
    bo = results["strategies"].get("bayesian", {}).get("budgets", {})
    if bo_bar is not None and str(bo_bar["budget"]) in bo:
        got = bo[str(bo_bar["budget"])]
        results["bars"][f"bayesian@150 mean_regret <= {bo_bar['max_mean_regret']}"] = \
            got["mean_regret"] <= bo_bar["max_mean_regret"]
        results["bars"][f"bayesian@150 found_share >= {bo_bar['min_found_share']}"] = \
            got["found_share"] >= bo_bar["min_found_share"]
    if "surrogate_tau" in results["strategies"].get("bayesian", {}):
        results["bars"]["bayesian surrogate tau, 100 uniform observations (mean) >= 0.6"] = \
            results["strategies"]["bayesian"]["surrogate_tau"]["uniform"]["mean"] >= TAU["min_mean"]
    if "rl" in results.get("vs_random", {}) and "300" in results["vs_random"]["rl"]:
        results["bars"]["rl@300 beats random (one-sided Mann-Whitney p < 0.05)"] = \
            results["vs_random"]["rl"]["300"] < 0.05

    singles = [s for s in SINGLES if s in strategies]
    if "auto" in strategies and singles:  # issue 14: the portfolio at the largest budget
        from scipy.stats import mannwhitneyu

        n = str(max(budgets))
        regret = {s: results["strategies"][s]["budgets"][n]["mean_regret"] for s in strategies}
        best = min(singles, key=regret.get)
        results["bars"][f"auto@{n} mean_regret <= 1.1 x the best single proposer ({best})"] = \
            regret["auto"] <= 1.1 * regret[best]
        if "uniform" in strategies:
            results["bars"][f"auto@{n} mean_regret < uniform"] = regret["auto"] < regret["uniform"]
            auto = results["strategies"]["auto"]["budgets"]
            results["auto_vs_uniform_p"] = {
                str(m): _r(float(mannwhitneyu(auto[str(m)]["regrets"],
                                              results["strategies"]["uniform"]["budgets"][str(m)]["regrets"],
                                              alternative="less").pvalue)) for m in budgets}

    print()
    print(f"{'strategy':<8} {'N':>4} {'regret mean':>11} {'std':>6} {'median':>6} {'min':>6} "
          f"{'max':>6} {'found':>6} {'test mean':>9} {'std':>5}")
    for s in strategies:
        for n in budgets:
            b = results["strategies"][s]["budgets"][str(n)]
            print(f"{s:<8} {n:>4} {b['mean_regret']:>11.3f} {b['std_regret']:>6.3f} "
                  f"{b['median_regret']:>6.3f} {b['min_regret']:>6.3f} {b['max_regret']:>6.3f} "
                  f"{b['found_share']:>6.1%} {b['mean_test']:>9.2f} {b['std_test']:>5.2f}")
    print()
    print("random search, expected (exact law; interval of the mean over "
          f"{args.seeds} seeds):")
    for n in budgets:
        e = expected[str(n)]
        lo, hi = e["mean_regret_interval"]
        mark = ""
        if str(n) in inside:
            mark = "  engine inside" if inside[str(n)]["mean_regret"] else "  ENGINE OUTSIDE"
        print(f"  N={n:>4}: mean regret {e['mean_regret']:.3f} [{lo:.3f}, {hi:.3f}], "
              f"P(found) {e['found_probability']:.2%}{mark}")
    if "surrogate_tau" in results["strategies"].get("bayesian", {}):
        for sample, t in results["strategies"]["bayesian"]["surrogate_tau"].items():
            if isinstance(t, dict):
                print(f"bayesian surrogate, Kendall tau on {TAU['held_out']} held-out cells after "
                      f"{TAU['observations']} {sample} observations: {t['mean']:.3f} +- "
                      f"{t['std']:.3f} (min {t['min']:.3f}); per seed {t['per_seed']}")
    if "generation_seconds" in results["strategies"].get("bayesian", {}):
        g = results["strategies"]["bayesian"]["generation_seconds"]
        print(f"bayesian: refit and acquisition of 10 proposals at {g['observations']} "
              f"observations: {g['median_s']:.2f} s (median of 3, this process; load average "
              f"{g['loadavg'][0]})")
    for s in strategies:
        r = results["strategies"][s]
        print(f"{s}: {r['mean_wall_s_per_run']:.1f} s per run, {r['mean_ms_per_query']:.0f} ms "
              f"per query")
    print(f"total {total:.0f} s on {args.workers} workers; bars: {results['bars']}")
    print(json.dumps(results))


def _log_cdf(k: np.ndarray, n: int, m: int) -> np.ndarray:
    """log C(k, n) - log C(m, n), with C(k, n) = 0 for k < n."""
    k = np.asarray(k, dtype=float)
    out = np.full(k.shape, -np.inf)
    ok = k >= n
    kk = k[ok]
    out[ok] = (_lgamma(kk + 1) - _lgamma(kk - n + 1)) - (_lgamma(m + 1) - _lgamma(m - n + 1))
    return out


def _lgamma(x: np.ndarray) -> np.ndarray:
    return np.vectorize(math.lgamma, otypes=[float])(x)


def _std(xs: list[float]) -> float:
    return statistics.stdev(xs) if len(xs) > 1 else 0.0


def _r(x: float) -> float:
    return round(float(x), 4)


if __name__ == "__main__":
    main()
