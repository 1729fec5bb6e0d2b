"""Joint pruning and quantization: per coupling group a keep ratio and the bits of its layers.

A step decides three numbers for one prunable coupling group: its kept channel count (as `ChannelProblem` does)
and one weight and one activation bit-width (HAQ's mapping, as `BitsProblem` does). The bits apply to every layer
of the group, that is every conv/linear whose output channels the group prunes together (a residual stage's
convs and its downsample share one pair); each such layer's input activations get the activation bits. Layers in
no prunable group (the classifier) have no decision and stay at full precision.

Budget clipping: with every later group at (lbound count, b_min, b_min), the wanted channel count is lowered
first, down to lbound; only when no count fits are the bits lowered (one bit at a time, off whichever lowers the
cost of the thinnest variant more) and the counts tried again.
A variant is the thinned network, then fake-quantized with ranges calibrated once on the float network (a
per-tensor range does not depend on the kept channels); it is priced on thinned specs carrying the bits
(`LayerBits.specs(table, kept)`). The result is a `JointResult`: a `Strategy` and a `LayerBits`.

Episode rows record each group's keep ratio (not its bits), so re-ranking, which rebuilds candidates from the
rows, does not apply; the best result is saved whole.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, NamedTuple

from torch import nn

from amc.errors import UserError
from amc.graph import Layer, LayerTable
from amc.problem.bits import BitPair, FakeQuantizedProblem, bits_action, haq_bits, lowering, normalised_bits
from amc.pruning import Strategy, StrategyMetadata, candidate_counts, round_channels
from amc.pruning.apply import prune_network
from amc.quantize.bits import LayerBits
from amc.quantize.fake import fake_quantize_
from hwmodel import CostModel


class JointDecision(NamedTuple):
    """A group's kept channels and its layers' weight and activation bit-widths."""

    kept: int
    weight: int
    activation: int

    @property
    def bits(self) -> BitPair:
        return BitPair(self.weight, self.activation)


class JointWanted(NamedTuple):
    """What a step's action asks for before the budget: a keep share and a bit pair."""

    keep: float
    bits: BitPair


@dataclass(frozen=True)
class JointResult:
    """The joint search's result: channels kept (a Strategy) and bit-widths (a LayerBits), saved side by side."""

    strategy: Strategy
    bits: LayerBits

    @staticmethod
    def bits_path(path: str | Path) -> Path:
        """Where the bits of a result saved at `path` go: `strategy` in the name becomes `bits`."""
        path = Path(path)
        name = path.name.replace("strategy", "bits") if "strategy" in path.name else f"{path.stem}.bits.json"
        return path.with_name(name)

    @classmethod
    def saved_at(cls, path: str | Path) -> bool:
        return Path(path).is_file() and cls.bits_path(path).is_file()

    def save(self, path: str | Path) -> None:
        self.strategy.save(path)
        self.bits.save(self.bits_path(path))

    @classmethod
    def load(cls, path: str | Path) -> JointResult:
        return cls(Strategy.load(path), LayerBits.load(cls.bits_path(path)))


def group_bits(table: LayerTable, decisions: Mapping[int, JointDecision]) -> LayerBits:
    """The decisions' bits per layer: each group's pair on each layer whose output channels the group prunes."""
    weights, activations = {}, {}
    for layer in table.layers:
        decision = decisions.get(layer.out_group) if layer.out_group is not None else None
        if decision is not None:
            weights[layer.name], activations[layer.name] = decision.weight, decision.activation
    return LayerBits(weights, activations, table.model_name)


class JointAccountant:
    """Cost of joint variants (group -> JointDecision) on thinned specs carrying the bits."""

    def __init__(self, table: LayerTable, cost_model: CostModel) -> None:
        self.table = table
        self.cost_model = cost_model
        self._cache: dict[tuple[int, int, int, BitPair | None], float] = {}
        self.overhead = cost_model.network_overhead(table.specs())
        self.dense_layer_costs = tuple(self.layer_cost(layer.index, {}) for layer in table.layers)
        self.dense_cost = self.cost({})

    def layer_cost(self, index: int, decisions: Mapping[int, JointDecision]) -> float:
        layer = self.table.layers[index]
        kept = {group: decision.kept for group, decision in decisions.items()}
        in_channels, out_channels = self.table.layer_channels(index, kept)
        decision = decisions.get(layer.out_group) if layer.out_group is not None else None
        bits = None if decision is None else decision.bits
        key = (index, in_channels, out_channels, bits)
        cost = self._cache.get(key)
        if cost is None:
            spec = layer.spec
            if (in_channels, out_channels) != (spec.in_channels, spec.out_channels):
                spec = spec.with_channels(in_channels, out_channels)
            if bits is not None:
                spec = spec.with_bits(*bits)
            cost = self._cache[key] = self.cost_model.layer_cost(spec)
        return cost

    def cost(self, decisions: Mapping[int, JointDecision]) -> float:
        return math.fsum(self.layer_cost(layer.index, decisions) for layer in self.table.layers) + self.overhead

    def largest_feasible(
        self, unit: int, values: Sequence[JointDecision], decisions: Mapping[int, JointDecision], limit: float
    ) -> JointDecision | None:
        """The first of `values` (most wanted first) for group `unit` whose variant costs <= limit."""
        return next((value for value in values if self.cost({**decisions, unit: value}) <= limit), None)


