"""Deep Compression's stored size (Han et al., ICLR 2016): prune -> share weights by k-means -> Huffman code.

What is stored, per conv/linear layer (biases and BatchNorm are not counted, as Distiller and the paper count
weights only), over the layer's weights flattened in row-major order:
- dense: every weight as float32.
- pruned: a layer with zero weights keeps only its non-zeros, each as float32 plus a relative index, the number
  of zeros skipped since the previous stored entry, in a fixed gap width (8 bits for conv, 5 for fully connected
  layers, as in the paper; or a setting). A run of zeros longer than the width holds is broken by a padding zero
  stored as an entry of its own. A layer without zeros is stored dense (no index). Trailing zeros are implied
  by the layer's shape.
- quantized: each stored value becomes a `bits`-bit index into a codebook of float32 centroids, found by 1-D
  k-means with linear initialisation between the smallest and largest weight (the paper's best initialisation);
  when the layer has padding zeros one code is reserved for them (zero needs no codebook entry), so the non-zeros
  share 2^bits - 1 centroids. At 32 bits a layer is not quantized and keeps float32 values.
- Huffman: the value indices and the gaps are each Huffman coded; each table is stored canonically as one byte
  (a code length) per symbol of its alphabet (2^bits indices, 2^gap-bits gaps); codebooks stay float32.
Bytes are each layer's bits rounded up to whole bytes. Everything is deterministic: the initialisation is linear
and no step draws random numbers.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from amc.errors import UserError
from amc.quantize.bits import LayerBits, check_bits
from hwmodel.spec import FULL_PRECISION_BITS

GAP_BITS = {"conv": 8, "linear": 5}
"""The paper's relative-index widths: 8 bits for conv layers, 5 for fully connected ones."""
MAX_GAP_BITS = 16
TABLE_BITS_PER_SYMBOL = 8
"""A canonical Huffman table: one byte per alphabet symbol, the symbol's code length (0: unused)."""
KMEANS_ITERATIONS = 100
PUBLISHED_RATIOS = {"LeNet-300-100": 40.0, "LeNet-5": 39.0, "AlexNet": 35.0, "VGG-16": 49.0}
"""Deep Compression's whole-pipeline ratios (paper, Table 1), for context beside amc's figures."""


@dataclass(frozen=True)
class LayerSize:
    """One layer's weight storage at each stage of the pipeline."""

    name: str
    kind: str
    """conv (depthwise included) or linear."""
    weights: int
    nonzero: int
    weight_bits: int
    """Bits of each value index (32: not quantized, float32 values)."""
    gap_bits: int
    """Width of a relative index; 0 when the layer is stored dense (it has no zero weights)."""
    padding: int
    """Padding zeros inserted where a run of zeros overflows the gap width."""
    centroids: int
    """Shared values in the codebook (0 when not quantized)."""
    dense_bytes: int
    pruned_bytes: int
    quantized_bytes: int
    huffman_bytes: int

    @property
    def density(self) -> float:
        return self.nonzero / self.weights if self.weights else 1.0

    @property
    def ratio(self) -> float:
        """Dense float32 bytes over the bytes after Huffman coding."""
        return self.dense_bytes / self.huffman_bytes if self.huffman_bytes else math.inf


@dataclass(frozen=True)
class CompressedSize:
    """Per-layer and total stored bytes after each stage of Deep Compression."""

    layers: tuple[LayerSize, ...]

    @property
    def dense_bytes(self) -> int:
        return sum(layer.dense_bytes for layer in self.layers)

    @property
    def pruned_bytes(self) -> int:
        return sum(layer.pruned_bytes for layer in self.layers)

    @property
    def quantized_bytes(self) -> int:
        return sum(layer.quantized_bytes for layer in self.layers)

    @property
    def huffman_bytes(self) -> int:
        return sum(layer.huffman_bytes for layer in self.layers)

    @property
    def weights(self) -> int:
        return sum(layer.weights for layer in self.layers)

    @property
    def nonzero(self) -> int:
        return sum(layer.nonzero for layer in self.layers)

    @property
    def ratio(self) -> float:
        """Dense float32 bytes over the bytes after Huffman coding (the paper's compression rate)."""
        return self.dense_bytes / self.huffman_bytes if self.huffman_bytes else math.inf

    def to_dict(self) -> dict[str, Any]:
        totals = {
            key: getattr(self, key)
            for key in ("weights", "nonzero", "dense_bytes", "pruned_bytes", "quantized_bytes", "huffman_bytes")
        }
        return {"layers": [asdict(layer) for layer in self.layers], "total": {**totals, "ratio": self.ratio}}


