"""Where the bar is on the `waveforms` task: two reference CNNs and two linear baselines.

Trains, with the project's own trainer and the training settings of the config (default
runs/waveforms.yaml) but more epochs: (a) a plain 2-layer CNN of about 5,000 parameters
(conv 7 -> maxpool 2 -> conv 7, global average pooling; also the same without the pooling)
and (b) a small CNN of pooling stages (conv 7, conv 5, then three stages of maxpool 2 and a
separable conv 5), each a member of the config's search space, over several run seeds (the
seed carves validation and initialises the network; the test split is fixed). Also logistic
regression on the raw signals and on their FFT magnitudes (shift-invariant). Reports test and
validation accuracy, mean +- std over the seeds, and the parameter counts. Last line: one JSON
object.

    python benchmarks/waveforms_task.py [--seeds 0,1,2,3,4] [--epochs 40] [--workers 2]
                                        [--config runs/waveforms.yaml]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context

import numpy as np
import torch

import objectives as O
from evonas.config import load
from genomes import Genome, spaces

BAR = 0.95


def network(name: str, input_shape, num_classes: int) -> Genome:
    """The reference networks, written out layer by layer (conv -> batchnorm -> relu blocks)."""
    g = Genome(input_shape, num_classes)
    x = g.add("input", id="input")

    def block(x, op, channels, kernel):
        x = g.add(op, [x], channels=channels, kernel=kernel, bias=False)
        return g.add("act", [g.add("batchnorm", [x])], fn="relu")

    if name in ("a", "a_nopool"):  # plain: two conv layers, the second at half resolution
        x = block(x, "conv", 16, 7)
        if name == "a":
            x = g.add("maxpool", [x], kernel=2)
        x = block(x, "conv", 40, 7)
    elif name == "b":  # a stem, then stages that halve the resolution; cheap separable convs
        x = block(x, "conv", 16, 7)
        x = block(x, "conv", 16, 5)
        for _ in range(3):
            x = block(g.add("maxpool", [x], kernel=2), "sepconv", 32, 5)
    else:
        raise ValueError(name)
    x = g.add("dense", [g.add("globalpool", [x])], units=num_classes)
    g.add("output", [x], id="output")
    return g.validate()


NAMES = {"a": "(a) 2-layer CNN: conv7(16), maxpool2, conv7(40)",
         "a_nopool": "(a') 2-layer CNN without the pooling",
         "b": "(b) stem conv7(16), conv5(16), 3 x [maxpool2, sepconv5(32)]"}


def _job(args: tuple[str, int, int, str]) -> dict:
    name, seed, epochs, config_path = args
    torch.set_num_threads(1)
    config = load(config_path)
    task = O.tasks.get(config.task.dataset, seed=seed, **config.task.options())
    genome = network(name, task.input_shape, task.num_classes)
    t = config.training
    training = O.TrainConfig(epochs=epochs, batch_size=t.batch_size, optimizer=t.optimizer,
                             lr=t.lr, momentum=t.momentum, weight_decay=t.weight_decay,
                             schedule=t.schedule, label_smoothing=t.label_smoothing)
    start = time.perf_counter()
    out = O.train(genome, task, training, until=epochs, seed=seed)
    if out.failed:
        raise RuntimeError(f"{name} seed {seed}: {out.reason}")
    return {"name": name, "seed": seed, "params": genome.num_params(),
            "val": out.state.curve[-1].val_accuracy, "test": O.accuracy(out.model, task.test),
            "best_val_epoch": 1 + max(range(epochs), key=lambda e: out.state.curve[e].val_accuracy),
            "seconds": time.perf_counter() - start}


def _baselines(config, seeds: list[int]) -> dict:
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    rows: dict[str, dict[str, list[float]]] = {}
    for seed in seeds:
        task = O.tasks.get(config.task.dataset, seed=seed, **config.task.options())
        xs = {k: getattr(task, k).x.flatten(1).numpy().astype(np.float64) for k in ("train", "val", "test")}
        ys = {k: getattr(task, k).y.numpy() for k in ("train", "val", "test")}
        for kind in ("raw", "fft"):
            feats = xs if kind == "raw" else {k: np.abs(np.fft.rfft(v, axis=1)) for k, v in xs.items()}
            scaler = StandardScaler().fit(feats["train"])
            model = LogisticRegression(max_iter=3000).fit(scaler.transform(feats["train"]), ys["train"])
            row = rows.setdefault(kind, {"val": [], "test": []})
            for split in ("val", "test"):
                row[split].append(float(model.score(scaler.transform(feats[split]), ys[split])))
    return rows


def _stats(values: list[float]) -> tuple[float, float]:
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", default="0,1,2,3,4", help="run seeds, comma-separated")
    ap.add_argument("--epochs", type=int, default=40)
    ap.add_argument("--workers", type=int, default=2, help="processes, one thread each")
    ap.add_argument("--networks", default="a,a_nopool,b")
    ap.add_argument("--config", default="runs/waveforms.yaml")
    args = ap.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    names = args.networks.split(",")
    started = time.perf_counter()
    config = load(args.config)
    task = O.tasks.get(config.task.dataset, seed=0, **config.task.options())
    space = spaces.get(config.space.kind, input_shape=task.input_shape,
                       num_outputs=task.num_classes, **config.space.options())
    member = {n: not space.why_not(network(n, task.input_shape, task.num_classes)) for n in names}

    jobs = [(n, s, args.epochs, args.config) for s in seeds for n in names]
    with ProcessPoolExecutor(args.workers, mp_context=get_context("spawn")) as pool:
        results = list(pool.map(_job, jobs))
    baselines = _baselines(config, seeds)
    seconds = time.perf_counter() - started

    t = config.training
    print(f"waveforms ({task.num_classes} classes, input {task.input_shape}, train/val/test "
          f"{len(task.train)}/{len(task.val)}/{len(task.test)}), {args.epochs} epochs of "
          f"{t.optimizer} lr {t.lr} {t.schedule}, batch {t.batch_size}; seeds {seeds}")
    figures: dict = {"task": config.task.dataset, "task_options": config.task.options(),
                     "config": args.config, "epochs": args.epochs, "seeds": seeds,
                     "training": {"optimizer": t.optimizer, "lr": t.lr, "momentum": t.momentum,
                                  "weight_decay": t.weight_decay, "schedule": t.schedule,
                                  "batch_size": t.batch_size},
                     "space": config.space.kind, "networks": {}, "baselines": {}}
    for n in names:
        rows = [r for r in results if r["name"] == n]
        test, val = _stats([r["test"] for r in rows]), _stats([r["val"] for r in rows])
        figures["networks"][n] = {
            "description": NAMES[n], "params": rows[0]["params"], "member_of_space": member[n],
            "test_mean": round(test[0], 4), "test_std": round(test[1], 4),
            "val_mean": round(val[0], 4), "val_std": round(val[1], 4),
            "test": [round(r["test"], 4) for r in rows], "min_test": round(min(r["test"] for r in rows), 4),
            "best_val_epoch": [r["best_val_epoch"] for r in rows],
            "seconds_per_training": round(statistics.fmean(r["seconds"] for r in rows), 1)}
        print(f"{NAMES[n]}: {rows[0]['params']:,} params, member of {config.space.kind}: "
              f"{member[n]}; test {test[0]:.2%} ± {test[1]:.2%} (min {min(r['test'] for r in rows):.2%}), "
              f"val {val[0]:.2%} ± {val[1]:.2%}")
    for kind, row in baselines.items():
        test, val = _stats(row["test"]), _stats(row["val"])
        figures["baselines"][f"logistic_{kind}"] = {
            "test_mean": round(test[0], 4), "test_std": round(test[1], 4),
            "val_mean": round(val[0], 4), "val_std": round(val[1], 4)}
        print(f"logistic regression on {'the raw signal' if kind == 'raw' else '|FFT|'}: "
              f"test {test[0]:.2%} ± {test[1]:.2%}, val {val[0]:.2%} ± {val[1]:.2%}")
    nets = figures["networks"]
    if "a" in nets and "b" in nets:
        figures["bar"] = {"below": BAR, "above": BAR,
                          "a_max_test": max(nets["a"]["test"]), "b_min_test": nets["b"]["min_test"],
                          "met": max(nets["a"]["test"]) < BAR < nets["b"]["min_test"]}
        print(f"bar {BAR:.0%}: (a) at most {max(nets['a']['test']):.2%}, (b) at least "
              f"{nets['b']['min_test']:.2%} over the seeds -> {'met' if figures['bar']['met'] else 'NOT met'}")
    figures["seconds"] = round(seconds, 1)
    print(f"{seconds:.0f} s")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
