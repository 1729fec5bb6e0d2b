"""Does channels-last (amc/models/layout.py, used for every search-time forward) pay off on the shapes users have?

    .venv/bin/python bench/layout_speed.py [--threads 2] [--repeats 15]

For each model and input shape: the median wall time of one eval-mode forward (torch.inference_mode) with NCHW
weights and with channels-last weights, after warm-up, on random weights and inputs. Prints one row per case and
the speed-up (NCHW / channels-last; above 1 means channels-last is faster). Take it on an idle machine.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time

import torch

from amc.models import create_model
from amc.models.layout import use_fast_layout_

CASES = [
    ("resnet20", (1, 28, 28), 256),
    ("resnet20", (3, 32, 32), 256),
    ("resnet56", (3, 32, 32), 256),
    ("mobilenetv2", (3, 32, 32), 128),
    ("vgg16_bn", (3, 32, 32), 128),
    ("torchvision:resnet18", (3, 224, 224), 16),
    ("torchvision:mobilenet_v2", (3, 224, 224), 16),
]


def median_forward_s(model: torch.nn.Module, images: torch.Tensor, repeats: int) -> float:
    with torch.inference_mode():
        for _ in range(3):
            model(images)
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            model(images)
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    print(f"torch {torch.__version__}, {args.threads} threads, median of {args.repeats} forwards (eval mode)")
    print(f"{'model':26s} {'input':>10s} {'batch':>5s} {'NCHW ms':>9s} {'ch-last ms':>10s} {'speed-up':>8s}")
    for name, shape, batch in CASES:
        model = create_model(name, in_channels=shape[0], num_classes=10).eval()
        fast = use_fast_layout_(copy.deepcopy(model))
        images = torch.randn(batch, *shape)
        nchw = median_forward_s(model, images, args.repeats)
        last = median_forward_s(fast, images, args.repeats)
        size = "x".join(map(str, shape))
        print(f"{name:26s} {size:>10s} {batch:5d} {1e3 * nchw:9.1f} {1e3 * last:10.1f} {nchw / last:7.2f}x", flush=True)


if __name__ == "__main__":
    main()
