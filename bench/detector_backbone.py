"""Pruning the backbone of torchvision detectors through the Python API, with a user's evaluate callback.

For each detector (built with `weights=None, weights_backbone=None`: nothing is downloaded; random weights):
`amc.prepare(detector, ..., evaluate, backbone="backbone.body")`, a short search, `amc.apply`, then
`amc.save_detector` / `amc.load_detector`. Prints the coupling groups (prunable in the backbone, fixed outside it),
the FPN lateral convs' input channels, the backbone's MACs (and the traced part's: backbone + FPN) before and
after, the thinned detector's parameters, whether it detects (eval mode, a list of images) and the wall times.

THE EVALUATE CALLBACK IS A TOY: synthetic images (uniform noise) and a score of 1 - the mean change of the
detections' scores against the dense detector. It exercises the API path only; no dataset is shipped and its
figures say nothing about detection accuracy. A real user passes e.g. mAP on their own held-out images.

    .venv/bin/python bench/detector_backbone.py 2>&1 | tee bench/logs/detector_backbone.log
    .venv/bin/python bench/detector_backbone.py --models fasterrcnn_mobilenet_v3_large_fpn --episodes 2   # smoke
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import cast

import torch
import torchvision
from torch import nn

import amc
from amc.graph.detector import DetectorView, backbone_macs, check_detector


def mean_score(found: dict[str, torch.Tensor]) -> float:
    return float(found["scores"].mean()) if len(found["scores"]) else 0.0


def toy_evaluate(detector: nn.Module, images: list[torch.Tensor]) -> Callable[[nn.Module], float]:
    """A TOY score: 1 - mean |change| of the mean detection score per image vs `detector` (dense) on `images`."""
    with torch.no_grad():
        dense = [mean_score(found) for found in detector(images)]

    def evaluate(model: nn.Module) -> float:
        with torch.no_grad():
            scores = [mean_score(found) for found in model(images)]
        change = sum(abs(a - b) for a, b in zip(scores, dense)) / len(dense)
        return max(0.0, 1.0 - change)

    return evaluate


def run(name: str, size: int, images: int, method: str, episodes: int, budget: float, out: Path) -> None:
    builder = getattr(torchvision.models.detection, name)
    torch.manual_seed(0)
    every_box = {"score_thresh": 0.0} if name.startswith("retinanet") else {"box_score_thresh": 0.0}
    detector = builder(weights=None, weights_backbone=None, min_size=size, max_size=size, **every_box).eval()
    generator = torch.Generator().manual_seed(0)
    pictures = [torch.rand(3, size, size, generator=generator) for _ in range(images)]
    shape = (3, size, size)
    print(f"== {name}  images {images} x 3x{size}x{size}  method {method}  episodes {episodes}  budget {budget}")
    start = time.perf_counter()
    task = amc.prepare(
        detector, shape, toy_evaluate(detector, pictures), backbone="backbone.body", method=method, budget=budget,
        settings={"search.episodes": episodes}, model_name=name, log=lambda _: None,
    )  # fmt: skip
    prepared = time.perf_counter() - start
    table = task.problem.table
    view = cast(DetectorView, task.problem.model)
    fixed = [group for group in table.groups if not group.prunable]
    print(f"groups: {len(table.prunable_groups)} prunable (all in backbone.body), {len(fixed)} fixed:")
    for group in fixed:
        print(f"  fixed {'+'.join(group.layers)}: {group.reason}")
    start = time.perf_counter()
    result = amc.search_strategy(task, out / name / "run", progress=False, log=lambda _: None)
    searched = time.perf_counter() - start
    best = result.best
    kept = best.kept_channels(table)
    start = time.perf_counter()
    pruned = cast(DetectorView, amc.apply(task, best))
    found = check_detector(pruned.detector, shape, images)
    applied = time.perf_counter() - start
    start = time.perf_counter()
    folder = amc.save_detector(pruned, out / name / "final", best)
    back = amc.load_detector(detector, folder)
    with torch.no_grad():
        same = all(torch.equal(a["boxes"], b["boxes"]) for a, b in zip(back(pictures), pruned.detector(pictures)))
    saved = time.perf_counter() - start
    dense_body, thin_body = backbone_macs(table, view), backbone_macs(table, view, kept)
    dense_traced = table.total_macs
    thin_traced = sum(spec.macs for spec in table.specs(kept))
    print(f"backbone MACs {dense_body / 1e6:.1f} M -> {thin_body / 1e6:.1f} M ({thin_body / dense_body:.3f})")
    print(
        f"traced MACs (backbone + FPN) {dense_traced / 1e6:.1f} M -> {thin_traced / 1e6:.1f} M "
        f"({thin_traced / dense_traced:.3f}); budget {budget} of it"
    )
    laterals = [
        f"{dense[0].in_channels}->{thin[0].in_channels}"
        for dense, thin in zip(detector.backbone.fpn.inner_blocks, pruned.detector.backbone.fpn.inner_blocks)
    ]
    print(f"FPN lateral 1x1 convs, input channels: {', '.join(laterals)} (outputs stay 256)")
    params = sum(p.numel() for p in detector.parameters()), sum(p.numel() for p in pruned.detector.parameters())
    print(f"detector params {params[0] / 1e6:.2f} M -> {params[1] / 1e6:.2f} M")
    counts = [len(f["boxes"]) for f in found]
    print(f"thinned detector forward (eval, list of {images} images): ok, detections per image {counts}")
    print(f"toy evaluate score of best: {best.metadata.accuracy:.4f} (a toy, see the docstring)")
    print(f"saved {sorted(p.name for p in folder.iterdir())}; reloaded detector gives the same boxes: {same}")
    print(
        f"wall (loaded machine): prepare {prepared:.1f} s, search {searched:.1f} s ({episodes} episodes), "
        f"apply + check {applied:.1f} s, save + load {saved:.1f} s"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=["fasterrcnn_mobilenet_v3_large_fpn", "retinanet_resnet50_fpn"])
    parser.add_argument("--size", type=int, default=128, help="image side; the detectors' min_size = max_size")
    parser.add_argument("--images", type=int, default=2)
    parser.add_argument("--method", default="random")
    parser.add_argument("--episodes", type=int, default=3)
    parser.add_argument("--budget", type=float, default=0.5)
    parser.add_argument("--out", type=Path, default=None, help="default: a temporary folder")
    args = parser.parse_args()
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as scratch:
        out = args.out or Path(scratch)
        for name in args.models:
            run(name, args.size, args.images, args.method, args.episodes, args.budget, out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
