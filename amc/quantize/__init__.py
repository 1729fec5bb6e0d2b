"""Quantization: per-layer bit-widths (`LayerBits`), INT8 post-training quantization of exported networks,
fake quantization for mixed-precision search, and Deep Compression's stored size."""

from amc.quantize.bits import LayerBits
from amc.quantize.deep_compression import CompressedSize, LayerSize, deep_compression_size
from amc.quantize.fake import ActivationRanges, calibrate, fake_quantize, fake_quantize_

__all__ = [
    "ActivationRanges",
    "CompressedSize",
    "LayerBits",
    "LayerSize",
    "calibrate",
    "deep_compression_size",
    "fake_quantize",
    "fake_quantize_",
]
