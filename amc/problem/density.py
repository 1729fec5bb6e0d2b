"""Masked pruning: one decision per conv/linear layer, its weight density.

Shapes never change, so nothing is coupled; the smallest-magnitude weights are zeroed, one by one (element) or in
the groups of a `MaskPattern` (kernel rows, kernels, filters, N:M; amc.pruning.granularity). Priced on
`LayerSpec.with_density` with that pattern, which only a zero-skipping cost model (`sparse:<base>`,
`sparse@<profile>:<base>`) rewards. Densities are searched on a fixed grid (N:M: density N/M or dense), so the
budget clipping picks the largest feasible value exactly as it picks channel counts on a latency staircase.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

from torch import Tensor, nn

from amc.graph import Layer, LayerTable
from amc.problem.accounting import DensityAccountant, density_grid, snap_density
from amc.problem.base import PruningProblem
from amc.pruning import LayerDensities, StrategyMetadata
from amc.pruning.apply import prune_network
from amc.pruning.granularity import MaskPattern
from hwmodel import CostModel


class PatternAccountant(DensityAccountant):
    """A DensityAccountant pricing each density with the problem's sparsity pattern instead of element-wise."""

    def __init__(self, table: LayerTable, cost_model: CostModel, pattern: str) -> None:
        self.pattern = pattern
        super().__init__(table, cost_model)

    def layer_cost(self, index: int, densities: Mapping[int, float]) -> float:
        density = densities.get(index, 1.0)
        cost = self._cache.get((index, density))
        if cost is None:
            spec = self._specs[index]
            priced = spec.with_density(density, self.pattern) if density < 1 else spec
            cost = self._cache[(index, density)] = self.cost_model.layer_cost(priced)
        return cost


class DensityProblem(PruningProblem[float]):
    """Weight density per layer; a variant keeps its shapes, with the smallest weights (or groups) zeroed."""

    def __init__(self, *args: Any, pattern: MaskPattern | None = None, **kwargs: Any) -> None:
        self.pattern = pattern or MaskPattern()
        super().__init__(*args, **kwargs)

    def _units(self) -> tuple[int, ...]:
        return tuple(layer.index for layer in self.table.layers)

    def _values(self, unit: int) -> list[float]:
        if self.pattern.granularity == "nm":
            weight = cast(Tensor, self.model.get_submodule(self.table.layers[unit].name).weight)
            return [self.pattern.nm.density, 1.0] if self.pattern.nm.eligible(weight) else [1.0]
        return density_grid(self.settings.lbound, self.settings.rbound)

    def _accountant(self) -> DensityAccountant:
        if self.pattern == MaskPattern():
            return DensityAccountant(self.table, self.cost_model)
        return PatternAccountant(self.table, self.cost_model, self.pattern.granularity)

    def unit_layers(self, unit: int) -> list[Layer]:
        return [self.table.layers[unit]]

    def ratio(self, unit: int, value: float) -> float:
        return value

    def snap(self, unit: int, wanted: float) -> float:
        return snap_density(wanted, self.candidates[unit])

    def apply(self, decisions: Mapping[int, float]) -> nn.Module:
        densities = {self.table.layers[index].name: density for index, density in decisions.items()}
        return prune_network(self.model, self.table, densities=densities, pattern=self.pattern).model

    def result(self, decisions: Mapping[int, float], metadata: StrategyMetadata) -> LayerDensities:
        names = {index: self.table.layers[index].name for index in decisions}
        densities = {names[i]: d for i, d in decisions.items() if d < 1.0}
        return LayerDensities(densities, self.table.model_name, self.pattern)
