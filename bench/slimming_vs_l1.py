"""Network slimming vs L1 filter pruning, ResNet-20 / Fashion-MNIST, both at 50% of the dense MACs.

Three pruned networks, each fine-tuned the same epochs (finetune: section, lr 0.01) and tested on the test set:
  slimming         a base trained from scratch with train.slimming_l1 (as `amc train`, same epochs and settings
                   as the shipped base otherwise), pruned by `search.method: slimming` (one global |gamma|
                   threshold, bn_scale selection);
  L1 (uniform)     the shipped base, `search.method: uniform` with `search.selection: l1` (one keep ratio for
                   every group, channels of largest filter L1 norm);
  slimming, plain  the shipped base pruned by `slimming` (no L1 training): what the threshold alone does.
Prints each base's test top-1, each pruned network's test top-1 right after pruning (no BN re-estimation, no
fine-tune) and after fine-tuning, its MACs, and the per-group keep ratios slimming chose. The slimmed base is
cached like any `amc train` result (apart from the plain one), so a rerun skips its training.

    .venv/bin/python bench/slimming_vs_l1.py --threads 1                    # l1 0.005, 3 base epochs, 1 fine-tune
    .venv/bin/python bench/slimming_vs_l1.py --finetune-epochs 1 --max-steps 5 --test-images 500   # smoke
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import torch

from amc.config import load_config
from amc.deliver.evaluate import finetune_settings
from amc.problem import build_task
from amc.pruning import Strategy
from amc.search.baselines.common import channel_problem
from amc.search.methods import run_search
from amc.training.loop import TrainHooks, accuracy_on, train

BASE = {"model.name": "resnet20", "data.dataset": "fashion-mnist", "cost.model": "macs", "budget.ratio": 0.5}
SLIMMING = {"search.method": "slimming", "search.selection": "bn_scale"}
RUNS = {
    "slimming": SLIMMING,
    "L1 (uniform)": {"search.method": "uniform", "search.selection": "l1"},
    "slimming, plain base": SLIMMING,
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--l1", type=float, default=0.005, help="train.slimming_l1 of the slimmed base")
    parser.add_argument("--base-epochs", type=int, default=3, help="epochs of the slimmed base (the shipped: 3)")
    parser.add_argument("--finetune-epochs", type=int, default=1)
    parser.add_argument("--max-steps", type=int, help="fine-tune batches per epoch (default: the whole split)")
    parser.add_argument("--test-images", type=int, help="test images scored (default: all 10,000)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, help="run folders (default: a temporary folder)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    out = args.out or Path(tempfile.mkdtemp(prefix="slimming_vs_l1_"))
    common = {**BASE, "experiment.threads": args.threads}
    slim_train = {"train.slimming_l1": args.l1, "train.epochs": args.base_epochs}
    print(
        f"ResNet-20 / Fashion-MNIST, 50% of dense MACs; slimmed base: train.slimming_l1={args.l1}, "
        f"{args.base_epochs} epochs from scratch; fine-tune {args.finetune_epochs} epoch(s)"
        f"{f' of {args.max_steps} steps' if args.max_steps else ''}; {args.threads} thread(s); out {out}",
        flush=True,
    )
    rows = []
    for label, overrides in RUNS.items():
        extra = slim_train if label == "slimming" else {}
        config = load_config(None, {**common, **overrides, **extra, "experiment.name": label})
        tick = time.perf_counter()
        log = prefixed(label)
        task = build_task(config, progress=False, log=log)
        problem = channel_problem(task)
        bundle = task.data
        assert bundle is not None
        dense = accuracy_on(problem.model, bundle.test, limit=args.test_images).top1
        run = out / label.replace(" ", "_").replace(",", "").replace("(", "").replace(")", "")
        run_search(task, run, progress=False, log=log)
        strategy = Strategy.load(run / "best_strategy.json")
        decisions = problem.decisions_of(strategy)
        pruned = problem.apply(decisions)
        after_prune = accuracy_on(pruned, bundle.test, limit=args.test_images).top1
        settings = replace(finetune_settings(task), epochs=args.finetune_epochs)
        hooks = TrainHooks(max_steps_per_epoch=args.max_steps)
        train(pruned, bundle.train, bundle.search_val, settings, progress=False, val_images=1000, hooks=hooks, log=log)
        tuned = accuracy_on(pruned, bundle.test, limit=args.test_images).top1
        ratios = problem.keep_ratios(decisions)
        rows.append((label, dense, problem.cost(decisions) / problem.dense_cost, after_prune, tuned))
        print(f"  [{label}] keep ratios per group ({len(ratios)} groups, leader: ratio):", flush=True)
        for name, ratio in zip(problem.names, ratios):
            print(f"  [{label}]   {name}: {ratio:.3f}")
        print(f"  [{label}] done in {time.perf_counter() - tick:.0f} s (taken loaded)", flush=True)
    print("\n| method | base test top-1 | MACs (of dense) | test top-1 after pruning | after fine-tune |")
    print("|---|---:|---:|---:|---:|")
    for label, dense, macs, after_prune, tuned in rows:
        print(f"| {label} | {100 * dense:.2f}% | {macs:.3f} | {100 * after_prune:.2f}% | {100 * tuned:.2f}% |")
    return 0


def prefixed(label: str) -> Callable[[str], None]:
    """A log that prints each line under the run's label."""
    return lambda line: print(f"  [{label}] {line}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