@dataclass(frozen=True)
class Clusters:
    """1-D k-means result: the centroids in use (ascending) and each value's centroid index."""

    centroids: np.ndarray
    labels: np.ndarray

    def reconstruct(self) -> np.ndarray:
        return self.centroids[self.labels]


def kmeans_1d(values: np.ndarray, k: int, iterations: int = KMEANS_ITERATIONS) -> Clusters:
    """Lloyd's k-means on scalars from centroids spaced linearly over [min, max] (Han et al.'s linear
    initialisation); clusters left empty are dropped, so at most k centroids remain."""
    data = np.asarray(values, dtype=np.float64).ravel()
    if data.size == 0:
        return Clusters(np.zeros(0), np.zeros(0, dtype=np.int64))
    centroids = np.linspace(data.min(), data.max(), max(1, min(k, data.size)))
    labels = np.zeros(data.size, dtype=np.int64)
    for step in range(iterations):
        centroids = np.unique(centroids)  # sorted; merged duplicates keep the assignment well defined
        new = _nearest(data, centroids)
        if step and np.array_equal(new, labels):
            break
        labels = new
        counts = np.bincount(labels, minlength=centroids.size)
        sums = np.bincount(labels, weights=data, minlength=centroids.size)
        filled = counts > 0
        centroids[filled] = sums[filled] / counts[filled]
    labels = _nearest(data, centroids)
    used = np.unique(labels)
    remap = np.full(centroids.size, -1, dtype=np.int64)
    remap[used] = np.arange(used.size)
    return Clusters(centroids[used], remap[labels])


