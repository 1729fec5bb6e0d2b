"""AMC's pruning environment: a thin Gymnasium adapter over any pruning problem (amc.problem).

One episode is one pass over the problem's decision units (coupling groups, or layers for the element-wise
problem). Observation: the layer embedding of the unit about to be decided (Distiller's 13 fields: index, op,
in/out channels, H, W, stride, kernel, MACs, params, reduced, rest, previous action), static columns min-max
normalised across the units, `reduced`/`rest` in the budget's own unit; a problem's `observation_fields` follow
(HAQ's previous weight and activation bits for bit-width problems; none for channels or densities, whose
observation is unchanged), then, for a budget-conditioned env (`observe_budget`), the budget as a share of the dense
cost. With `budget_range` each episode draws that share uniformly from the range, from (seed, episode index) so a
resumed run draws what it would have (`episodes` is the index of the next episode), and sets it as the problem's
budget before the first step. Action: `problem.decision_size` values in [-1, 1] (one keep ratio or density, or
keep and bits), mapped to the unit's decision by the problem and clipped by it so
that the budget stays reachable. After the last unit the problem scores the decisions; the reward is the outcome's.
With `score_episodes=False` the last step leaves the scoring to the caller (parallel AMC scores a batch of episodes
on workers): its reward is 0 and its info carries the decisions, the budget and the clipping's seconds instead.

The env is handed a ready problem; it reads no files and builds no loaders. `envs.factory` builds one from a
config for `gymnasium.make`.
"""

from __future__ import annotations

import math
import time
from dataclasses import replace
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from amc.errors import UserError
from amc.problem import PruningProblem
from hwmodel.spec import OPS

OBSERVATION_FIELDS = (
    "index", "op", "in_channels", "out_channels", "h", "w", "stride", "kernel", "macs", "params",
    "reduced", "rest", "previous_keep",
)  # fmt: skip


class ChannelPruningEnv(gym.Env):
    """Per-unit decisions under the problem's hard budget; reward from the scored pruned network."""

    metadata = {"render_modes": []}

    def __init__(
        self,
        problem: PruningProblem,
        budget_range: tuple[float, float] | None = None,
        seed: int = 0,
        observe_budget: bool | None = None,
        score_episodes: bool = True,
    ) -> None:
        super().__init__()
        self.problem = problem
        self.budget_range = budget_range
        self.seed = seed
        self.observe_budget = budget_range is not None if observe_budget is None else observe_budget
        self.episodes = 0
        self.score_episodes = score_episodes
        if budget_range is not None:
            check_budget_range(problem, budget_range)
        self._static = self._static_features()
        self._rest = self._rest_costs()
        fields = len(OBSERVATION_FIELDS) + len(problem.observation_fields) + self.observe_budget
        self.observation_space = spaces.Box(0.0, 1.0, shape=(fields,), dtype=np.float32)
        self.action_space = spaces.Box(-1.0, 1.0, shape=(problem.decision_size,), dtype=np.float32)
        self._step = 0
        self._decided: dict[int, Any] = {}
        self._previous_keep = 1.0
        self._extras = problem.observation_extras(None)
        self._clip_seconds = 0.0

    def _static_features(self) -> np.ndarray:
        rows = []
        for step, unit in enumerate(self.problem.order):
            members = self.problem.unit_layers(unit)
            spec = members[0].spec
            rows.append([
                step, OPS.index(spec.op), spec.in_channels, spec.out_channels, spec.in_hw[0], spec.in_hw[1],
                spec.stride[0], spec.kernel[0], sum(m.macs for m in members), sum(m.params for m in members),
            ])  # fmt: skip
        features = np.asarray(rows, dtype=np.float64)
        low, high = features.min(axis=0), features.max(axis=0)
        span = np.where(high > low, high - low, 1.0)
        return ((features - low) / span).astype(np.float32)

    def _rest_costs(self) -> list[float]:
        """Per step: the dense cost of every layer after the unit's last one, as a share of the dense cost."""
        dense, layer_costs = self.problem.dense_cost, self.problem.dense_layer_costs
        last = [max(layer.index for layer in self.problem.unit_layers(unit)) for unit in self.problem.order]
        return [sum(layer_costs[index + 1 :]) / dense for index in last]

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        if self.budget_range is not None:
            low, high = self.budget_range
            ratio = float(np.random.default_rng((self.seed, self.episodes)).uniform(low, high))
            self.problem.budget = replace(self.problem.budget, value=ratio * self.problem.dense_cost)
        self.episodes += 1
        self._step = 0
        self._decided = {}
        self._previous_keep = 1.0
        self._extras = self.problem.observation_extras(None)
        self._clip_seconds = 0.0
        return self._get_obs(), {}

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict]:
        problem = self.problem
        unit = problem.order[self._step]
        wanted = problem.wanted(self._step, np.asarray(action, dtype=np.float64).reshape(-1).tolist())
        tick = time.perf_counter()
        value = problem.clip(self._step, self._decided, wanted)
        self._clip_seconds += time.perf_counter() - tick
        self._decided[unit] = value
        self._previous_keep = problem.ratio(unit, value)
        self._extras = problem.observation_extras(value)
        info: dict[str, Any] = {"executed_action": np.array(problem.executed_action(self._step, value), np.float32)}
        self._step += 1
        if self._step < len(problem.order):
            return self._get_obs(), 0.0, False, False, info
        info["budget"] = problem.budget.value
        if not self.score_episodes:
            info.update(decisions=dict(self._decided), clip_s=self._clip_seconds)
            return self._get_obs(), 0.0, True, False, info
        outcome = problem.score(self._decided)
        cost_s = outcome.timings["cost_s"] + self._clip_seconds  # the clipping's cost queries count as pricing
        info["outcome"] = replace(outcome, timings={**outcome.timings, "cost_s": cost_s})
        return self._get_obs(), outcome.reward, True, False, info

    def _get_obs(self) -> np.ndarray:
        step = min(self._step, len(self.problem.order) - 1)
        dense = self.problem.dense_cost
        reduced = (dense - self.problem.cost(self._decided)) / dense
        budget = (self.problem.budget.ratio,) if self.observe_budget else ()
        dynamic = np.clip(
            np.array([reduced, self._rest[step], self._previous_keep, *self._extras, *budget], dtype=np.float32),
            0.0,
            1.0,
        )
        return np.concatenate([self._static[step], dynamic]).astype(np.float32)


def check_budget_range(problem: PruningProblem, budget_range: tuple[float, float]) -> None:
    """Refuse a range whose low end no strategy can meet (every unit at its minimum still costs more)."""
    low, high = budget_range
    if not (math.isfinite(low) and math.isfinite(high) and 0 < low <= high <= 1):
        raise UserError(
            f"agent.budget_range is {list(budget_range)}; it must be [lo, hi] with 0 < lo <= hi <= 1.",
            fix="e.g. agent.budget_range: [0.3, 0.8].",
        )
    smallest = problem.budget.min_cost / problem.dense_cost
    if low * problem.dense_cost < problem.budget.min_cost:
        raise UserError(
            f"agent.budget_range starts at {low}, but with every unit at its minimum the network still costs "
            f"{smallest:.3f} of the dense cost.",
            fix=f"raise agent.budget_range's low end to at least {math.ceil(1000 * smallest) / 1000}, or lower "
            "search.lbound.",
        )
