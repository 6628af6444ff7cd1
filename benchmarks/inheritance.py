"""What Lamarckian inheritance buys on digits: children of trained parents made by one exact
morphism, trained a few epochs from the inherited weights vs the same child from scratch.

For each of N parents (half chain, half multibranch), trained for P epochs: apply one random
exact morphism (deepen, widen, add_skip, widen_kernel, insert_branch); train the child K epochs
from the inherited weights and, separately, from a fresh initialisation (same schedule: SGD 0.05,
cosine), and the inherited child once more at a fifth of the learning rate, since a full
learning rate undoes part of what was inherited; then keep training the scratch child (cosine over H epochs, one epoch at a time) until it reaches the inherited child's
accuracy, or H. Reports the medians side by side. Last line: one JSON object.

    python benchmarks/inheritance.py [--parents 20] [--parent-epochs 8] [--child-epochs 2]
                                     [--horizon 30] [--seed 0]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import numpy as np
import torch

import objectives as O
from genomes import spaces
from operators import NotApplicable, morphisms


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--parents", type=int, default=20)
    ap.add_argument("--parent-epochs", type=int, default=8)
    ap.add_argument("--child-epochs", type=int, default=2)
    ap.add_argument("--horizon", type=int, default=30)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    torch.set_num_threads(1)
    start = time.perf_counter()

    task = O.tasks.get("digits", seed=args.seed)
    rng = np.random.default_rng(args.seed)
    parent_config = O.TrainConfig(epochs=args.parent_epochs)
    child_config = O.TrainConfig(epochs=args.child_epochs)
    gentle_config = O.TrainConfig(epochs=args.child_epochs, lr=child_config.lr / 5)
    long_config = O.TrainConfig(epochs=args.horizon)
    rows = []
    for k in range(args.parents):
        space = spaces.get("chain" if k % 2 == 0 else "multibranch", input_shape=task.input_shape,
                           num_outputs=task.num_classes)
        genome = space.sample(rng)
        parent = O.train(genome, task, parent_config, until=args.parent_epochs, seed=k)
        if parent.failed:
            continue
        for name in rng.permutation(morphisms.names(exact=True)):
            try:
                child = morphisms.apply(str(name), genome, parent.state.model, rng, space=space)
                break
            except NotApplicable:
                continue
        inherited = O.train(child.genome, task, child_config, until=args.child_epochs, seed=k,
                            weights=child.state_dict)
        gentle = O.train(child.genome, task, gentle_config, until=args.child_epochs, seed=k,
                         weights=child.state_dict)
        scratch = O.train(child.genome, task, child_config, until=args.child_epochs, seed=k)
        target = inherited.state.curve[-1].val_accuracy
        state, needed = None, None
        for epoch in range(1, args.horizon + 1):
            step = O.train(child.genome, task, long_config, until=epoch, seed=k, state=state)
            state = step.state
            if state.curve[-1].val_accuracy >= target:
                needed = epoch
                break
        rows.append({
            "morphism": child.provenance.operator,
            "parent": parent.state.curve[-1].val_accuracy,
            "at_inheritance": state_accuracy(child, task),
            "inherited": target,
            "inherited_low_lr": gentle.state.curve[-1].val_accuracy,
            "scratch": scratch.state.curve[-1].val_accuracy,
            "scratch_epochs_to_match": needed,
        })
        print(f"{k:2d} {child.provenance.operator:13s} parent {rows[-1]['parent']:.3f}  "
              f"child at start {rows[-1]['at_inheritance']:.3f}  after {args.child_epochs} epochs: "
              f"inherited {target:.3f} (lr/5: {rows[-1]['inherited_low_lr']:.3f}) vs scratch "
              f"{rows[-1]['scratch']:.3f}  scratch needs "
              f"{needed if needed else f'> {args.horizon}'} epochs")

    med = lambda key: statistics.median(r[key] for r in rows)  # noqa: E731
    needed = [r["scratch_epochs_to_match"] or args.horizon + 1 for r in rows]
    figures = {
        "parents": len(rows), "seed": args.seed, "task": "digits",
        "parent_epochs": args.parent_epochs, "child_epochs": args.child_epochs,
        "median_parent_accuracy": round(med("parent"), 4),
        "median_child_accuracy_at_inheritance": round(med("at_inheritance"), 4),
        "median_inherited_accuracy": round(med("inherited"), 4),
        "median_inherited_accuracy_low_lr": round(med("inherited_low_lr"), 4),
        "median_scratch_accuracy": round(med("scratch"), 4),
        "inherited_minus_scratch": round(med("inherited") - med("scratch"), 4),
        "median_scratch_epochs_to_match": statistics.median(needed),
        "scratch_epochs_over_child_epochs": round(statistics.median(needed) / args.child_epochs, 2),
        "never_matched_within_horizon": sum(r["scratch_epochs_to_match"] is None for r in rows),
        "horizon": args.horizon,
        "morphisms": {m: sum(r["morphism"] == m for r in rows) for m in morphisms.names(exact=True)},
        "seconds": round(time.perf_counter() - start, 1),
    }
    print(f"median accuracy after {args.child_epochs} epochs: inherited {figures['median_inherited_accuracy']}"
          f" vs scratch {figures['median_scratch_accuracy']}; scratch needs a median "
          f"{figures['median_scratch_epochs_to_match']} epochs to match")
    print(json.dumps(figures))


def state_accuracy(child, task) -> float:
    """Accuracy of the child as inherited, before any training (equals its parent's)."""
    net = child.genome.build()
    net.load_state_dict(child.state_dict)
    return O.accuracy(net, task.val)


if __name__ == "__main__":
    main()
