"""The pruning problem every search method works on: decisions, budget, cost, clipping, apply and score.

A problem is an ordered list of decision units (coupling groups, or layers), each with its allowed values on a
staircase (channel counts, or densities), a hard budget by one cost model, and a scorer. Methods decide values
and ask the problem to price, clip, apply and score them; the Gymnasium env is a thin adapter that turns each
step's action into one decision. `ChannelProblem` and `DensityProblem` share everything here. A later problem
with more than one number per decision (a keep ratio and bit-widths) sets `decision_size` and overrides `wanted`,
`executed_action`, `snap`, `apply` and `result`; the env sizes its action space from `decision_size`, so neither
it nor the methods change.

Methods that draw decisions (the agent, random, Bayesian) give them as normalised actions in [-1, 1] (`Bounds`:
-1 is lbound, 1 is rbound) and let `clip` keep the budget reachable; methods that choose values (uniform,
sensitivity, NetAdapt) hand them to `score` directly.
"""

from __future__ import annotations

import math
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import ClassVar, Generic, TypeVar

from torch import nn

from amc.config import BITS_RANGE_TEXT, bits_range_ok
from amc.errors import UserError
from amc.graph import Layer, LayerTable
from amc.problem.accounting import Accountant
from amc.problem.budget import Budget, resolve_budget
from amc.problem.outcome import Outcome, Result
from amc.problem.scoring import Scorer
from amc.pruning import StrategyMetadata
from hwmodel import CostModel

V = TypeVar("V", int, float)
Tune = Callable[[nn.Module], object]
"""Work done on a pruned network before it is scored (NetAdapt's short-term fine-tune)."""


def accuracy_reward(accuracy: float, cost: float, metric: str) -> float:
    """AMC's default: the budget is enforced by clipping, so the reward is accuracy alone."""
    return accuracy


def error_log_cost_reward(accuracy: float, cost: float, metric: str) -> float:
    """AMC's -error * log(cost); latency in microseconds and energy in microjoules keep the log positive."""
    scale = 1000.0 if metric in ("latency", "energy") else 1.0
    return -(1.0 - accuracy) * math.log(max(cost * scale, 1.0 + 1e-9))


REWARDS: dict[str, Callable[[float, float, str], float]] = {
    "acc": accuracy_reward,
    "error_log_cost": error_log_cost_reward,
}


@dataclass(frozen=True)
class Bounds:
    """A decision's range and its normalised scale: -1 is `low`, 1 is `high`."""

    low: float
    high: float

    def value(self, action: float) -> float:
        """The decision for a normalised action (clipped to [-1, 1])."""
        action = min(1.0, max(-1.0, action))
        return self.low + (action + 1.0) / 2.0 * (self.high - self.low)

    def action(self, value: float) -> float:
        """The normalised action of a decision (clipped to [-1, 1]; rounding may go slightly below `low`)."""
        if self.high == self.low:
            return 1.0
        return min(1.0, max(-1.0, 2.0 * (value - self.low) / (self.high - self.low) - 1.0))


@dataclass(frozen=True)
class Settings:
    """How a problem discretises, prunes and rewards (from the config's search section)."""

    lbound: float = 0.2
    rbound: float = 1.0
    round_to: int = 8
    reward: str = "acc"
    selection: str = "l1"
    bits_range: tuple[int, int] = (2, 8)
    """Bit-widths a mixed-precision problem searches, [b_min, b_max] (HAQ's [2, 8])."""

    def __post_init__(self) -> None:
        if not bits_range_ok(self.bits_range):
            raise UserError(
                f"search.bits_range is {self.bits_range!r}; it must be {BITS_RANGE_TEXT}.", fix="e.g. [2, 8]."
            )
        if self.reward not in REWARDS:
            raise UserError(f"search.reward {self.reward!r} is not known.", fix=f"use one of {', '.join(REWARDS)}.")
        if not 0.0 < self.lbound <= self.rbound <= 1.0:
            raise UserError(
                f"search.lbound={self.lbound} / rbound={self.rbound} are not 0 < lbound <= rbound <= 1.",
                fix="e.g. lbound: 0.2, rbound: 1.0.",
            )


