"""The model-size accountant: bytes of stored weights at their bit-widths, so a budget can be a size in bytes.

Unlike `params` (bit-blind on purpose), `size` reads `weight_bits`: an 8-bit layer stores a quarter of the bytes
of its float32 self. Biases stay 32-bit (what integer inference keeps them as); sparse layers are stored dense.
"""

from __future__ import annotations

from hwmodel.base import CachedCostModel
from hwmodel.spec import LayerSpec


class SizeModel(CachedCostModel):
    """Bytes of the conv/linear layers' weights at `weight_bits` (float layers at their dtype) plus 32-bit biases."""

    def __init__(self) -> None:
        super().__init__("size", "size")

    def _price(self, spec: LayerSpec) -> float:
        return spec.weight_bytes