class JointProblem(FakeQuantizedProblem):
    """Kept channels and bit-widths per coupling group; a variant is thinned, then fake-quantized."""

    decision_size: ClassVar[int] = 3
    rows_rebuild: ClassVar[bool] = False

    def counts(self, unit: int) -> list[int]:
        s = self.settings
        return candidate_counts(self.table.groups[unit], s.round_to, s.lbound, s.rbound)

    def _units(self) -> tuple[int, ...]:
        order = tuple(group.index for group in self.table.prunable_groups)
        if not order:
            raise UserError(f"{self.table.model_name} has no prunable coupling group.", fix="check `amc inspect`.")
        return order

    def _values(self, unit: int) -> list[JointDecision]:
        low, high = self.bits_range
        bits = range(low, high + 1)
        return [JointDecision(kept, w, a) for kept in self.counts(unit) for w in bits for a in bits]

    def _accountant(self) -> JointAccountant:
        return JointAccountant(self.table, self.cost_model)

    def unit_layers(self, unit: int) -> list[Layer]:
        return [self.table.layer(name) for name in self.table.groups[unit].layers]

    def ratio(self, unit: int, value: JointDecision) -> float:
        return value.kept / self.table.groups[unit].channels

    def snap(self, unit: int, wanted: Any) -> JointDecision:
        """The wanted share rounded down to an allowed count (the smallest if none is), bits as wanted."""
        group = self.table.groups[unit]
        count = round_channels(wanted.keep, group.channels, self.settings.round_to, group.divisor)
        counts = self.counts(unit)
        return JointDecision(max((c for c in counts if c <= count), default=counts[0]), *wanted.bits)

    def wanted(self, step: int, action: Sequence[float]) -> Any:
        """The keep share and HAQ's bits of the step's three actions, as a JointWanted (typed Any: the base wants
        one share)."""
        low, high = self.bits_range
        bits = BitPair(haq_bits(float(action[1]), low, high), haq_bits(float(action[2]), low, high))
        return JointWanted(self.bounds.value(float(action[0])), bits)

    def executed_action(self, step: int, value: JointDecision) -> list[float]:
        low, high = self.bits_range
        keep = self.bounds.action(self.ratio(self.order[step], value))
        return [keep, bits_action(value.weight, low, high), bits_action(value.activation, low, high)]

    def clip(self, step: int, decided: Mapping[int, JointDecision], wanted: Any) -> JointDecision:
        """The JointWanted's channels lowered first, then its bits, until the budget stays reachable with every
        later group at its minimum (lbound count, b_min bits)."""
        unit = self.order[step]
        low = self.bits_range[0]
        trial = {**decided, **{later: self.candidates[later][0] for later in self.order[step + 1 :]}}
        top = self.snap(unit, wanted).kept
        counts = [count for count in reversed(self.counts(unit)) if count <= top]

        def thinnest(pair: BitPair) -> float:
            return self.cost({**trial, unit: JointDecision(counts[-1], *pair)})

        for pair in lowering(wanted.bits, low, thinnest):
            options = [JointDecision(count, *pair) for count in counts]
            found = self.accountant.largest_feasible(unit, options, trial, self.budget.value)
            if found is not None:
                return found
        return self.candidates[unit][0]

    def observation_extras(self, value: JointDecision | None) -> tuple[float, ...]:
        if value is None:
            return (1.0, 1.0)
        low, high = self.bits_range
        return (normalised_bits(value.weight, low, high), normalised_bits(value.activation, low, high))

    def kept(self, decisions: Mapping[int, JointDecision]) -> dict[int, int]:
        return {group: decision.kept for group, decision in decisions.items()}

    def apply(self, decisions: Mapping[int, JointDecision]) -> nn.Module:
        calibration = self.scorer.bn_batches if self.settings.selection.startswith("lstsq") else None
        thinned = prune_network(
            self.model, self.table, self.kept(decisions), selection=self.settings.selection, calibration=calibration
        ).model
        return fake_quantize_(thinned, group_bits(self.table, decisions), self.ranges)

    def result(self, decisions: Mapping[int, JointDecision], metadata: StrategyMetadata) -> JointResult:
        strategy = Strategy.from_kept_channels(self.table, self.kept(decisions), self.settings.round_to, metadata)
        return JointResult(strategy, group_bits(self.table, decisions))
