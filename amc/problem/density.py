"""Element-wise (fine-grained) pruning: one decision per conv/linear layer, its weight density.

Shapes never change, so nothing is coupled; the smallest-magnitude weights are zeroed. Priced on
`LayerSpec.with_density`, which only a zero-skipping cost model (`sparse:<base>`) rewards. Densities are searched
on a fixed grid, so the budget clipping picks the largest feasible value exactly as it picks channel counts on a
latency staircase.
"""

from __future__ import annotations

from collections.abc import Mapping

from torch import nn

from amc.graph import Layer, LayerTable
from amc.problem.accounting import DensityAccountant, density_grid, snap_density
from amc.problem.base import PruningProblem, Settings
from amc.problem.budget import resolve_budget
from amc.problem.scoring import Scorer
from amc.pruning import LayerDensities, StrategyMetadata
from amc.pruning.apply import prune_network
from hwmodel import CostModel


class DensityProblem(PruningProblem[float]):
    """Weight density per layer; a variant keeps its shapes, with the smallest weights zeroed."""

    def __init__(
        self,
        model: nn.Module,
        table: LayerTable,
        scorer: Scorer,
        cost_model: CostModel,
        settings: Settings,
        metadata: StrategyMetadata | None = None,
        budget_value: float | None = None,
        budget_ratio: float | None = 0.5,
    ) -> None:
        super().__init__(model, table, scorer, cost_model, settings, metadata)
        self.order = tuple(layer.index for layer in table.layers)
        grid = density_grid(settings.lbound, settings.rbound)
        self.candidates = {index: grid for index in self.order}
        self._accountant = DensityAccountant(table, cost_model)
        self.budget = resolve_budget(self._accountant, self.minimum, budget_value, budget_ratio, settings.lbound)

    @property
    def accountant(self) -> DensityAccountant:
        return self._accountant

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
