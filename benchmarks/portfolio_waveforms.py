"""The adaptive operator portfolio against the uniform mix on ``waveforms``, at equal wall clock.

For each seed, two runs of ``runs/waveforms.yaml`` with every operator that applies to its space
(``operators.applicable``): ``uniform`` (fixed equal weights) and ``auto`` (the same operators,
adaptive weights from equal ones). Both stop at the same wall-clock budget (``search.max_seconds``)
and run one after the other, alternating which goes first, so machine load falls on both alike.

Hypervolume of (val_error, params), both minimised, over every complete individual up to each
generation's end (the journal's ``generation`` lines carry the run's elapsed seconds); a run
stops at the first generation end past the budget, so each arm is scored at the budget itself:
the front known at the last generation end within it. The space is normalised with val_error in [0, 1] and params divided by the largest count any run
measured; the reference point is 1.1 in both. Reported: the final hypervolume per seed and arm,
mean and spread, the seeds where ``auto`` is higher, a one-sided Wilcoxon signed-rank test,
the portfolio's final weights, and a plot of hypervolume against wall time for both arms.

    python benchmarks/portfolio_waveforms.py [--seeds 3] [--first-seed 0] [--seconds 90]
        [--config runs/waveforms.yaml] [--plot benchmarks/portfolio_waveforms.png]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
REF = 1.1


def arm_config(base: dict, arm: str, seed: int, seconds: float, names: list[str]) -> dict:
    conf = json.loads(json.dumps(base))
    conf["seed"] = seed
    conf["name"] = f"waveforms-{arm}-{seed}"
    search = conf.setdefault("search", {})
    search["operators"] = "auto" if arm == "auto" else dict.fromkeys(names, 1.0)
    search.pop("portfolio", None)
    search["generations"] = 10_000
    search["max_seconds"] = seconds
    search.pop("max_evaluations", None)
    return conf


def curve(run: Path) -> tuple[list[tuple[float, list[list[float]]]], dict | None]:
    """(elapsed seconds, the complete points (val_error, params) so far) per generation, and
    the last adaptive weights (None for a fixed mix)."""
    from evonas.store.journal import load

    points: dict[int, list[float]] = {}
    out, weights = [], None
    for line in load(run / "journal.jsonl").lines:
        event = line.get("event")
        if event == "evaluated" and line.get("state") == "complete":
            objectives_ = line["objectives"]
            points[int(line["id"])] = [float(objectives_["val_error"]), float(objectives_["params"])]
        elif event == "generation":
            out.append((float(line["elapsed"]), list(points.values())))
        elif event == "operators" and "weights" in line:
            weights = line["weights"]
    return out, weights


def hypervolume(points: list[list[float]], max_params: float) -> float:
    from pymoo.indicators.hv import HV

    if not points:
        return 0.0
    F = np.array(points) / np.array([1.0, max_params])
    return float(HV(ref_point=np.full(2, REF))(F))


def at(c: list, seconds: float, max_params: float) -> float:
    """The hypervolume known at ``seconds``: the last generation end within the budget."""
    within = [pts for elapsed, pts in c if elapsed <= seconds]
    return hypervolume(within[-1], max_params) if within else 0.0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--first-seed", type=int, default=0)
    ap.add_argument("--seconds", type=float, default=90.0, help="wall-clock budget per run")
    ap.add_argument("--config", default=str(ROOT / "runs" / "waveforms.yaml"))
    ap.add_argument("--plot", default=None, help="PNG of hypervolume against wall time")
    ap.add_argument("--keep", default=None, help="keep the run directories under this folder")
    args = ap.parse_args()

    import evonas
    import operators
    from evonas.config import load
    from evonas.resolve import resolve

    base = load(args.config).to_dict()
    names = operators.applicable(resolve(load(args.config)).space)
    print(f"{args.config}: {len(names)} operators apply: {', '.join(names)}; "
          f"{args.seeds} seeds x 2 arms x {args.seconds:g} s", flush=True)
    root = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="portfolio-"))
    curves: dict[str, list] = {"uniform": [], "auto": []}
    weights: list[dict] = []
    start = time.perf_counter()
    for k, seed in enumerate(range(args.first_seed, args.first_seed + args.seeds)):
        order = ["uniform", "auto"] if k % 2 == 0 else ["auto", "uniform"]
        for arm in order:
            run = root / f"{arm}-{seed}"
            t0 = time.perf_counter()
            evonas.run(arm_config(base, arm, seed, args.seconds, names), run_dir=run)
            c, w = curve(run)
            curves[arm].append(c)
            if arm == "auto":
                weights.append(w)
            inside = sum(e <= args.seconds for e, _ in c)
            print(f"  seed {seed} {arm}: {len(c)} generations ({inside} ended within "
                  f"{args.seconds:g} s), {len(c[-1][1]) if c else 0} complete, "
                  f"{time.perf_counter() - t0:.0f} s", flush=True)
    max_params = max(p[1] for arm in curves.values() for c in arm for _, pts in c[-1:] for p in pts)
    final = {arm: [at(c, args.seconds, max_params) for c in runs] for arm, runs in curves.items()}
    diff = [a - u for a, u in zip(final["auto"], final["uniform"])]
    try:
        from scipy.stats import wilcoxon

        p = float(wilcoxon(diff, alternative="greater").pvalue) if any(diff) else 1.0
    except ValueError:
        p = 1.0
    for arm in ("uniform", "auto"):
        xs = final[arm]
        print(f"{arm:8s} final HV {statistics.fmean(xs):.4f} ± {_std(xs):.4f} "
              f"(per seed {', '.join(f'{x:.4f}' for x in xs)})")
    print(f"auto higher on {sum(d > 0 for d in diff)} of {len(diff)} seeds; one-sided Wilcoxon "
          f"p = {p:.3g}")
    if args.plot:
        _plot(curves, max_params, args.plot, args.seconds)
        print(f"plot: {args.plot}")
    result = {"config": args.config, "operators": names, "seeds": args.seeds,
              "first_seed": args.first_seed, "seconds_per_run": args.seconds,
              "max_params": max_params,
              "final_hv": {arm: [round(x, 5) for x in xs] for arm, xs in final.items()},
              "mean_hv": {arm: round(statistics.fmean(xs), 5) for arm, xs in final.items()},
              "std_hv": {arm: round(_std(xs), 5) for arm, xs in final.items()},
              "auto_higher": sum(d > 0 for d in diff), "wilcoxon_p_greater": round(p, 5),
              "auto_final_weights": weights,
              "bar_auto_mean_higher": statistics.fmean(final["auto"]) > statistics.fmean(final["uniform"]),
              "wall_s": round(time.perf_counter() - start, 1)}
    print(json.dumps(result))


def _std(xs: list[float]) -> float:
    return statistics.stdev(xs) if len(xs) > 1 else 0.0


def _plot(curves: dict, max_params: float, path: str, seconds: float) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    grid = np.linspace(0, seconds, 200)
    for arm, colour in (("uniform", "tab:blue"), ("auto", "tab:orange")):
        rows = []
        for c in curves[arm]:
            t = np.array([e for e, _ in c])
            hv = np.array([hypervolume(pts, max_params) for _, pts in c])
            ax.step(t, hv, where="post", color=colour, alpha=0.25, lw=0.8)
            rows.append([hv[t <= x][-1] if (t <= x).any() else 0.0 for x in grid])
        ax.plot(grid, np.mean(rows, 0), color=colour, lw=2, label=f"{arm} (mean of {len(rows)})")
    ax.set_xlabel("wall-clock seconds")
    ax.set_ylabel("hypervolume (val_error x params, normalised)")
    ax.set_title("waveforms: adaptive portfolio vs uniform mix")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)


if __name__ == "__main__":
    main()
