"""Uniform keep 0.5 on every model the pruning engine must handle: correct network, fewer MACs, real speed.

For each model (at its own input size: 32x32 for the zoo, 224x224 for torchvision): thin with L1 selection,
check the forward pass and that the thinned network's layer table equals the prediction, then print MACs and
params before/after and the batch-1 CPU latency of both in PyTorch eager mode, timed side by side the way every
amc timing compares networks (`measure_networks`: `--repeats` runs in 5 interleaved passes, each network's
calmest pass), so a drift of a shared machine's speed favours neither. Also times `thin` itself (the search
calls it once per episode).

    .venv/bin/python bench/prune_zoo.py                 # all 13 models, 1 thread
    .venv/bin/python bench/prune_zoo.py --threads 2 --models resnet20 torchvision:resnet50
"""

from __future__ import annotations

import argparse
import sys
import time

import torch

from amc.graph import build_layer_table
from amc.models import create_model, model_info
from amc.pruning import Strategy, thin
from hwmodel.lut.backends import TorchBackend

MODELS = [
    "resnet20",
    "resnet56",
    "plain20",
    "vgg16_bn",
    "mobilenetv2",
    "torchvision:resnet18",
    "torchvision:resnet50",
    "torchvision:mobilenet_v2",
    "torchvision:mobilenet_v3_small",
    "torchvision:densenet121",
    "torchvision:efficientnet_b0",
    "torchvision:regnet_x_400mf",
    "torchvision:shufflenet_v2_x1_0",
]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=MODELS)
    parser.add_argument("--keep", type=float, default=0.5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=50, help="timed passes per model (split into 5 rounds)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    print(f"uniform keep {args.keep}, L1 selection, batch 1, {args.threads} thread(s), torch {torch.__version__}")
    print(
        "| model | input | forward | MACs before | MACs after | params before | params after | "
        "latency before (ms) | latency after (ms) | speedup | thin (s) |"
    )
    print("|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    failures = 0
    backend = TorchBackend(args.threads, warmup=3, repeats=args.repeats)
    for name in args.models:
        size = model_info(name).input_size
        model = create_model(name).eval()
        table = build_layer_table(model, size, name)
        kept = Strategy.uniform(table, args.keep).kept_channels(table)
        start = time.perf_counter()
        thinned = thin(model, table, kept).eval()
        thin_seconds = time.perf_counter() - start
        after = build_layer_table(thinned, size, name)
        example = torch.randn(1, *size)
        with torch.inference_mode():
            shape_ok = thinned(example).shape == model(example).shape
        specs_ok = [layer.spec for layer in after.layers] == table.specs(kept)
        status = "OK" if shape_ok and specs_ok else "WRONG"
        failures += status != "OK"
        timed = backend.measure_networks([model, thinned], (1, *size), rounds=5)
        before_ms, after_ms = (m.median_ms for m in timed)
        print(
            f"| {name} | {'x'.join(map(str, size))} | {status} | {table.total_macs / 1e6:.1f} M | "
            f"{after.total_macs / 1e6:.1f} M | {table.total_params / 1e6:.3f} M | {after.total_params / 1e6:.3f} M | "
            f"{before_ms:.2f} | {after_ms:.2f} | {before_ms / after_ms:.2f}x | {thin_seconds:.2f} |",
            flush=True,
        )
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
