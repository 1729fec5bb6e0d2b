"""Mao et al.'s granularity figure on ResNet-20 / Fashion-MNIST: top-1 vs weight sparsity for each granularity
(element, vector = 1 x k kernel rows, kernel = k x k, filter as masks, N:M), with each one's simulated speed-up
under three zero-skipping models (configs/devices/sparse): an SCNN-like accelerator (Mao et al.), NVIDIA Ampere
sparse tensor cores (2:4 only) and a SIMD-width-aware AVX2 CPU (Scalpel's spirit).

Every conv layer but the stem (1 input channel) is pruned to the same sparsity, groups ranked by L1; the
classifier stays dense. Top-1 is on search-val images after BatchNorm re-estimation on training images (no
fine-tune by default; `--finetune-steps N` adds N SGD steps on the training split with the masks held, then BN is
re-estimated again). N:M has one point, at sparsity 1 - N/M. Uses the shipped ResNet-20 base model.

    .venv/bin/python bench/granularity_curves.py
    .venv/bin/python bench/granularity_curves.py --sparsities 0.5 --limit 200 --bn-images 128   # smoke
    .venv/bin/python bench/granularity_curves.py --finetune-steps 200
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import cast

import torch
from torch import Tensor, nn

from amc.data import iterate_batches, load_dataset
from amc.graph import build_layer_table
from amc.models import create_model
from amc.pruning import LayerDensities, adaptive_bn_, apply_masks_, magnitude_masks, mask_densities, remove_masks_
from amc.pruning.granularity import MASK_GRANULARITIES, NM, MaskPattern
from amc.report.plots import plot_granularity_curves
from amc.training.checkpoints import load_weights
from amc.training.loop import accuracy_on
from amc.training.shipped import shipped_models
from hwmodel import CostModel, create_cost_model

COST_MODELS = (
    "sparse@scnn-mao:systolic:scalesim-32x32",
    "sparse@ampere-sparse-tensor-core:roofline:nvidia-a100",
    "sparse@scalpel-avx2-cpu:roofline:local-cpu",
)


def shipped_checkpoint(model: str, dataset: str) -> Path:
    for shipped in shipped_models():
        if (shipped.model, shipped.dataset) == (model, dataset):
            return shipped.path
    sys.exit(f"no shipped base model for {model} / {dataset}; pass --checkpoint")


def finetune_(model: nn.Module, batches: Iterator[tuple[Tensor, Tensor]], lr: float) -> None:
    """SGD steps with the masks attached (torch.nn.utils.prune keeps the zeros through every step)."""
    model.train()
    optimiser = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, weight_decay=5e-4)
    for images, labels in batches:
        optimiser.zero_grad()
        nn.functional.cross_entropy(model(images), labels).backward()
        optimiser.step()
    model.eval()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="resnet20")
    parser.add_argument("--dataset", default="fashion-mnist")
    parser.add_argument("--checkpoint", type=Path, help="default: the shipped base model")
    parser.add_argument("--sparsities", default="0.3,0.5,0.7,0.8,0.9")
    parser.add_argument("--granularities", default=",".join(MASK_GRANULARITIES))
    parser.add_argument("--nm", default="2,4", help="N,M of the nm granularity")
    parser.add_argument("--bn-images", type=int, default=512, help="training images for BN re-estimation")
    parser.add_argument("--limit", type=int, default=1000, help="search-val images scored per point")
    parser.add_argument("--finetune-steps", type=int, default=0, help="SGD steps (batch 128) with masks held")
    parser.add_argument("--lr", type=float, default=0.01)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--plot", type=Path, default=Path("bench/figures/granularity_curves.png"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    n, m = (int(value) for value in args.nm.split(","))
    patterns = [MaskPattern(name, NM(n, m)) for name in args.granularities.split(",")]
    sparsities = [float(value) for value in args.sparsities.split(",")]

    bundle = load_dataset(args.dataset, search_val_size=5000)
    model = create_model(args.model, in_channels=bundle.input_size[0], num_classes=bundle.num_classes)
    checkpoint = args.checkpoint or shipped_checkpoint(args.model, args.dataset)
    load_weights(model, checkpoint)
    model.eval()
    table = build_layer_table(model, bundle.input_size, args.model)
    convs = [layer.name for layer in table.layers if isinstance(model.get_submodule(layer.name), nn.Conv2d)][1:]
    costs: dict[str, CostModel] = {name: create_cost_model(name).bind(table.specs()) for name in COST_MODELS}
    dense_costs = {name: cost.network_cost(table.specs()) for name, cost in costs.items()}
    dense = accuracy_on(model, bundle.search_val, limit=args.limit).top1
    print(
        f"{args.model} on {bundle.name} ({checkpoint}); {len(convs)} conv layers pruned (stem and classifier dense); "
        f"top-1 after BN re-estimation on {args.bn_images} train images, {args.finetune_steps} fine-tune steps; "
        f"dense top-1 {100 * dense:.2f}% on {args.limit} search-val images\n"
    )
    short = {name: name.split(":")[0].removeprefix("sparse@") for name in COST_MODELS}
    print(
        "| granularity | sparsity | achieved | top-1 | " + " | ".join(f"x {short[n]}" for n in COST_MODELS) + " | s |"
    )
    print("|---|---:|---:|---:|" + "---:|" * len(COST_MODELS) + "---:|")
    accuracy: dict[str, list[tuple[float, float]]] = {}
    speedups: dict[str, dict[str, list[tuple[float, float]]]] = {short[name]: {} for name in COST_MODELS}
    for pattern in patterns:
        label = f"nm {n}:{m}" if pattern.granularity == "nm" else pattern.granularity
        points = [1.0 - pattern.nm.density] if pattern.granularity == "nm" else sparsities
        for sparsity in points:
            start = time.perf_counter()
            pruned = create_model(args.model, in_channels=bundle.input_size[0], num_classes=bundle.num_classes)
            pruned.load_state_dict(model.state_dict())
            layers = [
                name
                for name in convs
                if pattern.granularity != "nm" or pattern.nm.eligible(cast(Tensor, pruned.get_submodule(name).weight))
            ]
            masks = magnitude_masks(pruned, dict.fromkeys(layers, sparsity), pattern=pattern)
            apply_masks_(pruned, masks)
            if args.finetune_steps:
                steps = iterate_batches(bundle.train, 128, shuffle=True, seed=3, limit=128 * args.finetune_steps)
                finetune_(pruned, steps, args.lr)
            remove_masks_(pruned)
            adaptive_bn_(
                pruned, iterate_batches(bundle.train, 128, shuffle=True, seed=2, limit=args.bn_images), args.bn_images
            )
            top1 = accuracy_on(pruned, bundle.search_val, limit=args.limit).top1
            densities = mask_densities(masks, args.model)
            specs = LayerDensities(densities.densities, args.model, pattern).specs(table)
            achieved = 1.0 - sum(s.weight_count * s.weight_density for s in specs) / sum(s.weight_count for s in specs)
            ups = {name: dense_costs[name] / cost.network_cost(specs) for name, cost in costs.items()}
            accuracy.setdefault(label, []).append((achieved, top1))
            for name, value in ups.items():
                speedups[short[name]].setdefault(label, []).append((achieved, value))
            cells = " | ".join(f"{ups[name]:.2f}" for name in COST_MODELS)
            seconds = time.perf_counter() - start
            print(f"| {label} | {sparsity:.2f} | {achieved:.3f} | {100 * top1:.2f}% | {cells} | {seconds:.1f} |")
    plot_granularity_curves(accuracy, speedups, dense, args.plot)
    print(f"\n'achieved': sparsity of all conv/linear weights (stem and classifier dense). Plot: {args.plot}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
