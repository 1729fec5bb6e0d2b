"""The CostModel protocol every pricing backend meets, and a cached base class that most of them share.

The search asks thousands of per-layer prices per episode, so every model memoises `layer_cost` by the
(hashable, frozen) LayerSpec: a repeat query is one dict hit, never a recomputation or a file read.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from hwmodel.spec import LayerSpec

METRICS = {"latency": "ms", "energy": "mJ", "macs": "MACs", "params": "params"}
"""What a cost model can price, and the unit `layer_cost` returns it in."""


@runtime_checkable
class CostModel(Protocol):
    """Prices one layer, or a whole (pruned) network, in `unit`.

    `metric` is one of "latency", "energy", "macs", "params". Models that know both latency and energy may expose
    more (e.g. `layer_latency_ms`), but `layer_cost` always returns the metric they price.
    """

    name: str
    metric: str
    unit: str

    def layer_cost(self, spec: LayerSpec) -> float:
        """Cost of one layer in `unit` (cached)."""
        ...

    def network_cost(self, specs: Sequence[LayerSpec]) -> float:
        """Sum of the layer costs plus any calibrated per-network overhead."""
        ...


class CachedCostModel(ABC):
    """A CostModel whose per-layer price is a pure function of the spec, memoised in a dict."""

    def __init__(self, name: str, metric: str) -> None:
        self.name = name
        self.metric = metric
        self.unit = METRICS[metric]
        self._cache: dict[LayerSpec, float] = {}

    def layer_cost(self, spec: LayerSpec) -> float:
        cost = self._cache.get(spec)
        if cost is None:
            cost = self._cache[spec] = float(self._price(spec))
        return cost

    def network_cost(self, specs: Sequence[LayerSpec]) -> float:
        return math.fsum(self.layer_cost(spec) for spec in specs)

    @abstractmethod
    def _price(self, spec: LayerSpec) -> float:
        """The uncached price of one layer, in `unit`."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r}, metric={self.metric!r}, unit={self.unit!r})"
