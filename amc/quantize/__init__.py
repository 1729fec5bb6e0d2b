"""Quantization: per-layer bit-widths (`LayerBits`), INT8 post-training quantization of exported networks,
fake quantization for mixed-precision search, and Deep Compression's stored size."""

from amc.quantize.bits import LayerBits

__all__ = ["LayerBits"]
