"""Pricing pruned variants of one network, fast enough for the env's per-step budget clipping.

A variant is `kept`: output channels per coupling group. A layer's cost depends only on its own (in, out)
channel counts, so prices are memoised per (layer, in, out) and a change to one group re-prices only the
layers that group touches (its members and their consumers). With a measured latency LUT the cost is a
staircase in the channel count, so `largest_feasible` searches the discrete counts instead of assuming a line.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol, TypeVar

from amc.errors import UserError
from amc.graph import CouplingGroup, LayerTable
from amc.pruning import round_channels
from hwmodel import CostModel

_Kept = TypeVar("_Kept")
_Kept_contra = TypeVar("_Kept_contra", contravariant=True)


@dataclass(frozen=True)
class Budget:
    """A hard budget in the cost model's unit, with the dense and the smallest reachable cost for context."""

    metric: str
    unit: str
    value: float
    dense_cost: float
    min_cost: float

    @property
    def ratio(self) -> float:
        return self.value / self.dense_cost


def candidate_counts(group: CouplingGroup, round_to: int, lbound: float, rbound: float) -> list[int]:
    """Channel counts a search may give `group`: the rounded counts between its lbound and rbound keeps."""
    low = round_channels(lbound, group.channels, round_to, group.divisor)
    high = round_channels(rbound, group.channels, round_to, group.divisor)
    step = math.lcm(round_to, group.divisor)
    if step > group.channels:
        step = group.divisor
    counts = {count for count in range(step, group.channels + 1, step) if low <= count <= high}
    counts.update({low, high})
    return sorted(counts)


class Accountant(Protocol[_Kept_contra]):
    """What `resolve_budget` prices with: a `CostAccountant` (group -> channel count), or the element-wise
    env's DensityAccountant (layer -> weight density)."""

    cost_model: CostModel
    dense_cost: float

    def cost(self, kept: Mapping[int, _Kept_contra], /) -> float: ...


def resolve_budget(
    accountant: Accountant[_Kept], minimum: Mapping[int, _Kept], value: float | None, ratio: float | None, lbound: float
) -> Budget:
    """The budget in the cost model's unit (value, or ratio x dense cost), refused when even `minimum` misses it."""
    model = accountant.cost_model
    dense = accountant.dense_cost
    if value is None:
        if ratio is None:
            raise UserError("no budget given.", fix="set budget.ratio (e.g. 0.5) or budget.value.")
        value = ratio * dense
    smallest = accountant.cost(minimum)
    if smallest > value:
        raise UserError(
            f"the budget {value:.6g} {model.unit} ({100 * value / dense:.1f}% of the dense {dense:.6g} {model.unit} "
            f"by {model.name}) cannot be met: with every layer at lbound={lbound} the network still costs "
            f"{smallest:.6g} {model.unit} ({100 * smallest / dense:.1f}%).",
            fix=f"raise the budget to at least {smallest:.6g} {model.unit} (budget.ratio >= "
            f"{math.ceil(1000 * smallest / dense) / 1000}), or lower search.lbound.",
        )
    return Budget(model.metric, model.unit, float(value), dense, smallest)


class CostAccountant:
    """Cost of pruned variants of `table` by `cost_model`, incrementally per group."""

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
        dense_specs = table.specs()
        layer_sum = math.fsum(cost_model.layer_cost(spec) for spec in dense_specs)
        # a calibrated per-network overhead (if the model has one) is a constant on top of the layer sum
        self.overhead = cost_model.network_cost(dense_specs) - layer_sum
        self.dense_layer_costs = tuple(self.layer_cost(layer.index, {}) for layer in table.layers)
        self.dense_cost = self.cost({})

    def _channels(self, index: int, kept: Mapping[int, int]) -> tuple[int, int]:
        layer = self.table.layers[index]
        groups = self.table.groups
        if layer.spec.op == "dwconv" and layer.out_group is not None:
            channels = kept.get(layer.out_group, groups[layer.out_group].channels)
            return channels, channels * (layer.spec.out_channels // layer.spec.in_channels)
        out = layer.spec.out_channels if layer.out_group is None else kept.get(layer.out_group, layer.spec.out_channels)
        in_channels = layer.in_fixed + sum(mult * kept.get(g, groups[g].channels) for g, mult in layer.in_sources)
        return in_channels, out

    def layer_cost(self, index: int, kept: Mapping[int, int]) -> float:
        in_channels, out_channels = self._channels(index, kept)
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

    def touching(self, group: int) -> tuple[int, ...]:
        """Layers whose cost changes with `group`'s channel count."""
        return self._touching[group]

    def largest_feasible(self, group: int, counts: Sequence[int], kept: Mapping[int, int], budget: float) -> int | None:
        """The largest count in `counts` for `group` whose variant (others as in `kept`) costs <= budget."""
        trial = dict(kept)
        touched = self._touching[group]
        others = self.cost(kept) - math.fsum(self.layer_cost(index, kept) for index in touched)
        for count in sorted(counts, reverse=True):
            trial[group] = count
            if others + math.fsum(self.layer_cost(index, trial) for index in touched) <= budget:
                return count
        return None
