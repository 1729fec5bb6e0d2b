"""What a LUT's residual error is made of: each layer timed inside the network vs alone (PyTorch eager).

A LUT entry times a layer (with its fused bn/activation) alone, over and over, so its weights and input sit in
cache; inside a network they were last touched a whole forward pass ago. The per-network scale absorbs the
average of that slowdown; what differs between kinds of layer is what is left. For the dense network and N
random pruned variants (batch 1, one thread), every layer's share of a forward pass is read from timestamps
taken as each layer starts (a forward pre-hook; a layer's span runs to the next layer's start, so it includes
its bn/activation and whatever runs in between: residual adds, pooling, flatten). Printed per kind of layer:
the sum of its LUT entries, of its in-network spans, their ratio, and its share of the whole gap. The hooks
add a few µs per layer. The network is untrained (as in bench/lut_fidelity.py). Run on a quiet machine:

    .venv/bin/python bench/layer_context.py [--model torchvision:mobilenet_v2] [--variants 4]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections import defaultdict
from collections.abc import Callable

import numpy as np
import torch
from torch import nn

from amc.costs.latency_tables import Grid, Kept, Network, load_network, random_kept
from amc.pruning import thin
from hwmodel.lut import LatencyTable, LutCostModel
from hwmodel.lut.backends import flushing_denormals
from hwmodel.lut.timing import contention_note, retain_freed_memory
from hwmodel.spec import LayerSpec


def kind(spec: LayerSpec) -> str:
    """The layer's role in a MobileNet-style block (any conv network gets the first that fits)."""
    if spec.op == "linear":
        return "classifier"
    if spec.op == "dwconv":
        return "depthwise"
    if spec.kernel == (1, 1):
        return "1x1, activated" if len(spec.fused) > 1 else "1x1 projection (no activation)"
    return f"{spec.kernel[0]}x{spec.kernel[1]} conv"


def in_network_spans(network: Network, kept: Kept, warmup: int, repeats: int) -> list[float]:
    """Median ms from each layer's start to the next one's (the last to the end of the forward pass)."""
    model = thin(network.model, network.table, kept).eval()
    modules = dict(model.named_modules())
    names = [layer.name for layer in network.table.layers]
    starts: dict[str, int] = {}

    def stamp(name: str) -> Callable[[nn.Module, tuple[torch.Tensor, ...]], None]:
        return lambda module, inputs: starts.__setitem__(name, time.perf_counter_ns())

    for name in names:
        modules[name].register_forward_pre_hook(stamp(name))
    example = torch.randn(1, *network.input_size)
    spans: list[list[float]] = [[] for _ in names]
    with torch.inference_mode(), flushing_denormals():
        for _ in range(warmup):
            model(example)
        for _ in range(repeats):
            model(example)
            end = time.perf_counter_ns()
            marks = [starts[name] for name in names] + [end]
            for span, (begin, finish) in zip(spans, zip(marks, marks[1:])):
                span.append((finish - begin) / 1e6)
    return [statistics.median(span) for span in spans]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="torchvision:mobilenet_v2")
    parser.add_argument("--input-size", default="3,224,224")
    parser.add_argument("--variants", type=int, default=4, help="random pruned variants besides the dense network")
    parser.add_argument("--repeats", type=int, default=30)
    args = parser.parse_args()
    print(contention_note(1) or "machine looks quiet (load average below the free cores)")
    torch.set_num_threads(1)
    retain_freed_memory()
    size = tuple(int(v) for v in args.input_size.split(","))
    network = load_network(args.model, size)  # type: ignore[arg-type]
    rng = np.random.default_rng(0)
    variants: list[Kept] = [{}] + [random_kept(network.table, Grid(), rng) for _ in range(args.variants)]
    lut = LutCostModel(LatencyTable.create("torch", 1, 10, args.repeats))
    alone: dict[str, float] = defaultdict(float)
    inside: dict[str, float] = defaultdict(float)
    count: dict[str, int] = defaultdict(int)
    for kept in variants:
        specs = network.table.specs(kept)
        lut.measure_many(specs)
        for spec, span in zip(specs, in_network_spans(network, kept, 10, args.repeats)):
            alone[kind(spec)] += lut.entry_ms(spec)
            inside[kind(spec)] += span
            count[kind(spec)] += 1
    gap = sum(inside.values()) - sum(alone.values())
    print(f"{args.model} {args.input_size}: dense + {args.variants} random variants, all layers summed over them")
    print(
        f"{'kind of layer':<32} {'layers':>6} {'alone ms':>9} {'in network ms':>14} {'ratio':>6} {'share of gap':>13}"
    )
    for name in sorted(alone, key=lambda k: inside[k] - alone[k], reverse=True):
        ratio = inside[name] / alone[name]
        share = (inside[name] - alone[name]) / gap * 100
        print(f"{name:<32} {count[name]:>6} {alone[name]:>9.2f} {inside[name]:>14.2f} {ratio:>6.2f} {share:>12.1f}%")
    total_alone, total_inside = sum(alone.values()), sum(inside.values())
    ratio = total_inside / total_alone
    print(f"{'all':<32} {sum(count.values()):>6} {total_alone:>9.2f} {total_inside:>14.2f} {ratio:>6.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
