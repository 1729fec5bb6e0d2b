"""The hard budget of a search, in the cost model's own unit, refused up front when it cannot be met."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TypeVar

from amc.errors import UserError
from amc.problem.accounting import Accountant

V = TypeVar("V", int, float)


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


def check_budget(value: float | None, ratio: float | None) -> None:
    """Refuse a budget no search can mean: budget.value must be a positive finite number, budget.ratio a share of
    the dense cost in (0, 1] (NaN fails every comparison, so it is refused too)."""
    if value is not None and not (isinstance(value, (int, float)) and 0 < value < math.inf):
        raise UserError(
            f"budget.value is {value!r}; it must be a positive finite number in the cost model's unit.",
            fix="set budget.value to the budget in the cost model's unit (e.g. 0.5 for 0.5 ms), or unset it and "
            "use budget.ratio.",
        )
    if ratio is not None and not (isinstance(ratio, (int, float)) and 0 < ratio <= 1):
        raise UserError(
            f"budget.ratio is {ratio!r}; it must be a share of the dense model's cost in (0, 1].",
            fix="set budget.ratio to a number such as 0.5 (half the dense cost).",
        )


def resolve_budget(
    accountant: Accountant[V],
    minimum: Mapping[int, V],
    value: float | None,
    ratio: float | None,
    lbound: float,
) -> Budget:
    """The budget in the cost model's unit (value, or ratio x dense cost), refused when even `minimum` misses it."""
    model = accountant.cost_model
    dense = accountant.dense_cost
    check_budget(value, ratio)
    smallest = accountant.cost(minimum)
    if not 0 < dense < math.inf or not 0 <= smallest < math.inf:
        raise UserError(
            f"{model.name} prices the dense network at {dense:.6g} {model.unit} and the smallest at "
            f"{smallest:.6g} {model.unit}: a cost must be positive and finite (a LUT with a "
            "negative offset larger than the network's latency, or a broken cost model, gives this).",
            fix="rebuild or recalibrate the latency table on this machine (amc lut build / amc lut calibrate), or "
            "use another cost model.",
        )
    if value is None:
        if ratio is None:
            raise UserError("no budget given.", fix="set budget.ratio (e.g. 0.5) or budget.value.")
        value = ratio * dense
    if smallest > value:
        raise UserError(
            f"the budget {value:.6g} {model.unit} ({100 * value / dense:.1f}% of the dense {dense:.6g} {model.unit} "
            f"by {model.name}) cannot be met: with every layer at lbound={lbound} the network still costs "
            f"{smallest:.6g} {model.unit} ({100 * smallest / dense:.1f}%).",
            fix=f"raise the budget to at least {smallest:.6g} {model.unit} (budget.ratio >= "
            f"{math.ceil(1000 * smallest / dense) / 1000}), or lower search.lbound.",
        )
    return Budget(model.metric, model.unit, float(value), dense, smallest)
