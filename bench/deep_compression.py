"""Deep Compression's stored size of ResNet-20 / ResNet-56: dense, channel-pruned and element-wise masked networks,
weight-shared at a few bit-widths and Huffman coded, beside the paper's published ratios for context.

The shipped Fashion-MNIST base models are used when present (trained weights are bell-shaped, which is what
Huffman coding of k-means indices pays on), else random initial weights (said in the output). Channel pruning is
uniform keep 0.5 with L1 selection; element-wise masks are uniform magnitude masks on every conv/linear layer. No
fine-tuning: the figures are sizes, not accuracies. `8/5` is the paper's setting: 8-bit conv, 5-bit fc weights.

    .venv/bin/python bench/deep_compression.py
    .venv/bin/python bench/deep_compression.py --models resnet20 --bits 4 --sparsities 0.9    # smallest
"""

from __future__ import annotations

import argparse
import time

from torch import nn

from amc.graph import LayerTable, build_layer_table
from amc.models import create_model
from amc.pruning import Strategy, prune_network
from amc.quantize import LayerBits
from amc.quantize.deep_compression import PUBLISHED_RATIOS, CompressedSize, deep_compression_size
from amc.training.checkpoints import load_weights
from amc.training.shipped import shipped_models

PAPER_BITS = "8/5"


def base_model(name: str) -> tuple[nn.Module, str]:
    """The shipped trained model (Fashion-MNIST, one input channel) or, without it, random weights."""
    for shipped in shipped_models():
        if shipped.model == name and shipped.path.is_file():
            model = create_model(name, in_channels=1, num_classes=10)
            load_weights(model, shipped.path)
            return model.eval(), f"trained on {shipped.dataset}"
    return create_model(name, in_channels=1, num_classes=10).eval(), "random initial weights"


def variants(model: nn.Module, table: LayerTable, sparsities: list[float]) -> list[tuple[str, nn.Module]]:
    kept = Strategy.uniform(table, 0.5).kept_channels(table)
    out = [("dense", model), ("50% channels", prune_network(model, table, kept).model)]
    for sparsity in sparsities:
        densities = {layer.name: 1.0 - sparsity for layer in table.layers}
        out.append((f"{sparsity:.0%} elements", prune_network(model, table, None, densities).model))
    last = sparsities[-1] if sparsities else 0.5
    densities = {layer.name: 1.0 - last for layer in table.layers}
    out.append((f"50% ch. + {last:.0%} el.", prune_network(model, table, kept, densities).model))
    return out


def bit_setting(text: str, model: nn.Module) -> int | LayerBits:
    """An int for every layer, or the paper's 8-bit conv / 5-bit fc."""
    if text != PAPER_BITS:
        return int(text)
    weights = {
        name: 5 if isinstance(module, nn.Linear) else 8
        for name, module in model.named_modules()
        if isinstance(module, (nn.Conv2d, nn.Linear))
    }
    return LayerBits(weights)


def row(model: str, variant: str, bits: str, size: CompressedSize, original: int) -> str:
    return (
        f"{model:<9} {variant:<22} {bits:>4} {size.weights:>9,} {size.nonzero / size.weights:>7.1%} "
        f"{size.dense_bytes / 1024:>9.1f} {size.pruned_bytes / 1024:>9.1f} {size.quantized_bytes / 1024:>9.1f} "
        f"{size.huffman_bytes / 1024:>9.1f} {size.ratio:>6.1f}x {original / size.huffman_bytes:>8.1f}x"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=["resnet20", "resnet56"])
    parser.add_argument("--bits", nargs="+", default=["8", "5", "4", PAPER_BITS], help=f"ints 2-8, or {PAPER_BITS}")
    parser.add_argument("--sparsities", nargs="*", type=float, default=[0.5, 0.7, 0.9])
    args = parser.parse_args()
    header = (
        f"{'model':<9} {'variant':<22} {'bits':>4} {'weights':>9} {'density':>7} {'dense KB':>9} {'pruned KB':>9} "
        f"{'quant. KB':>9} {'Huffman KB':>9} {'ratio':>7} {'vs dense':>9}"
    )
    print(
        "Deep Compression stored size (conv/linear weights; ratio = the variant's own float32 bytes / after "
        "Huffman; vs dense = the unpruned network's float32 bytes / after Huffman, the paper's ratio)"
    )
    print(header)
    print("-" * len(header))
    start = time.perf_counter()
    origins = []
    for name in args.models:
        model, origin = base_model(name)
        origins.append(f"{name}: {origin}")
        table = build_layer_table(model, (1, 28, 28), name)
        original = deep_compression_size(model, 32).dense_bytes
        for variant, network in variants(model, table, args.sparsities):
            for bits in args.bits:
                size = deep_compression_size(network, bit_setting(bits, network))
                print(row(name, variant, bits, size, original))
    print()
    print("weights: " + "; ".join(origins) + f" ({time.perf_counter() - start:.1f} s in all)")
    print(
        "Deep Compression's published whole-pipeline ratios (Han et al. 2016, Table 1; ImageNet/MNIST networks "
        "pruned to 8-11% density and retrained): "
        + ", ".join(f"{model} {ratio:g}x" for model, ratio in PUBLISHED_RATIOS.items())
    )


if __name__ == "__main__":
    main()
