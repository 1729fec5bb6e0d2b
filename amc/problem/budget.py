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
