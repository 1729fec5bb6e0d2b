"""The hard budget of a search, in the cost model's own unit, refused up front when it cannot be met."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol, TypeVar

from amc.errors import UserError
from hwmodel import CostModel

_Value_contra = TypeVar("_Value_contra", contravariant=True)


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


class Pricer(Protocol[_Value_contra]):
    """What a budget is resolved with: the cost model and a price for any decisions (an accountant)."""

    cost_model: CostModel
    dense_cost: float

    def cost(self, decisions: Mapping[int, _Value_contra], /) -> float: ...


def resolve_budget(
    pricer: Pricer[_Value_contra],
    minimum: Mapping[int, _Value_contra],
    value: float | None,
    ratio: float | None,
    lbound: float,
) -> Budget:
    """The budget in the cost model's unit (value, or ratio x dense cost), refused when even `minimum` misses it."""
    model = pricer.cost_model
    dense = pricer.dense_cost
    if value is None:
        if ratio is None:
            raise UserError("no budget given.", fix="set budget.ratio (e.g. 0.5) or budget.value.")
        value = ratio * dense
    smallest = pricer.cost(minimum)
    if smallest > value:
        raise UserError(
            f"the budget {value:.6g} {model.unit} ({100 * value / dense:.1f}% of the dense {dense:.6g} {model.unit} "
            f"by {model.name}) cannot be met: with every layer at lbound={lbound} the network still costs "
            f"{smallest:.6g} {model.unit} ({100 * smallest / dense:.1f}%).",
            fix=f"raise the budget to at least {smallest:.6g} {model.unit} (budget.ratio >= "
            f"{math.ceil(1000 * smallest / dense) / 1000}), or lower search.lbound.",
        )
    return Budget(model.metric, model.unit, float(value), dense, smallest)
