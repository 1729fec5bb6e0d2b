"""Pricing element-wise (fine-grained) variants for the env's `granularity="element"` mode.

A variant is one weight density per conv/linear layer (keyed by layer index); shapes never change, so a
layer's price depends on its own density only and nothing is coupled. Densities are searched on a fixed grid
(`DENSITY_STEP`), which lets the env's budget clipping pick the largest feasible value exactly as it picks
channel counts on a latency staircase.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from amc.graph import LayerTable
from hwmodel import CostModel

DENSITY_STEP = 0.01


def density_grid(lbound: float, rbound: float, step: float = DENSITY_STEP) -> list[float]:
    """Densities between lbound and rbound on multiples of `step` (both bounds included)."""
    low, high = math.ceil(lbound / step - 1e-9), math.floor(rbound / step + 1e-9)
    values = {round(i * step, 6) for i in range(low, high + 1)} | {lbound, rbound}
    return sorted(values)


def snap_density(density: float, grid: Sequence[float]) -> float:
    """The largest grid value not above `density` (the smallest one if all are)."""
    below = [value for value in grid if value <= density + 1e-9]
    return below[-1] if below else grid[0]


class DensityAccountant:
    """Network cost of per-layer weight densities by `cost_model` (e.g. `sparse:systolic:...`), memoised."""

    def __init__(self, table: LayerTable, cost_model: CostModel) -> None:
        self.table = table
        self.cost_model = cost_model
        self._specs = table.specs()
        self._cache: dict[tuple[int, float], float] = {}
        self.overhead = cost_model.network_cost(self._specs) - math.fsum(map(cost_model.layer_cost, self._specs))
        self.dense_layer_costs = tuple(self.layer_cost(layer.index, {}) for layer in table.layers)
        self.dense_cost = self.cost({})

    def layer_cost(self, index: int, densities: Mapping[int, float]) -> float:
        density = densities.get(index, 1.0)
        key = (index, density)
        cost = self._cache.get(key)
        if cost is None:
            spec = self._specs[index]
            cost = self._cache[key] = self.cost_model.layer_cost(spec.with_density(density) if density < 1 else spec)
        return cost

    def cost(self, densities: Mapping[int, float]) -> float:
        return math.fsum(self.layer_cost(layer.index, densities) for layer in self.table.layers) + self.overhead

    def largest_feasible(
        self, index: int, values: Sequence[float], densities: Mapping[int, float], budget: float
    ) -> float | None:
        """The largest density in `values` for layer `index` (others as in `densities`) whose cost <= budget."""
        others = self.cost(densities) - self.layer_cost(index, densities)
        for value in sorted(values, reverse=True):
            if others + self.layer_cost(index, {index: value}) <= budget:
                return value
        return None
