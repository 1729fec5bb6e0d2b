"""Channel pruning: one decision per prunable coupling group, its kept channel count (multiples of round_to)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property

from torch import nn

from amc.errors import UserError
from amc.graph import Layer, LayerTable
from amc.problem.accounting import ChannelAccountant, candidate_counts
from amc.problem.base import PruningProblem, Tune
from amc.problem.outcome import Outcome
from amc.pruning import Strategy, StrategyMetadata, round_channels
from amc.pruning.apply import prune_network
from amc.pruning.reconstruction import ReferenceCache


@dataclass(frozen=True)
class PrunedModel:
    """An already pruned (and tuned) network to continue from: its decisions, weights and layer table."""

    decisions: dict[int, int]
    model: nn.Module
    table: LayerTable


class ChannelProblem(PruningProblem[int]):
    """Kept channels per coupling group; a variant is physically thinner (channels removed)."""

    def _units(self) -> tuple[int, ...]:
        order = tuple(group.index for group in self.table.prunable_groups)
        if not order:
            raise UserError(f"{self.table.model_name} has no prunable coupling group.", fix="check `amc inspect`.")
        return order

    def _values(self, unit: int) -> list[int]:
        s = self.settings
        return candidate_counts(self.table.groups[unit], s.round_to, s.lbound, s.rbound)

    def _accountant(self) -> ChannelAccountant:
        return ChannelAccountant(self.table, self.cost_model)

    def unit_layers(self, unit: int) -> list[Layer]:
        return [self.table.layer(name) for name in self.table.groups[unit].layers]

    def ratio(self, unit: int, value: int) -> float:
        return value / self.table.groups[unit].channels

    def snap(self, unit: int, wanted: float) -> int:
        group = self.table.groups[unit]
        return round_channels(wanted, group.channels, self.settings.round_to, group.divisor)

    def snap_down(self, unit: int, wanted: float) -> int:
        """The largest allowed count <= the rounded wanted share (the smallest allowed count if none is)."""
        count = self.snap(unit, wanted)
        return max((value for value in self.candidates[unit] if value <= count), default=self.candidates[unit][0])

    def apply(self, decisions: Mapping[int, int], start: PrunedModel | None = None) -> nn.Module:
        """Channels removed by the problem's selection, from the base model or from `start` (only the groups
        whose counts differ from the start's are cut further)."""
        calibration = self.scorer.bn_batches if self.settings.selection.startswith("lstsq") else None
        model, table, kept = self.model, self.table, dict(decisions)
        reference: ReferenceCache | None = self._reference
        if start is not None:
            model, table, reference = start.model, start.table, None
            kept = {g: count for g, count in kept.items() if start.decisions.get(g) != count}
        return prune_network(
            model, table, kept, selection=self.settings.selection, calibration=calibration, reference=reference
        ).model

    @cached_property
    def _reference(self) -> ReferenceCache:
        """The base model's side of the least-squares refits, recorded once for the whole search."""
        return ReferenceCache()

    def score(
        self,
        decisions: Mapping[int, int],
        *,
        tune: Tune | None = None,
        start: PrunedModel | None = None,
        keep_weights: bool = False,
    ) -> Outcome:
        """Price, apply (from the base model or `start`), optionally tune, and score; `keep_weights` returns
        the scored network's weights in the outcome."""
        return self._score(decisions, lambda: self.apply(decisions, start), tune, keep_weights)

    def result(self, decisions: Mapping[int, int], metadata: StrategyMetadata) -> Strategy:
        return Strategy.from_kept_channels(self.table, dict(decisions), self.settings.round_to, metadata)

    def decisions_of(self, strategy: Strategy) -> dict[int, int]:
        """A strategy's kept channels as this problem's decisions (checked against the table)."""
        return strategy.kept_channels(self.table)