class PruningProblem(ABC, Generic[V]):
    """Decisions per unit under a hard budget; subclasses say what a unit is, its values and how they apply."""

    decision_size: ClassVar[int] = 1
    """Numbers an agent gives per step (one keep ratio here; a joint keep + bit-width problem would give more)."""
    observation_fields: ClassVar[tuple[str, ...]] = ()
    rows_rebuild: ClassVar[bool] = True
    """Whether a decision is rebuilt from its logged keep share (`ratio` is one-to-one), so a search's best few
    candidates can be re-scored from episodes.csv after it (a joint decision logs its keep share only)."""
    """What the env observes beyond AMC's 13 fields (HAQ's previous bit-widths for a mixed-precision problem)."""
    order: tuple[int, ...]
    """Decision units in step order (group or layer indices)."""
    candidates: dict[int, list[V]]
    """Allowed values per unit, ascending."""
    budget: Budget

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
        self.model, self.table, self.scorer, self.cost_model = model, table, scorer, cost_model
        self.settings = settings
        self.bounds = Bounds(settings.lbound, settings.rbound)
        self.metadata = metadata or StrategyMetadata(model=table.model_name, input_size=table.input_size)
        self._reward = REWARDS[settings.reward]
        self.order = self._units()
        self.candidates = {unit: self._values(unit) for unit in self.order}
        self.accountant: Accountant[V] = self._accountant()
        self.budget = resolve_budget(self.accountant, self.minimum, budget_value, budget_ratio, settings.lbound)

    # ----------------------------------------------------------------- what a subclass defines

    @abstractmethod
    def _units(self) -> tuple[int, ...]:
        """The decision units in step order."""

    @abstractmethod
    def _values(self, unit: int) -> list[V]:
        """A unit's allowed values, ascending."""

    @abstractmethod
    def _accountant(self) -> Accountant[V]:
        """What the problem prices with."""

    @abstractmethod
    def unit_layers(self, unit: int) -> list[Layer]:
        """The layers one decision covers, leader first."""

    @abstractmethod
    def ratio(self, unit: int, value: V) -> float:
        """The share a decision keeps (kept / channels, or the density itself)."""

    @abstractmethod
    def snap(self, unit: int, wanted: float) -> V:
        """The allowed value a wanted share rounds to (before the budget is considered)."""

    @abstractmethod
    def apply(self, decisions: Mapping[int, V]) -> nn.Module:
        """The decided variant as a new network; the problem's model is not touched."""

    @abstractmethod
    def result(self, decisions: Mapping[int, V], metadata: StrategyMetadata) -> Result:
        """The decisions as a strategy (or densities) against the original layer table."""

    # ----------------------------------------------------------------- shared

    @property
    def names(self) -> tuple[str, ...]:
        """What each step decides, by name: the unit's leader layer."""
        return tuple(self.unit_layers(unit)[0].name for unit in self.order)

    @property
    def minimum(self) -> dict[int, V]:
        return {unit: self.candidates[unit][0] for unit in self.order}

    @property
    def dense_cost(self) -> float:
        return self.accountant.dense_cost

    @property
    def dense_layer_costs(self) -> tuple[float, ...]:
        return self.accountant.dense_layer_costs

    def cost(self, decisions: Mapping[int, V]) -> float:
        return self.accountant.cost(decisions)

    def largest_feasible(self, unit: int, values: list[V], decisions: Mapping[int, V], limit: float) -> V | None:
        """The largest of `values` for `unit` (others as in `decisions`) whose variant costs <= limit."""
        return self.accountant.largest_feasible(unit, values, decisions, limit)

    def wanted(self, step: int, action: Sequence[float]) -> float:
        """The share a step's normalised action (`decision_size` numbers in [-1, 1]) asks for."""
        return self.bounds.value(float(action[0]))

    def executed_action(self, step: int, value: V) -> list[float]:
        """The normalised action that gives `value` at `step` (what was really done, for the agent's replay)."""
        return [self.bounds.action(self.ratio(self.order[step], value))]

    def observation_extras(self, value: V | None) -> tuple[float, ...]:
        """The `observation_fields` after a step decided `value` (None: before the first step), in [0, 1]."""
        return ()

    def clip(self, step: int, decided: Mapping[int, V], wanted: float) -> V:
        """AMC's action wall on the staircase: the largest allowed value <= the wanted share that keeps the
        budget reachable with every later unit at its minimum (never below the unit's minimum)."""
        unit = self.order[step]
        values = self.candidates[unit]
        trial = {**decided, **{later: values_[0] for later, values_ in self._later(step)}}
        feasible = self.largest_feasible(unit, values, trial, self.budget.value)
        ceiling = values[0] if feasible is None else feasible
        snapped = self.snap(unit, wanted)
        return max(values[0], min(max(v for v in values if v <= max(snapped, values[0])), ceiling))

    def _later(self, step: int) -> list[tuple[int, list[V]]]:
        return [(unit, self.candidates[unit]) for unit in self.order[step + 1 :]]

    def keep_ratios(self, decisions: Mapping[int, V]) -> tuple[float, ...]:
        """Per step: the share kept (units not decided keep everything)."""
        return tuple(self.ratio(unit, decisions[unit]) if unit in decisions else 1.0 for unit in self.order)

    def reward(self, accuracy: float, cost: float) -> float:
        return self._reward(accuracy, cost, self.budget.metric)

    def accuracy(self, model: nn.Module) -> float:
        """The scorer's accuracy of `model` (BN re-estimated first where the scorer does so)."""
        return float(self.scorer(model))

    def outcome(
        self, decisions: Mapping[int, V], cost: float, accuracy: float, timings: dict[str, float], wall_s: float
    ) -> Outcome:
        """The bookkeeping of a scored variant: reward, result with its metadata, per-step keep ratios."""
        metadata = replace(
            self.metadata, budget_metric=self.budget.metric, budget=self.budget.value, cost=cost,
            dense_cost=self.budget.dense_cost, accuracy=accuracy,
        )  # fmt: skip
        return Outcome(
            dict(decisions), self.keep_ratios(decisions), cost, accuracy, self.reward(accuracy, cost),
            self.result(decisions, metadata), timings, wall_s,
        )  # fmt: skip

    def score(self, decisions: Mapping[int, V], *, tune: Tune | None = None) -> Outcome:
        """Price, apply, optionally tune, and score the decisions."""
        return self._score(decisions, lambda: self.apply(decisions), tune, keep_weights=False)

    def _score(
        self, decisions: Mapping[int, V], build: Callable[[], nn.Module], tune: Tune | None, keep_weights: bool
    ) -> Outcome:
        tick = time.perf_counter()
        cost = self.cost(decisions)
        timings = {"cost_s": time.perf_counter() - tick}
        network = build()
        timings["prune_s"] = time.perf_counter() - tick - timings["cost_s"]
        if tune is not None:
            tune(network)
            timings["tune_s"] = time.perf_counter() - tick - sum(timings.values())
        accuracy = self.accuracy(network)
        timings["eval_s"] = time.perf_counter() - tick - sum(timings.values())
        outcome = self.outcome(decisions, cost, accuracy, timings, time.perf_counter() - tick)
        if keep_weights:
            weights = {name: value.detach().clone() for name, value in network.state_dict().items()}
            outcome = replace(outcome, weights=weights)
        return outcome
