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

METRICS = {"latency": "ms", "energy": "mJ", "macs": "MACs", "params": "params", "size": "bytes"}
"""What a cost model can price, and the unit `layer_cost` returns it in."""


@runtime_checkable
class CostModel(Protocol):
    """Prices one layer, or a whole (pruned) network, in `unit`.

    `metric` is one of "latency", "energy", "macs", "params", "size" (bytes). Models that know both latency and
    energy may expose more (e.g. `layer_latency_ms`), but `layer_cost` always returns the metric they price.
    """

    name: str
    metric: str
    unit: str

    def layer_cost(self, spec: LayerSpec) -> float:
        """Cost of one layer in `unit` (cached)."""
        ...

    def network_overhead(self, specs: Sequence[LayerSpec]) -> float:
        """The calibrated per-network constant on top of the layer sum for the network of `specs` (0.0 for a model
        without one); the same for every pruned variant of that network."""
        ...

    def network_cost(self, specs: Sequence[LayerSpec]) -> float:
        """`math.fsum` of the layer costs plus `network_overhead(specs)`."""
        ...

    def bind(self, specs: Sequence[LayerSpec]) -> CostModel:
        """A model priced for the network whose (any variant's) specs are `specs`; this one is left as it was.

        Models whose prices do not depend on the network return themselves; a calibrated LUT returns a new model
        whose layer costs carry that network's scale (sharing the one table, so what it measures lands there).
        """
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

    def network_overhead(self, specs: Sequence[LayerSpec]) -> float:
        return 0.0

    def network_cost(self, specs: Sequence[LayerSpec]) -> float:
        return math.fsum(self.layer_cost(spec) for spec in specs) + self.network_overhead(specs)

    def bind(self, specs: Sequence[LayerSpec]) -> CostModel:
        """Prices that do not depend on the network: the model itself."""
        return self

    @abstractmethod
    def _price(self, spec: LayerSpec) -> float:
        """The uncached price of one layer, in `unit`."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r}, metric={self.metric!r}, unit={self.unit!r})"
