"""Build and forward-pass cost of compiled genomes, per search space, on this CPU.

For each space: sample genomes, then time (median over repeats) building the module, one
forward pass of the generated fx code, and the same pass through torch.fx's node-by-node
Interpreter (what a plain graph walk in Python would cost). Also times the fixed 20-node
genome of the foundation issue's bar. Last line: one JSON object with the figures.

    python benchmarks/build_forward.py [--genomes 20] [--batch 64] [--repeats 15] [--seed 0]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import numpy as np
import torch
from torch import fx

from genomes import Genome, spaces


def median_ms(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3


def twenty_node_genome() -> Genome:
    g = Genome((1, 8, 8), 10)
    x = g.add("input", id="input")
    x = g.add("act", [g.add("batchnorm", [g.add("conv", [x], channels=32, kernel=3)])])
    skip = x
    for _ in range(3):
        x = g.add("act", [g.add("batchnorm", [g.add("conv", [x], channels=32, kernel=3)])])
    x = g.add("identity", [x, skip], merge="add")
    x = g.add("maxpool", [x], kernel=2)
    x = g.add("act", [g.add("sepconv", [x], channels=64, kernel=3)])
    x = g.add("dense", [g.add("globalpool", [x])], units=10)
    g.add("output", [x], id="output")
    return g


def measure(genome: Genome, batch: int, repeats: int) -> dict:
    x = torch.randn((batch, *genome.input_shape))
    net = genome.build().eval()
    interp = fx.Interpreter(net)
    with torch.no_grad():
        build = median_ms(genome.build, repeats)
        forward = median_ms(lambda: net(x), repeats)
        walk = median_ms(lambda: interp.run(x), repeats)
        both = median_ms(lambda: genome.build().eval()(x), repeats)
    return {"nodes": len(genome), "build_ms": build, "forward_ms": forward,
            "interpreted_ms": walk, "build_forward_ms": both}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--genomes", type=int, default=20)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    torch.set_num_threads(1)

    results = {"torch": torch.__version__, "threads": 1, "batch": args.batch,
               "genomes_per_space": args.genomes, "seed": args.seed}
    fixed = measure(twenty_node_genome(), args.batch, args.repeats)
    results["twenty_node"] = {k: round(v, 3) for k, v in fixed.items()}
    print(f"20-node genome: build+forward {fixed['build_forward_ms']:.1f} ms "
          f"(build {fixed['build_ms']:.1f}, forward {fixed['forward_ms']:.1f})")
    for name in spaces.names():
        shape = (3, 32, 32) if name == "nb201" else (1, 8, 8)
        space = spaces.get(name, input_shape=shape, num_outputs=10)
        rng = np.random.default_rng(args.seed)
        rows = [measure(space.sample(rng), args.batch, args.repeats)
                for _ in range(args.genomes if name != "nb201" else max(3, args.genomes // 5))]
        summary = {k: round(statistics.median(r[k] for r in rows), 3) for k in rows[0]}
        summary["interpreted_over_compiled"] = round(
            statistics.median(r["interpreted_ms"] / r["forward_ms"] for r in rows), 3)
        summary["build_over_forward"] = round(
            statistics.median(r["build_ms"] / r["forward_ms"] for r in rows), 3)
        results[name] = summary
        print(f"{name:12s} nodes {summary['nodes']:>5.0f}  build {summary['build_ms']:6.2f} ms  "
              f"forward {summary['forward_ms']:6.2f} ms  interpreted/compiled "
              f"{summary['interpreted_over_compiled']:.2f}x")
    print(json.dumps(results))


if __name__ == "__main__":
    main()
