"""Search-val accuracy of ResNet-20 / Fashion-MNIST at uniform keep 0.5: L1 vs least squares, +/- adaptive BN.

No fine-tuning anywhere: this is what a search sees per episode. Uses the cached `amc train` checkpoint
(train it first: `amc train --model resnet20 --dataset fashion-mnist`), calibration images from the TRAIN split
(never search-val), and reports top-1 on search-val, the seconds each variant took, and the least-squares
seconds per refit layer (with the two calibration forward passes, and for sampling + solving alone).

    .venv/bin/python bench/prune_accuracy.py
    .venv/bin/python bench/prune_accuracy.py --keep 0.75 --bn-images 1024 --limit 1000
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

from amc.data import iterate_batches, load_dataset
from amc.graph import build_layer_table
from amc.models import create_model
from amc.pruning import LeastSquares, NormSelector, Strategy, adaptive_bn_, thin_with_report
from amc.training.checkpoints import base_checkpoint_path, load_weights
from amc.training.loop import accuracy_on


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="resnet20")
    parser.add_argument("--dataset", default="fashion-mnist")
    parser.add_argument("--checkpoint", type=Path, help="default: the cached `amc train` checkpoint (seed 0)")
    parser.add_argument("--search-val-size", type=int, default=5000, help="as in the experiment config (5000)")
    parser.add_argument("--keep", type=float, default=0.5)
    parser.add_argument("--bn-images", type=int, default=512, help="training images for adaptive BN")
    parser.add_argument("--lstsq-images", type=int, default=256, help="training images for the least-squares refit")
    parser.add_argument("--points", type=int, default=4096, help="sampled output positions per refit layer")
    parser.add_argument("--limit", type=int, help="search-val images to score (default: all)")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    checkpoint = args.checkpoint or base_checkpoint_path(args.model, args.dataset)
    bundle = load_dataset(args.dataset, search_val_size=args.search_val_size)
    model = create_model(args.model, in_channels=bundle.input_size[0], num_classes=bundle.num_classes)
    load_weights(model, checkpoint)
    model.eval()
    table = build_layer_table(model, bundle.input_size, args.model)
    kept = Strategy.uniform(table, args.keep).kept_channels(table)
    after = table.specs(kept)
    print(
        f"{args.model} on {bundle.name} ({checkpoint}); uniform keep {args.keep}: MACs {table.total_macs / 1e6:.1f} M "
        f"-> {sum(s.macs for s in after) / 1e6:.1f} M; {args.threads} threads"
    )
    base = accuracy_on(model, bundle.search_val, limit=args.limit)
    print(f"unpruned: top-1 {100 * base.top1:.2f}% on {base.images} search-val images\n")

    def calibration(count: int, seed: int):
        return iterate_batches(bundle.train, 128, shuffle=True, seed=seed, limit=count)

    selectors = {
        "L1": "l1",
        "least squares": LeastSquares(NormSelector(1), points=args.points, images=args.lstsq_images),
    }
    print("| selection | adaptive BN | search-val top-1 | seconds | refit s/layer: total / solve only |")
    print("|---|---|---:|---:|---:|")
    for label, selection in selectors.items():
        for use_bn in (False, True):
            start = time.perf_counter()
            result = thin_with_report(model, table, kept, selection=selection, calibration=calibration(10**9, 1))
            pruned = result.model
            if use_bn:
                adaptive_bn_(pruned, calibration(args.bn_images, 2), args.bn_images)
            seconds = time.perf_counter() - start
            score = accuracy_on(pruned, bundle.search_val, limit=args.limit)
            report = result.reconstruction
            per_layer = (
                f"{report.seconds_per_layer:.3f} / {report.fit_seconds_per_layer:.3f} ({len(report.layers)} layers)"
                if report
                else "-"
            )
            bn = f"yes ({args.bn_images} images)" if use_bn else "no"
            print(f"| {label} | {bn} | {100 * score.top1:.2f}% | {seconds:.1f} | {per_layer} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