def _nearest(data: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    """Index of the nearest of sorted `centroids` for each value (ties to the lower one)."""
    if centroids.size == 1:
        return np.zeros(data.size, dtype=np.int64)
    midpoints = (centroids[1:] + centroids[:-1]) / 2
    return np.searchsorted(midpoints, data, side="right").astype(np.int64)


def huffman_lengths(counts: Sequence[int]) -> list[int]:
    """Huffman code length of each symbol from its count (0 for unused symbols; a lone symbol gets 1 bit)."""
    used = [(int(count), index) for index, count in enumerate(counts) if count > 0]
    lengths = [0] * len(counts)
    if len(used) == 1:
        lengths[used[0][1]] = 1
        return lengths
    heap: list[tuple[int, int, list[int]]] = [(count, index, [index]) for count, index in used]
    heapq.heapify(heap)
    while len(heap) > 1:
        count_a, order_a, symbols_a = heapq.heappop(heap)
        count_b, order_b, symbols_b = heapq.heappop(heap)
        for symbol in (*symbols_a, *symbols_b):
            lengths[symbol] += 1
        heapq.heappush(heap, (count_a + count_b, min(order_a, order_b), symbols_a + symbols_b))
    return lengths


def huffman_bits(counts: Sequence[int]) -> int:
    """Bits of a Huffman-coded stream with these symbol counts, its table excluded."""
    return sum(count * length for count, length in zip(counts, huffman_lengths(counts)))


def check_gap_bits(value: Any, what: str = "--gap-bits") -> int:
    """A relative-index width as an int in 1..MAX_GAP_BITS, else a UserError naming `what`."""
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_GAP_BITS:
        raise UserError(
            f"{what}: relative-index width {value!r} is not allowed.",
            fix=f"use whole bits 1-{MAX_GAP_BITS} (the paper: 8 for conv, 5 for fully connected layers).",
        )
    return value


def weight_layers(model: nn.Module) -> Iterator[tuple[str, str, torch.Tensor]]:
    """(qualified name, conv or linear, weight) of every conv and linear layer; a masked weight (torch.nn.utils.
    prune) is read with its mask applied."""
    for name, module in model.named_modules():
        if isinstance(module, (nn.Conv1d, nn.Conv2d, nn.Conv3d)):
            yield name, "conv", module.weight
        elif isinstance(module, nn.Linear):
            yield name, "linear", module.weight


def deep_compression_size(model: nn.Module, bits: int | LayerBits = 8, gap_bits: int | None = None) -> CompressedSize:
    """Stored bytes of `model`'s conv/linear weights after pruning (its zero weights, thinned or masked),
    k-means weight sharing at `bits` per layer (an int for all, or LayerBits: absent layers stay float32) and
    Huffman coding; `gap_bits` fixes the relative-index width (None: 8 conv, 5 linear). The model is not changed."""
    layers = list(weight_layers(model))
    names = {name for name, _, _ in layers}
    if isinstance(bits, LayerBits):
        unknown = sorted(name for name in bits.weights if name not in names)
        if unknown:
            raise UserError(
                f"bit-widths name layer(s) {', '.join(map(repr, unknown))}, which are not conv/linear layers of "
                "this network.",
                fix="use the layer names of `amc inspect MODEL` (the bit-widths of this model).",
            )
    else:
        check_bits(bits, "--bits")
    if gap_bits is not None:
        check_gap_bits(gap_bits)
    sizes = []
    for name, kind, weight in layers:
        layer_bits = bits.weight_bits(name) if isinstance(bits, LayerBits) else bits
        with torch.no_grad():
            values = weight.detach().to("cpu", torch.float64).numpy().ravel()
        if not np.isfinite(values).all():
            raise UserError(
                f"layer {name!r} has NaN or infinite weights, which have no stored size.",
                fix="check the checkpoint (a diverged training run?).",
            )
        sizes.append(layer_size(name, kind, values, layer_bits, gap_bits or GAP_BITS[kind]))
    return CompressedSize(tuple(sizes))


def layer_size(name: str, kind: str, values: np.ndarray, bits: int, gap_bits: int) -> LayerSize:
    """One layer's storage at each stage; `values` is the flattened weight (zeros are pruned weights)."""
    positions = np.flatnonzero(values)
    count, nonzero = values.size, positions.size
    sparse = nonzero < count
    gap_counts = np.zeros(2**gap_bits, dtype=np.int64)
    padding = 0
    if sparse:
        skips = np.diff(positions, prepend=-1) - 1
        fillers = skips >> gap_bits  # each padding zero covers 2^g - 1 skipped zeros and itself
        padding = int(fillers.sum())
        gap_counts += np.bincount(skips & (2**gap_bits - 1), minlength=2**gap_bits)
        gap_counts[-1] += padding
    entries = nonzero + padding
    index_bits = entries * gap_bits if sparse else 0
    gap_huffman = huffman_bits(gap_counts.tolist()) + 2**gap_bits * TABLE_BITS_PER_SYMBOL if sparse else 0
    pruned = entries * FULL_PRECISION_BITS + index_bits
    if bits == FULL_PRECISION_BITS:
        quantized, huffman, centroids = pruned, entries * FULL_PRECISION_BITS + gap_huffman, 0
    else:
        reserved = 1 if padding else 0  # a code for the padding zero, whose value needs no codebook entry
        clusters = kmeans_1d(values[positions], 2**bits - reserved)
        centroids = int(clusters.centroids.size)
        codebook = centroids * FULL_PRECISION_BITS
        code_counts = np.bincount(clusters.labels + reserved, minlength=2**bits)
        code_counts[0] += padding if reserved else 0
        quantized = entries * bits + index_bits + codebook
        huffman = huffman_bits(code_counts.tolist()) + 2**bits * TABLE_BITS_PER_SYMBOL + gap_huffman + codebook
    return LayerSize(
        name=name,
        kind=kind,
        weights=count,
        nonzero=nonzero,
        weight_bits=bits,
        gap_bits=gap_bits if sparse else 0,
        padding=padding,
        centroids=centroids,
        dense_bytes=count * FULL_PRECISION_BITS // 8,
        pruned_bytes=_bytes(pruned),
        quantized_bytes=_bytes(quantized),
        huffman_bytes=_bytes(huffman),
    )


def _bytes(bits: int) -> int:
    return -(-int(bits) // 8)
