"""Element-wise (fine-grained) pruning: one decision per conv/linear layer, its weight density.

Shapes never change, so nothing is coupled; the smallest-magnitude weights are zeroed. Priced on
`LayerSpec.with_density`, which only a zero-skipping cost model (`sparse:<base>`) rewards. Densities are searched
on a fixed grid, so the budget clipping picks the largest feasible value exactly as it picks channel counts on a
latency staircase.
"""

from __future__ import annotations

from collections.abc import Mapping

from torch import nn

from amc.graph import Layer
from amc.problem.accounting import DensityAccountant, density_grid, snap_density
from amc.problem.base import PruningProblem
from amc.pruning import LayerDensities, StrategyMetadata
from amc.pruning.apply import prune_network


class DensityProblem(PruningProblem[float]):
    """Weight density per layer; a variant keeps its shapes, with the smallest weights zeroed."""

    def _units(self) -> tuple[int, ...]:
        return tuple(layer.index for layer in self.table.layers)

    def _values(self, unit: int) -> list[float]:
        return density_grid(self.settings.lbound, self.settings.rbound)

    def _accountant(self) -> DensityAccountant:
        return DensityAccountant(self.table, self.cost_model)

    def unit_layers(self, unit: int) -> list[Layer]:
        return [self.table.layers[unit]]

    def ratio(self, unit: int, value: float) -> float:
        return value

    def snap(self, unit: int, wanted: float) -> float:
        return snap_density(wanted, self.candidates[unit])

    def apply(self, decisions: Mapping[int, float]) -> nn.Module:
        densities = {self.table.layers[index].name: density for index, density in decisions.items()}
        return prune_network(self.model, self.table, densities=densities).model

    def result(self, decisions: Mapping[int, float], metadata: StrategyMetadata) -> LayerDensities:
        names = {index: self.table.layers[index].name for index in decisions}
        return LayerDensities({names[i]: d for i, d in decisions.items() if d < 1.0}, self.table.model_name)
