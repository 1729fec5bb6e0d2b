"""Pricing the variants a search visits, fast enough for per-step budget clipping.

A channel variant is a kept channel count per coupling group; a layer's cost depends only on its own (in, out)
channels (`LayerTable.layer_channels`, the one coupling rule), so prices are memoised per (layer, in, out) and
a change to one group re-prices only the layers it touches. A density variant is a weight density per layer;
shapes never change, so a layer's price depends on its own density only. Both search a staircase: a measured
LUT is not linear in the channel count, so `largest_feasible` tries the discrete values instead of a line.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Protocol, TypeVar

from amc.graph import LayerTable
from amc.pruning import candidate_counts
from hwmodel import CostModel

__all__ = ["Accountant", "ChannelAccountant", "DensityAccountant", "candidate_counts", "density_grid", "snap_density"]

DENSITY_STEP = 0.01
"""Densities are searched on multiples of this (plus the bounds), as channel counts are on multiples of round_to."""


V = TypeVar("V", int, float)


class Accountant(Protocol[V]):
    """What a problem prices with: the dense cost, the dense cost per layer, any variant's cost, and the largest
    feasible value of one unit (a ChannelAccountant: group -> kept count; a DensityAccountant: layer -> density)."""

    cost_model: CostModel
    dense_cost: float
    dense_layer_costs: tuple[float, ...]

    def cost(self, decisions: Mapping[int, V], /) -> float: ...

    def largest_feasible(
        self, unit: int, values: Sequence[V], decisions: Mapping[int, V], limit: float
    ) -> V | None: ...


def density_grid(lbound: float, rbound: float, step: float = DENSITY_STEP) -> list[float]:
    """Densities between lbound and rbound on multiples of `step` (both bounds included)."""
    low, high = math.ceil(lbound / step - 1e-9), math.floor(rbound / step + 1e-9)
    values = {round(i * step, 6) for i in range(low, high + 1)} | {lbound, rbound}
    return sorted(values)


def snap_density(density: float, grid: Sequence[float]) -> float:
    """The largest grid value not above `density` (the smallest one if all are)."""
    below = [value for value in grid if value <= density + 1e-9]
    return below[-1] if below else grid[0]


class ChannelAccountant:
    """Cost of channel variants of `table` (group -> kept count) by `cost_model`, incrementally per group."""

    def __init__(self, table: LayerTable, cost_model: CostModel) -> None:
        self.table = table
        self.cost_model = cost_model
        self._cache: dict[tuple[int, int, int], float] = {}
        touching: dict[int, set[int]] = {group.index: set() for group in table.groups}
        for layer in table.layers:
            if layer.out_group is not None:
                touching[layer.out_group].add(layer.index)
            for group, _ in layer.in_sources:
                touching[group].add(layer.index)
        self._touching = {group: tuple(sorted(layers)) for group, layers in touching.items()}
        self.overhead = cost_model.network_overhead(table.specs())
        self.dense_layer_costs = tuple(self.layer_cost(layer.index, {}) for layer in table.layers)
        self.dense_cost = self.cost({})

    def layer_cost(self, index: int, kept: Mapping[int, int]) -> float:
        in_channels, out_channels = self.table.layer_channels(index, kept)
        key = (index, in_channels, out_channels)
        cost = self._cache.get(key)
        if cost is None:
            spec = self.table.layers[index].spec
            if (in_channels, out_channels) != (spec.in_channels, spec.out_channels):
                spec = spec.with_channels(in_channels, out_channels)
            cost = self._cache[key] = self.cost_model.layer_cost(spec)
        return cost

    def cost(self, kept: Mapping[int, int]) -> float:
        """Network cost of the variant (layer sum plus the model's constant overhead)."""
        return math.fsum(self.layer_cost(layer.index, kept) for layer in self.table.layers) + self.overhead

    def largest_feasible(self, group: int, counts: Sequence[int], kept: Mapping[int, int], limit: float) -> int | None:
        """The largest count in `counts` for `group` whose variant (others as in `kept`) costs <= limit."""
        trial = dict(kept)
        touched = self._touching[group]
        others = self.cost(kept) - math.fsum(self.layer_cost(index, kept) for index in touched)
        for count in sorted(counts, reverse=True):
            trial[group] = count
            if others + math.fsum(self.layer_cost(index, trial) for index in touched) <= limit:
                return count
        return None


class DensityAccountant:
    """Cost of density variants of `table` (layer -> weight density) by `cost_model` (e.g. `sparse:...`)."""

    def __init__(self, table: LayerTable, cost_model: CostModel) -> None:
        self.table = table
        self.cost_model = cost_model
        self._specs = table.specs()
        self._cache: dict[tuple[int, float], float] = {}
        self.overhead = cost_model.network_overhead(self._specs)
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
        self, index: int, values: Sequence[float], densities: Mapping[int, float], limit: float
    ) -> float | None:
        """The largest density in `values` for layer `index` (others as in `densities`) whose cost <= limit."""
        others = self.cost(densities) - self.layer_cost(index, densities)
        for value in sorted(values, reverse=True):
            if others + self.layer_cost(index, {index: value}) <= limit:
                return value
        return None
