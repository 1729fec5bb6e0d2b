"""Lottery tickets on ResNet-20 / Fashion-MNIST: winning ticket (IMP, rewound to epoch k) vs the same mask on a
random re-initialisation vs the dense network, at each sparsity (Frankle & Carbin 2019, Frankle et al. 2020).

amc.lottery.run_lottery, as `amc lottery` runs it: the zoo's ResNet-20 from its seeded random initialisation, SGD
(lr 0.1, cosine), global magnitude pruning of every conv and linear weight. Sized for a loaded 2-core machine at
one thread: R rounds of rate p, E epochs of at most --max-steps batches of 128, rewind to epoch k (rewinding to
the initialisation fails on ResNet-20 at this LR, Frankle et al. 2020, so k = 1 by default). Prints the table
and writes OUT (the run folder) and bench/figures/lottery.png.

    .venv/bin/python bench/lottery.py                                        # R 5, p 0.5, E 2, k 1, 100 steps
    .venv/bin/python bench/lottery.py --rounds 1 --max-steps 5 --test-images 500 --out /tmp/lottery  # smoke
"""

from __future__ import annotations

import argparse
import shutil
import time
from pathlib import Path

import torch

from amc.config import load_config
from amc.lottery import LotterySettings, run_lottery
from amc.training.base_model import build_model, load_data
from amc.training.loop import TrainSettings

FIGURE = Path(__file__).parent / "figures" / "lottery.png"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--rate", type=float, default=0.5)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--rewind-epoch", type=int, default=1)
    parser.add_argument("--max-steps", type=int, default=100, help="batches of 128 per epoch")
    parser.add_argument("--test-images", type=int, help="test images per score (default: all 10,000)")
    parser.add_argument("--val-images", type=int, default=2000, help="search-val images per score")
    parser.add_argument("--lr", type=float, default=0.1)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--resume", action="store_true")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "lottery")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    config = load_config(None, {"model.name": "resnet20", "data.dataset": "fashion-mnist"})
    bundle = load_data(config)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.train.seed)
        model = build_model(config, bundle)
    train = TrainSettings(args.epochs, 128, "sgd", args.lr, 5e-4, augment=False, seed=config.train.seed)
    settings = LotterySettings(args.rounds, args.rate, args.rewind_epoch, args.epochs, True, args.max_steps,
                               args.test_images, args.val_images)  # fmt: skip
    print(f"resnet20 / fashion-mnist: {args.rounds} rounds of {args.rate:.0%}, E {args.epochs} epochs of "
          f"{args.max_steps} steps x 128, rewind to epoch {args.rewind_epoch}, lr {args.lr}, test images "
          f"{args.test_images or 'all'}, {args.threads} thread(s) -> {args.out}", flush=True)  # fmt: skip
    begin = time.perf_counter()
    result = run_lottery(model, bundle, train, settings, args.out, resume=args.resume,
                         log=lambda text: print(text, flush=True))  # fmt: skip
    print(f"\n{time.perf_counter() - begin:.0f} s (loaded)\n")
    print("| round | weights remaining | sparsity | ticket test top-1 | random reinit test top-1 | dense test top-1 |"
          " ticket search-val | reinit search-val |")  # fmt: skip
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    for row in result.rows:
        reinit = "—" if row.test_top1_reinit is None else f"{100 * row.test_top1_reinit:.2f}%"
        reinit_val = "—" if row.val_top1_reinit is None else f"{100 * row.val_top1_reinit:.2f}%"
        print(f"| {row.round} | {100 * (1 - row.sparsity):.2f}% | {100 * row.sparsity:.2f}% | "
              f"{100 * row.test_top1_ticket:.2f}% | {reinit} | {100 * row.test_top1_dense:.2f}% | "
              f"{100 * row.val_top1_ticket:.2f}% | {reinit_val} |")  # fmt: skip
    FIGURE.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(args.out / "lottery.png", FIGURE)
    print(f"\nwrote {args.out / 'lottery.csv'}, {FIGURE}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
