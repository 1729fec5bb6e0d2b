"""The MACs and parameter accountants: device-free cost models that count what LayerSpec counts."""

from __future__ import annotations

from hwmodel.base import CachedCostModel
from hwmodel.spec import LayerSpec


class MacsModel(CachedCostModel):
    """Dense multiply-accumulates (DESIGN.md "Counting"); `sparse:macs` gives the ideal (zero-skipped) MACs."""

    def __init__(self) -> None:
        super().__init__("macs", "macs")

    def _price(self, spec: LayerSpec) -> float:
        return spec.macs


class ParamsModel(CachedCostModel):
    """Parameters of the conv/linear layers themselves (weights + bias)."""

    def __init__(self) -> None:
        super().__init__("params", "params")

    def _price(self, spec: LayerSpec) -> float:
        return spec.params
