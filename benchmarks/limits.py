"""How long operators take where they must give up, and on wide flat tensors (the timings that
``tests/operators/test_limits.py`` used to assert; the tests now count work instead).

    python benchmarks/limits.py [--repeats 15] [--seed 0]

- refusal: every one-parent operator on a fixed ``nb201`` genome (raises NotApplicable at once);
- widen behind a flatten of 32 x 28 x 28 = 25,088 features (maps hold one entry per feature);
- deepen behind a flatten of 16 x 20 x 20 = 6,400 features (no 41M-weight identity layer);
- the same widen at 256 and 2,304 features, as seconds and as lines of operator code run.

Medians over ``repeats``, 1 torch thread. Last line: one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

import numpy as np
import torch

import operators
from genomes import Genome, spaces
from operators import NotApplicable, morphisms

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import build_forward  # noqa: E402  (a sibling script: its median timer)


def flatten_head(channels: int, side: int) -> Genome:
    g = Genome((1, side, side), 3)
    x = g.add("conv", [g.add("input", id="input")], id="c", channels=channels, kernel=3)
    x = g.add("flatten", [g.add("act", [x])], id="f")
    g.add("output", [g.add("dense", [x], id="d", units=3)], id="output")
    return g


def trained_looking(genome: Genome, seed: int) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    state = genome.build(seed=seed, dtype=torch.float64).state_dict()
    return {k: torch.randn(v.shape, generator=gen, dtype=v.dtype) * 0.5 if v.is_floating_point() else v
            for k, v in state.items()}


def median_ms(fn, repeats: int) -> float:
    return round(build_forward.median_ms(fn, repeats), 3)


def operator_lines(fn) -> int:
    root = os.path.dirname(operators.__file__) + os.sep
    count = 0

    def local(frame, event, arg):
        nonlocal count
        if event == "line":
            count += 1
        return local

    sys.settrace(lambda frame, event, arg: local if frame.f_code.co_filename.startswith(root) else None)
    try:
        fn()
    finally:
        sys.settrace(None)
    return count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(1)
    results: dict = {"torch": torch.__version__, "threads": 1, "repeats": args.repeats, "seed": args.seed}

    space = spaces.get("nb201", input_shape=(3, 32, 32), num_outputs=10)
    genome = space.sample(np.random.default_rng(args.seed))
    state = genome.build().state_dict()
    refusal = {}
    for name in operators.names():
        operator = operators.get(name)
        if operator.arity != 1:
            continue

        def refuse() -> None:
            try:
                operator.make([(genome, state)], np.random.default_rng(args.seed), space=space)
            except NotApplicable:
                return
            raise AssertionError(f"{name} did not refuse a fixed space")

        refusal[name] = median_ms(refuse, args.repeats)
    results["refusal_ms"] = refusal
    print("refusal on nb201, ms: " + ", ".join(f"{k} {v:.3f}" for k, v in refusal.items()))

    def apply(name: str, channels: int, side: int, chain: bool = False):
        g = flatten_head(channels, side)
        st = trained_looking(g, args.seed)
        where = spaces.get("chain", input_shape=(1, side, side), num_outputs=3) if chain else None
        return lambda: morphisms.apply(name, g, st, np.random.default_rng(args.seed), space=where)

    repeats = max(3, args.repeats // 3)
    results["widen_25088_ms"] = median_ms(apply("widen", 32, 28), repeats)
    results["deepen_6400_ms"] = median_ms(apply("deepen", 16, 20, chain=True), repeats)
    print(f"widen behind 25,088 flat features: {results['widen_25088_ms']:.1f} ms; "
          f"deepen behind 6,400: {results['deepen_6400_ms']:.1f} ms")
    scaling = {}
    for side in (8, 24):
        features = 4 * side * side
        scaling[features] = {"ms": median_ms(apply("widen", 4, side), args.repeats),
                             "operator_lines": operator_lines(apply("widen", 4, side))}
    results["widen_scaling"] = scaling
    print("widen, flat features -> ms, lines: " + "; ".join(
        f"{k}: {v['ms']:.2f} ms, {v['operator_lines']} lines" for k, v in scaling.items()))
    print(json.dumps(results))


if __name__ == "__main__":
    main()
