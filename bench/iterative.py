"""One-shot vs iterative pruning (`search.stages`) at an aggressive budget: ResNet-20 / Fashion-MNIST (the shipped
base model), 25% of the dense MACs, random search (same episodes in all), the same fine-tuning in all.

    .venv/bin/python bench/iterative.py --arms 1 2 [--episodes 40 --epochs 3 --steps 100 --out /tmp/bench_iterative]

An arm with K stages runs --episodes / K random episodes per stage, fine-tunes 1 epoch between stages (the
`finetune:` section, on the training split) and the rest of --epochs after the last stage: the one-shot arm
(K = 1) fine-tunes all --epochs after its one search. An "epoch" here is --steps optimiser steps of batch 128
(the bench patches the stages' fine-tuning to that many steps so it fits on a loaded machine). Prints per arm:
search-val top-1 (5,000 held-out training images; before and after the final fine-tune), test top-1 (10,000),
MACs share of dense and wall time (loaded: not a speed figure). Each arm runs in <out>/k<K>/ (resumed if there).
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import functools
import json
import time
from pathlib import Path

import torch

import amc.search.stages as stages
from amc.config import load_config
from amc.deliver.evaluate import finetune_settings
from amc.graph import build_layer_table
from amc.problem import build_task
from amc.pruning import Strategy
from amc.pruning.export import load_thinned
from amc.search.methods import run_search
from amc.training.loop import TrainHooks, accuracy_on, train

CONFIG = Path(__file__).parent.parent / "configs" / "methods" / "random.yaml"


def run_arm(k: int, episodes: int, epochs: int, steps: int, out: Path) -> dict[str, float | int]:
    overrides = {
        "experiment.threads": 1, "cost.model": "macs", "budget.ratio": 0.25, "search.method": "random",
        "search.episodes": episodes // k, "search.stages": k, "finetune.epochs": 1, "search.verify_top": 0,
        "experiment.name": f"bench-iterative-k{k}",
    }  # fmt: skip
    config = load_config(CONFIG, overrides)
    torch.set_num_threads(1)
    tick = time.perf_counter()
    task = build_task(config, progress=False)
    hooks = TrainHooks(max_steps_per_epoch=steps)
    stages.train = functools.partial(train, hooks=hooks)  # type: ignore[assignment]  # bench-sized epochs
    folder = out / f"k{k}"
    result = run_search(task, folder, resume=folder.is_dir(), progress=False, log=print)
    if k == 1:
        assert isinstance(result.best, Strategy)
        network = task.problem.apply(result.best.kept_channels(task.problem.table))
    else:
        network = load_thinned(folder / "final")
    problem, bundle = task.problem, task.data
    assert bundle is not None
    before = problem.scorer(network)  # adaptive BN, as every stage scores
    remaining = epochs - (k - 1)
    settings = dataclasses.replace(finetune_settings(task), epochs=remaining)
    train(network, bundle.train, bundle.search_val, settings, progress=False, log=print, hooks=hooks)
    test = accuracy_on(network, bundle.test, config.data.batch_size).top1
    after = problem.scorer(copy.deepcopy(network))
    table = build_layer_table(network, task.input_size, config.model.name)
    cost = problem.cost_model.network_cost(table.specs())
    row = {
        "stages": k, "episodes": result.episodes, "finetune_epochs_total": remaining + (k - 1),
        "steps_per_epoch": steps, "cost_share": cost / problem.dense_cost, "search_val_before_ft": before,
        "search_val_after_ft": after, "test_top1": test, "dense_search_val": result.dense_accuracy,
        "wall_s_loaded": time.perf_counter() - tick,
    }  # fmt: skip
    print(json.dumps(row), flush=True)
    return row


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--arms", type=int, nargs="+", default=[1, 2], help="stage counts K to compare (1: one-shot)")
    parser.add_argument("--episodes", type=int, default=40, help="random episodes per arm in all (split over stages)")
    parser.add_argument("--epochs", type=int, default=3, help="fine-tuning epochs per arm in all")
    parser.add_argument("--steps", type=int, default=100, help="optimiser steps per fine-tuning epoch")
    parser.add_argument("--out", type=Path, default=Path("/tmp/bench_iterative"))
    args = parser.parse_args()
    rows = [run_arm(k, args.episodes, args.epochs, args.steps, args.out) for k in args.arms]
    sizes = f"{args.episodes} episodes and {args.epochs} fine-tuning epochs of {args.steps} steps per arm"
    print(f"\nResNet-20 / Fashion-MNIST, 25% of dense MACs (cost.model macs), random search, {sizes}, 1 thread, loaded")
    print("| stages | MACs of dense | search-val before / after final FT | test top-1 | wall (loaded) |")
    print("| --- | --- | --- | --- | --- |")
    for row in rows:
        print(f"| {row['stages']} | {100 * row['cost_share']:.1f}% | {100 * row['search_val_before_ft']:.2f}% / "
              f"{100 * row['search_val_after_ft']:.2f}% | {100 * row['test_top1']:.2f}% | "
              f"{row['wall_s_loaded'] / 60:.1f} min |")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
