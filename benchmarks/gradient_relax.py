"""Issue 14's bars for the ``gradient`` proposer: a local DARTS step around trained parents.

Per space (``cell`` and ``multibranch``; one process each, ``--workers`` at a time, one thread
each): ``--parents`` genomes drawn from the space (``initial``, seed ``--seed``) are trained
with the standard training (``TrainConfig`` defaults, ``--parent-epochs`` epochs); a parent's
epoch of wall time is its training call's wall time over its epochs (build, training and the
validation pass each epoch). Each parent is then

- relaxed by ``operators.gradient.relax_job`` (the job the proposer dispatches: plain data in
  and out, ``--sites`` sites drawn at random, the proposer's default options unless ``--set``),
  giving the gradient child; its validation accuracy right after the relaxation (before any
  fine-tune) is compared with the parent's: the share not more than 2 points below it (bar:
  >= 80 %; also reported: the share within 2 points either way), and the relaxation's wall time
  (``relax``'s own clock, from the parent's weights to the child's) in parent epochs (bar:
  <= 3; the whole job's, with reading and writing its plain data, is reported too);
- mutated by ``mutate`` (one child, same parent), giving the mutate child;

and both children get the standard fine-tune of a ``partial`` child (full learning rate,
``--fine-tune-epochs`` epochs from their weights, the same seed). Bar: the gradient child ends
with the higher validation accuracy in >= 60 % of the pairs, one-sided sign test p < 0.05
(ties dropped; scipy's ``binomtest``), per space and pooled.

Collapse (bar: never an all skip/none cell over 10 seeds): every cell child above, plus, for
each of ``--collapse-seeds`` seeds, a parent drawn to be nearly all skip/none (one edge keeps a
conv), trained one epoch and relaxed at that edge and two others with a short budget, under
``update: darts`` and ``gaea`` alike.

Task ``waveforms`` (``--task digits`` where it is absent); ``multibranch`` with the options of
``runs/waveforms.yaml``, ``cell`` with its defaults. Progress on standard error; summary lines,
then one JSON object on the last line of standard output. With the defaults: about 11 minutes of
CPU time, so about 6 minutes on 2 idle cores (14 minutes on the shared machine at load 4).

    python benchmarks/gradient_relax.py [--task waveforms] [--parents 20] [--parent-epochs 4]
        [--fine-tune-epochs 2] [--sites 2] [--seed 0] [--collapse-seeds 10] [--workers 2]
        [--spaces cell,multibranch] [--set key=value ...] [--dump FILE]
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch
from scipy.stats import binomtest

import objectives as O
from genomes import Genome, spaces
from operators import get as get_operator
from operators.base import NotApplicable
from operators.gradient import (
    EMPTY_CELL_OPS, make_job, relax_job, relaxable_sites, weights_from_bytes)

ROOT = Path(__file__).resolve().parents[1]
SPACE_OPTIONS = {  # multibranch as in runs/waveforms.yaml; cell at its defaults
    "waveforms": {"multibranch": {"stages": 4, "channels": [8, 16, 24, 32], "kernels": [3, 5, 7],
                                  "max_blocks": 2}},
}


def _value(text: str):
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def _task_spec(args) -> dict:
    return {"dataset": args.task, "seed": args.seed, "options": json.loads(args.task_options)}


def say(text: str) -> None:
    """Progress, on standard error (a worker's standard output carries its JSON only)."""
    print(text, file=sys.stderr, flush=True)


def run_space(args, name: str) -> dict:
    """Every measurement on one space; returns plain data."""
    torch.set_num_threads(1)
    spec = _task_spec(args)
    task = O.tasks.get(spec["dataset"], seed=spec["seed"], **spec["options"])
    options = SPACE_OPTIONS.get(args.task, {}).get(name, {})
    space = spaces.get(name, input_shape=task.input_shape, num_outputs=task.num_classes, **options)
    rng = np.random.default_rng([args.seed, 14, len(name)])
    parent_cfg = O.TrainConfig(epochs=args.parent_epochs)
    tune_cfg = O.TrainConfig(epochs=args.fine_tune_epochs)
    relax_options = {"sites": args.sites, **dict(args.set)}
    sites_n = relax_options.pop("sites")
    rows = []
    for k, genome in enumerate(space.initial(rng, args.parents)):
        tick = time.perf_counter()
        parent = O.train(genome, task, parent_cfg, until=args.parent_epochs, seed=k)
        epoch_s = (time.perf_counter() - tick) / args.parent_epochs
        if parent.failed:
            say(f"{name} parent {k}: failed ({parent.reason})")
            continue
        weights = parent.state.model
        parent_acc = parent.state.curve[-1].val_accuracy
        eligible = relaxable_sites(genome, space, relax_options.get("ops"))
        if not eligible:
            say(f"{name} parent {k}: no relaxable site")
            continue
        g_rng = np.random.default_rng([args.seed, 14, k])
        n = min(sites_n, len(eligible))
        sites = [eligible[int(i)] for i in sorted(g_rng.choice(len(eligible), n, replace=False))]
        job = make_job(genome=genome, weights=weights, space=space, task=spec,
                       training={"batch_size": parent_cfg.batch_size, "threads": 1},
                       sites=sites, options=relax_options, seed=k)
        tick = time.perf_counter()
        result = relax_job(job)
        job_s = time.perf_counter() - tick
        relax_s = result["info"]["seconds"] if "info" in result else job_s
        row = {"parent": k, "nodes": len(genome), "parent_acc": parent_acc, "epoch_s": epoch_s,
               "relax_s": relax_s, "relax_epochs": relax_s / epoch_s, "job_s": job_s,
               "job_epochs": job_s / epoch_s, "sites": sites}
        if "failed" in result:
            row["failed"] = result["failed"]
            rows.append(row)
            say(f"{name} parent {k}: relaxation failed: {result['failed']}")
            continue
        info = result["info"]
        child = Genome.from_json(result["genome"])
        child_w = weights_from_bytes(result["weights"])
        net = child.build()
        net.load_state_dict(child_w)
        after = O.accuracy(net, task.val)
        try:
            mutant = get_operator("mutate").make([(genome, weights)],
                                                 np.random.default_rng([args.seed, 15, k]),
                                                 space=space)
        except NotApplicable:
            mutant = None
        grad_tuned = O.train(child, task, tune_cfg, until=args.fine_tune_epochs, seed=k,
                             weights=child_w)
        mut_tuned = O.train(mutant.genome, task, tune_cfg, until=args.fine_tune_epochs, seed=k,
                            weights=mutant.state_dict) if mutant is not None else None
        row.update({
            "child_acc": after, "info_child_acc": info["child_val_acc"],
            "relaxed_acc": info["relaxed_val_acc"],
            "changes": [(s["label"], s["parent"], s["chosen"]) for s in info["sites"]],
            "arch": info.get("arch"),
            "gradient_tuned": None if grad_tuned.failed
            else grad_tuned.state.curve[-1].val_accuracy,
            "mutate_tuned": None if mut_tuned is None or mut_tuned.failed
            else mut_tuned.state.curve[-1].val_accuracy,
            "mutate": None if mutant is None else mutant.provenance.detail,
            "phases": {p: v / epoch_s for p, v in info["seconds_by_phase"].items()},
            "estimate": info["epochs"], "steps": info["steps"],
        })
        rows.append(row)
        say(f"{name} parent {k}: parent {parent_acc:.3f} -> child {after:.3f} "
            f"({row['relax_epochs']:.2f} parent epochs) | tuned gradient "
            f"{row['gradient_tuned']} vs mutate {row['mutate_tuned']} | {row['changes']}")
    collapse = collapse_check(args, task, spec) if name == "cell" else []
    return {"space": name, "options": options, "rows": rows, "collapse": collapse}


def collapse_check(args, task, spec) -> list[dict]:
    """Relax nearly-all-skip/none parents under several seeds; return each child's cell."""
    space = spaces.get("cell", input_shape=task.input_shape, num_outputs=task.num_classes)
    edges = space.edges()
    out = []
    for seed in range(args.collapse_seeds):
        rng = np.random.default_rng([seed, 99])
        last = [e for e, (i, j) in enumerate(edges) if j == space.nodes - 1]
        keep = last[int(rng.integers(len(last)))]  # an edge into the output node stays live
        conv = ["nor_conv_1x1", "nor_conv_3x3", "sep_conv_3x3"][int(rng.integers(3))]
        arch = [conv if e == keep else EMPTY_CELL_OPS[int(rng.integers(2))]
                for e in range(len(edges))]
        genome = space.from_arch(arch)
        parent = O.train(genome, task, O.TrainConfig(epochs=1), until=1, seed=seed)
        if parent.failed:
            continue
        eligible = relaxable_sites(genome, space)
        others = [e for e in eligible if e != keep]
        sites = sorted([keep] + [others[int(i)] for i in rng.choice(len(others),
                                                                    min(2, len(others)),
                                                                    replace=False)])
        for update in ("darts", "gaea"):
            job = make_job(genome=genome, weights=parent.state.model, space=space, task=spec,
                           training={"threads": 1}, sites=sites,
                           options={"epochs": 0.25, "update": update, **dict(args.set)},
                           seed=seed)
            result = relax_job(job)
            child_arch = result.get("info", {}).get("arch")
            empty = child_arch is not None and all(o in EMPTY_CELL_OPS for o in child_arch)
            out.append({"seed": seed, "update": update, "parent": arch, "child": child_arch,
                        "failed": result.get("failed"), "all_skip_none": empty})
            say(f"collapse seed {seed} {update}: {arch} -> {child_arch}"
                + (" ALL SKIP/NONE" if empty else "")
                + (f" failed {result['failed']}" if "failed" in result else ""))
    return out


def summarise(result: dict) -> dict:
    rows = [r for r in result["rows"] if "failed" not in r]
    within = [r["child_acc"] >= r["parent_acc"] - 0.02 for r in rows]  # not 2 points worse
    strict = [abs(r["child_acc"] - r["parent_acc"]) <= 0.02 for r in rows]
    pairs = [(r["gradient_tuned"], r["mutate_tuned"]) for r in rows
             if r["gradient_tuned"] is not None and r["mutate_tuned"] is not None]
    wins = sum(g > m for g, m in pairs)
    losses = sum(g < m for g, m in pairs)
    ratio = [r["relax_epochs"] for r in result["rows"]]
    cells = [r["arch"] for r in rows if r.get("arch")] + [c["child"] for c in result["collapse"]
                                                          if c["child"]]
    return {
        "parents": len(result["rows"]), "relaxed": len(rows),
        "failed": [r["failed"] for r in result["rows"] if "failed" in r],
        "within_2_points": sum(within), "within_2_points_share": _share(sum(within), len(rows)),
        "within_2_points_both_ways": sum(strict),
        "better_than_parent": sum(r["child_acc"] > r["parent_acc"] for r in rows),
        "drop_mean_points": _mean([100 * (r["child_acc"] - r["parent_acc"]) for r in rows]),
        "wins": wins, "losses": losses, "ties": len(pairs) - wins - losses,
        "win_share": _share(wins, len(pairs)),
        "sign_p": _sign_p(wins, losses),
        "gain_vs_mutate_mean_points": _mean([100 * (g - m) for g, m in pairs]),
        "relax_parent_epochs_median": _median(ratio),
        "relax_parent_epochs_max": max(ratio, default=None),
        "relax_within_3_epochs_share": _share(sum(x <= 3 for x in ratio), len(ratio)),
        "job_parent_epochs_median": _median([r["job_epochs"] for r in result["rows"]]),
        "estimated_parent_epochs_median": _median([r["estimate"] for r in rows]),
        "all_skip_none_cells": sum(all(o in EMPTY_CELL_OPS for o in a) for a in cells),
        "cells_checked": len(cells),
    }


def _sign_p(wins: int, losses: int) -> float | None:
    n = wins + losses
    return None if n == 0 else float(binomtest(wins, n, 0.5, alternative="greater").pvalue)


def _share(k, n):
    return None if n == 0 else k / n


def _mean(xs):
    return statistics.fmean(xs) if xs else None


def _median(xs):
    return statistics.median(xs) if xs else None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--task", default="waveforms")
    ap.add_argument("--task-options", default="{}", help="JSON object of task options")
    ap.add_argument("--parents", type=int, default=20)
    ap.add_argument("--parent-epochs", type=int, default=4)
    ap.add_argument("--fine-tune-epochs", type=int, default=2)
    ap.add_argument("--sites", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--collapse-seeds", type=int, default=10)
    ap.add_argument("--workers", type=int, default=2, help="spaces measured at once")
    ap.add_argument("--spaces", default="cell,multibranch")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="a relaxation option (JSON value), e.g. --set update=gaea")
    ap.add_argument("--dump", default=None, help="write every row to this JSON file")
    ap.add_argument("--only", default=None, help=argparse.SUPPRESS)  # one space, in a worker
    args = ap.parse_args()
    args.set = [(k, _value(v)) for k, v in (s.split("=", 1) for s in args.set)]
    if args.task == "waveforms" and "waveforms" not in O.tasks.names():
        print("the waveforms task is absent here; using digits")
        args.task = "digits"
    started = time.perf_counter()
    if args.only:
        print(json.dumps(run_space(args, args.only)))
        return
    names = args.spaces.split(",")
    results = _in_workers(names, args)
    figures = {}
    for result in results:
        figures[result["space"]] = summarise(result)
    every = {"space": "pooled", "rows": [r for x in results for r in x["rows"]],
             "collapse": [c for x in results for c in x["collapse"]]}
    figures["pooled"] = summarise(every)
    for name, f in figures.items():
        print(f"{name}: within 2 points right after relaxation {f['within_2_points']}/"
              f"{f['relaxed']} ({_pct(f['within_2_points_share'])}); after fine-tune gradient "
              f"beats "
              f"mutate {f['wins']}-{f['losses']} (ties {f['ties']}, {_pct(f['win_share'])}, sign "
              f"p = {_fmt(f['sign_p'])}, mean {_fmt(f['gain_vs_mutate_mean_points'])} points); "
              f"relaxation {_fmt(f['relax_parent_epochs_median'])} parent epochs (median, max "
              f"{_fmt(f['relax_parent_epochs_max'])}); all skip/none cells "
              f"{f['all_skip_none_cells']}/{f['cells_checked']}; failed {len(f['failed'])}")
    if args.dump:
        Path(args.dump).write_text(json.dumps(results, indent=1))
    out = {"task": args.task, "parents": args.parents, "parent_epochs": args.parent_epochs,
           "fine_tune_epochs": args.fine_tune_epochs, "sites": args.sites, "seed": args.seed,
           "collapse_seeds": args.collapse_seeds, "set": dict(args.set), "figures": figures,
           "seconds": round(time.perf_counter() - started, 1)}
    print(json.dumps(out))


def _in_workers(names, args) -> list[dict]:
    """Each space in its own process (JSON on its last line; nothing pickled)."""
    base = [sys.executable, str(Path(__file__).resolve()), "--task", args.task,
            "--task-options", args.task_options, "--parents", str(args.parents),
            "--parent-epochs", str(args.parent_epochs), "--fine-tune-epochs",
            str(args.fine_tune_epochs), "--sites", str(args.sites), "--seed", str(args.seed),
            "--collapse-seeds", str(args.collapse_seeds)]
    for k, v in args.set:
        base += ["--set", f"{k}={json.dumps(v)}"]
    pending, running, results = list(names), [], []
    while pending or running:
        while pending and len(running) < max(1, args.workers):
            name = pending.pop(0)
            running.append(subprocess.Popen(base + ["--only", name], stdout=subprocess.PIPE,
                                            text=True, cwd=ROOT))
        proc = running.pop(0)
        lines = proc.communicate()[0].splitlines()
        if proc.returncode != 0 or not lines:
            raise RuntimeError(f"a worker failed (exit code {proc.returncode})")
        results.append(json.loads(lines[-1]))
    return results


def _pct(x) -> str:
    return "n/a" if x is None else f"{100 * x:.0f} %"


def _fmt(x) -> str:
    if x is None:
        return "n/a"
    return f"{x:.3g}" if isinstance(x, float) and not math.isnan(x) else str(x)


if __name__ == "__main__":
    main()
