"""Mixed precision (HAQ): one decision per conv/linear layer, the bits of its weights and of its input activations.

Each step takes two normalised actions in [-1, 1] and maps each, as HAQ does, to
`round(b_min - 0.5 + a * (b_max - b_min + 1))` (a in [0, 1], clamped to [b_min, b_max] = search.bits_range). The
budget is enforced by clipping, like AMC's action wall: before a layer's bits are used they are lowered one bit at
a time (off whichever lowers the cost more; on a tie the wider, weights first) until, with every later layer at
b_min, the budget can still be met. A variant is the fake-quantized network (amc.quantize.fake), activation
ranges calibrated once on the scorer's training images; it is priced on `LayerSpec.with_bits`, so the cost model
must read bits (a size, bit-aware energy or bit-serial model). The result is a `LayerBits`.

Episode rows record, per layer, the code `w / 10 + a / 100` (0.84: 8-bit weights, 4-bit activations): a number
in [0, 1] that names both bit-widths, so a row rebuilds its decisions exactly.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, ClassVar, NamedTuple

from torch import nn

from amc.errors import UserError
from amc.graph import Layer, LayerTable
from amc.problem.base import PruningProblem
from amc.pruning import StrategyMetadata
from amc.quantize.bits import LayerBits
from amc.quantize.fake import ActivationRanges, calibrate, fake_quantize
from hwmodel import CostModel


class BitPair(NamedTuple):
    """A layer's weight and input-activation bit-widths."""

    weight: int
    activation: int


def haq_bits(action: float, low: int, high: int) -> int:
    """HAQ's action -> bits for a normalised action in [-1, 1] (clipped), clamped to [low, high]."""
    share = (min(1.0, max(-1.0, action)) + 1.0) / 2.0
    return int(min(high, max(low, round(low - 0.5 + share * (high - low + 1)))))


def bits_action(bits: int, low: int, high: int) -> float:
    """The normalised action at the middle of the interval that maps to `bits` (the inverse of `haq_bits`)."""
    share = (bits - low + 0.5) / (high - low + 1)
    return 2.0 * share - 1.0


def lowering(start: BitPair, low: int, cost: Callable[[BitPair], float]) -> Iterator[BitPair]:
    """`start`, then one bit less at a time down to (low, low): off whichever of the two makes `cost` lower (on a
    tie the wider, weights on a tie of widths), so bits the cost model does not price are the last to go."""
    pair = start
    yield pair
    while pair.weight > low or pair.activation > low:
        options = [
            option
            for option in (BitPair(pair.weight - 1, pair.activation), BitPair(pair.weight, pair.activation - 1))
            if min(option) >= low
        ]
        pair = min(options, key=lambda option: (cost(option), -min(option)))
        yield pair


def bits_code(pair: BitPair) -> float:
    """The per-layer number of an episode row: tenths the weight bits, hundredths the activation bits."""
    return round(pair.weight / 10 + pair.activation / 100, 2)


def normalised_bits(bits: int, low: int, high: int) -> float:
    return 1.0 if high == low else (bits - low) / (high - low)


class BitsAccountant:
    """Cost of bit-width variants (layer -> BitPair; layers absent stay float) by a bit-aware cost model."""

    def __init__(self, table: LayerTable, cost_model: CostModel) -> None:
        self.cost_model = cost_model
        self._specs = table.specs()
        self._cache: dict[tuple[int, BitPair | None], float] = {}
        self.overhead = cost_model.network_overhead(self._specs)
        self.dense_layer_costs = tuple(self.layer_cost(index, None) for index in range(len(self._specs)))
        self.dense_cost = self.cost({})

    def layer_cost(self, index: int, pair: BitPair | None) -> float:
        key = (index, pair)
        cost = self._cache.get(key)
        if cost is None:
            spec = self._specs[index] if pair is None else self._specs[index].with_bits(*pair)
            cost = self._cache[key] = self.cost_model.layer_cost(spec)
        return cost

    def cost(self, decisions: Mapping[int, BitPair]) -> float:
        layers = range(len(self._specs))
        return math.fsum(self.layer_cost(index, decisions.get(index)) for index in layers) + self.overhead

    def largest_feasible(
        self, unit: int, values: Sequence[BitPair], decisions: Mapping[int, BitPair], limit: float
    ) -> BitPair | None:
        """The first of `values` (most wanted first) for layer `unit` whose variant costs <= limit."""
        others = self.cost(decisions) - self.layer_cost(unit, decisions.get(unit))
        return next((pair for pair in values if others + self.layer_cost(unit, pair) <= limit), None)


def refuse_bit_blind(accountant: BitsAccountant, lowest: Mapping[int, BitPair], low: int) -> None:
    """A cost model that prices the lowest bits as the float network cannot steer a bit-width search."""
    if accountant.cost(lowest) >= accountant.dense_cost:
        model = accountant.cost_model
        raise UserError(
            f"cost model {model.name} does not price bit-widths: the network at {low} bits costs as much as at "
            f"32 bits ({accountant.dense_cost:.6g} {model.unit}).",
            fix="use a cost model that reads LayerSpec bits (`amc list cost-models`: size, energy, bitserial:...).",
        )


class FakeQuantizedProblem(PruningProblem[Any]):
    """What the bits and joint problems share: activation ranges calibrated once per search on the scorer's
    training images, the bit-width range, and HAQ's previous-bits observation."""

    observation_fields: ClassVar[tuple[str, ...]] = ("previous_weight_bits", "previous_activation_bits")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.ranges: ActivationRanges = calibrate(
            self.model, [layer.name for layer in self.table.layers], self.scorer.bn_batches
        )

    @property
    def bits_range(self) -> tuple[int, int]:
        low, high = self.settings.bits_range
        return low, high


class BitsProblem(FakeQuantizedProblem):
    """Weight and activation bits per conv/linear layer; a variant is the fake-quantized network."""

    decision_size: ClassVar[int] = 2

    def _units(self) -> tuple[int, ...]:
        return tuple(layer.index for layer in self.table.layers)

    def _values(self, unit: int) -> list[BitPair]:
        low, high = self.settings.bits_range
        return [BitPair(w, a) for w in range(low, high + 1) for a in range(low, high + 1)]

    def _accountant(self) -> BitsAccountant:
        accountant = BitsAccountant(self.table, self.cost_model)
        low = self.bits_range[0]
        refuse_bit_blind(accountant, {unit: BitPair(low, low) for unit in self.order}, low)
        return accountant

    def unit_layers(self, unit: int) -> list[Layer]:
        return [self.table.layers[unit]]

    def ratio(self, unit: int, value: BitPair) -> float:
        return bits_code(value)

    def snap(self, unit: int, wanted: Any) -> BitPair:
        """Bits are already whole: the wanted pair itself."""
        return BitPair(*wanted)

    def wanted(self, step: int, action: Sequence[float]) -> Any:
        """HAQ's bits for the step's two actions, as a BitPair (typed Any: the base wants one share)."""
        low, high = self.bits_range
        return BitPair(haq_bits(float(action[0]), low, high), haq_bits(float(action[1]), low, high))

    def executed_action(self, step: int, value: BitPair) -> list[float]:
        low, high = self.bits_range
        return [bits_action(value.weight, low, high), bits_action(value.activation, low, high)]

    def clip(self, step: int, decided: Mapping[int, BitPair], wanted: Any) -> BitPair:
        """The wanted bits (a BitPair), lowered until the budget stays reachable with every later layer at b_min."""
        wanted = BitPair(*wanted)
        low = self.bits_range[0]
        unit = self.order[step]
        trial = {**decided, **{later: BitPair(low, low) for later in self.order[step + 1 :]}}
        path = list(lowering(wanted, low, lambda pair: self.cost({**trial, unit: pair})))
        found = self.accountant.largest_feasible(unit, path, trial, self.budget.value)
        return BitPair(low, low) if found is None else found

    def observation_extras(self, value: BitPair | None) -> tuple[float, ...]:
        if value is None:
            return (1.0, 1.0)
        low, high = self.bits_range
        return (normalised_bits(value.weight, low, high), normalised_bits(value.activation, low, high))

    def layer_bits(self, decisions: Mapping[int, BitPair]) -> LayerBits:
        names = {index: self.table.layers[index].name for index in decisions}
        return LayerBits(
            {names[i]: pair.weight for i, pair in decisions.items()},
            {names[i]: pair.activation for i, pair in decisions.items()},
            self.table.model_name,
        )

    def apply(self, decisions: Mapping[int, BitPair]) -> nn.Module:
        return fake_quantize(self.model, self.layer_bits(decisions), self.ranges)

    def result(self, decisions: Mapping[int, BitPair], metadata: StrategyMetadata) -> LayerBits:
        return self.layer_bits(decisions)
