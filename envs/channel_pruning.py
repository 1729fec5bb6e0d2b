"""AMC's channel-pruning environment: one episode = one pass over the prunable coupling groups.

Observation: the layer embedding of the group about to be decided (Distiller's 13 fields: index, op, in/out
channels, H, W, stride, kernel, MACs, params, reduced, rest, previous action), static columns min-max
normalised across the groups, `reduced`/`rest` in the budget's own unit. Action: one value in [-1, 1], mapped
inside to a keep ratio in [lbound, rbound] and then clipped so that the budget stays reachable with every later
group at its minimum — searched over the discrete channel counts, since a latency LUT is a staircase. After the
last group the strategy is applied (channels really removed), scored by the evaluator and rewarded.

With `granularity="element"` one step is one conv/linear layer and the action is its weight density: the
smallest-magnitude weights are zeroed instead of channels removed, the budget is priced on
`LayerSpec.with_density` (meaningful with a zero-skipping `sparse:<base>` cost model; see envs/element_wise.py)
and `info["strategy"]` is the episode's `LayerDensities`.

The env is handed everything it needs (model, layer table, evaluator, cost model); it reads no files and
builds no loaders. `envs.factory` builds one from a config for `gymnasium.make`.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Iterable
from dataclasses import replace
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from torch import Tensor, nn

from amc.errors import UserError
from amc.graph import Layer, LayerTable
from amc.pruning import LayerDensities, Strategy, StrategyMetadata, round_channels, thin
from amc.pruning.finegrained import apply_masks_, magnitude_masks, remove_masks_
from amc.search.accounting import CostAccountant, candidate_counts, resolve_budget
from envs.element_wise import DensityAccountant, density_grid, snap_density
from hwmodel import CostModel
from hwmodel.spec import OPS

REWARDS = ("acc", "error_log_cost")
GRANULARITIES = ("channel", "element")
OBSERVATION_FIELDS = (
    "index", "op", "in_channels", "out_channels", "h", "w", "stride", "kernel", "macs", "params",
    "reduced", "rest", "previous_keep",
)  # fmt: skip
_STATIC = 10  # the first ten fields do not change within an episode


class ChannelPruningEnv(gym.Env):
    """Per-group keep ratios under a hard budget; reward from search-val accuracy of the pruned network."""

    metadata = {"render_modes": []}

    def __init__(
        self,
        model: nn.Module,
        table: LayerTable,
        evaluator: Callable[[nn.Module], float],
        cost_model: CostModel,
        budget: float | None = None,
        budget_ratio: float | None = 0.5,
        lbound: float = 0.2,
        rbound: float = 1.0,
        round_to: int = 8,
        reward: str = "acc",
        selection: str = "l1",
        calibration: Iterable[Tensor] | None = None,
        metadata: StrategyMetadata | None = None,
        granularity: str = "channel",
    ) -> None:
        super().__init__()
        if reward not in REWARDS:
            raise UserError(f"search.reward {reward!r} is not known.", fix=f"use one of {', '.join(REWARDS)}.")
        if granularity not in GRANULARITIES:
            raise UserError(f"granularity {granularity!r} is not known.", fix=f"use one of {', '.join(GRANULARITIES)}.")
        if not 0.0 < lbound <= rbound <= 1.0:
            raise UserError(
                f"search.lbound={lbound} / rbound={rbound} are not 0 < lbound <= rbound <= 1.",
                fix="e.g. lbound: 0.2, rbound: 1.0.",
            )
        self.model, self.table, self.evaluator = model, table, evaluator
        self.lbound, self.rbound, self.round_to = lbound, rbound, round_to
        self.reward_name, self.selection, self.calibration = reward, selection, calibration
        self.granularity = granularity
        self.accountant: CostAccountant | DensityAccountant
        if granularity == "element":
            self.order = [layer.index for layer in table.layers]
            self.counts: dict[int, list] = {index: density_grid(lbound, rbound) for index in self.order}
            self.accountant = DensityAccountant(table, cost_model)
        else:
            self.order = [group.index for group in table.prunable_groups]
            if not self.order:
                raise UserError(f"{table.model_name} has no prunable coupling group.", fix="check `amc inspect`.")
            self.counts = {g: candidate_counts(table.groups[g], round_to, lbound, rbound) for g in self.order}
            self.accountant = CostAccountant(table, cost_model)
        self.minimum = {g: self.counts[g][0] for g in self.order}
        self.budget = resolve_budget(self.accountant, self.minimum, budget, budget_ratio, lbound)
        self.metadata_template = metadata or StrategyMetadata(model=table.model_name, input_size=table.input_size)
        self._static = self._static_features()
        self.observation_space = spaces.Box(0.0, 1.0, shape=(len(OBSERVATION_FIELDS),), dtype=np.float32)
        self.action_space = spaces.Box(-1.0, 1.0, shape=(1,), dtype=np.float32)
        self._step = 0
        self._kept: dict[int, int] = {}
        self._previous_keep = 1.0
        self._cost_seconds = 0.0

    # ----------------------------------------------------------------- set-up

    def _static_features(self) -> np.ndarray:
        rows = []
        for step, unit in enumerate(self.order):
            members = self._unit_layers(unit)
            spec = members[0].spec
            rows.append([
                step, OPS.index(spec.op), spec.in_channels, spec.out_channels, spec.in_hw[0], spec.in_hw[1],
                spec.stride[0], spec.kernel[0], sum(m.macs for m in members), sum(m.params for m in members),
            ])  # fmt: skip
        features = np.asarray(rows, dtype=np.float64)
        low, high = features.min(axis=0), features.max(axis=0)
        span = np.where(high > low, high - low, 1.0)
        return ((features - low) / span).astype(np.float32)

    # ----------------------------------------------------------------- gymnasium API

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        self._step = 0
        self._kept = {}
        self._previous_keep = 1.0
        self._cost_seconds = 0.0
        return self._get_obs(), {}

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict]:
        group_index = self.order[self._step]
        wanted = self.action_to_keep(float(np.asarray(action, dtype=np.float64).reshape(-1)[0]))
        tick = time.perf_counter()
        count = self._clip(group_index, wanted)
        self._cost_seconds += time.perf_counter() - tick
        self._kept[group_index] = count
        self._previous_keep = self._ratio(group_index, count)
        self._step += 1
        executed = {"executed_action": np.array([self.keep_to_action(self._previous_keep)], dtype=np.float32)}
        if self._step < len(self.order):
            return self._get_obs(), 0.0, False, False, executed
        observation, reward, terminated, truncated, info = self._finish()
        return observation, reward, terminated, truncated, {**info, **executed}

    # ----------------------------------------------------------------- internals

    def action_to_keep(self, action: float) -> float:
        """Map an action in [-1, 1] to a keep ratio in [lbound, rbound]."""
        action = min(1.0, max(-1.0, action))
        return self.lbound + (action + 1.0) / 2.0 * (self.rbound - self.lbound)

    def keep_to_action(self, keep: float) -> float:
        """Inverse of action_to_keep, clipped to [-1, 1] (rounding may keep slightly fewer than lbound)."""
        if self.rbound == self.lbound:
            return 1.0
        return min(1.0, max(-1.0, 2.0 * (keep - self.lbound) / (self.rbound - self.lbound) - 1.0))

    def _clip(self, group_index: int, keep: float) -> Any:
        """AMC's action wall: the largest count (density) <= the wanted one that keeps the budget reachable."""
        counts = self.counts[group_index]
        later = self.order[self._step + 1 :]
        trial = {**self._kept, **{g: self.minimum[g] for g in later}}
        feasible = self.accountant.largest_feasible(group_index, counts, trial, self.budget.value)
        ceiling = counts[0] if feasible is None else feasible
        if self.granularity == "element":
            wanted = snap_density(keep, counts)
        else:
            group = self.table.groups[group_index]
            wanted = round_channels(keep, group.channels, self.round_to, group.divisor)
        return max(counts[0], min(max(c for c in counts if c <= max(wanted, counts[0])), ceiling))

    def _unit_layers(self, unit: int) -> list[Layer]:
        """The layers one step decides, leader first: a coupling group's members, or one layer (element mode)."""
        if self.granularity == "element":
            return [self.table.layers[unit]]
        return [self.table.layer(name) for name in self.table.groups[unit].layers]

    @property
    def unit_names(self) -> list[str]:
        """What each step decides, by name: a coupling group's leader layer, or the layer itself (element mode)."""
        return [self._unit_layers(unit)[0].name for unit in self.order]

    def _ratio(self, unit: int, value: float) -> float:
        """Keep ratio of a decided count (or the density itself in element mode)."""
        return value if self.granularity == "element" else value / self.table.groups[unit].channels

    def _get_obs(self) -> np.ndarray:
        step = min(self._step, len(self.order) - 1)
        dense = self.accountant.dense_cost
        current = self.accountant.cost(self._kept)
        reduced = (dense - current) / dense
        last_layer = max(layer.index for layer in self._unit_layers(self.order[step]))
        rest = sum(self.accountant.dense_layer_costs[last_layer + 1 :]) / dense
        dynamic = np.clip(np.array([reduced, rest, self._previous_keep], dtype=np.float32), 0.0, 1.0)
        return np.concatenate([self._static[step], dynamic]).astype(np.float32)

    def _finish(self) -> tuple[np.ndarray, float, bool, bool, dict]:
        kept = dict(self._kept)
        cost = self.accountant.cost(kept)
        tick = time.perf_counter()
        pruned = self._apply(kept)
        prune_seconds = time.perf_counter() - tick
        accuracy = float(self.evaluator(pruned))
        eval_seconds = time.perf_counter() - tick - prune_seconds
        reward = self.reward_of(accuracy, cost)
        metadata = replace(
            self.metadata_template, budget_metric=self.budget.metric, budget=self.budget.value, cost=cost,
            dense_cost=self.budget.dense_cost, accuracy=accuracy,
        )  # fmt: skip
        strategy: Strategy | LayerDensities
        if self.granularity == "element":
            names = {index: self.table.layers[index].name for index in kept}
            strategy = LayerDensities({names[i]: d for i, d in kept.items() if d < 1.0}, self.table.model_name)
        else:
            strategy = Strategy.from_kept_channels(self.table, kept, self.round_to, metadata)
        info = {
            "strategy": strategy,
            "kept": kept,
            "keep_ratios": [self._ratio(g, kept[g]) for g in self.order],
            "cost": cost,
            "accuracy": accuracy,
            "budget": self.budget.value,
            "timings": {"cost_s": self._cost_seconds, "prune_s": prune_seconds, "eval_s": eval_seconds},
        }
        return self._get_obs(), reward, True, False, info

    def _apply(self, kept: dict) -> nn.Module:
        """The decided variant: channels removed, or (element mode) the smallest weights of each layer zeroed."""
        if self.granularity == "channel":
            return thin(self.model, self.table, kept, selection=self.selection, calibration=self.calibration)
        pruned = copy.deepcopy(self.model)
        sparsity = {self.table.layers[index].name: 1.0 - density for index, density in kept.items() if density < 1.0}
        return remove_masks_(apply_masks_(pruned, magnitude_masks(pruned, sparsity)))

    def reward_of(self, accuracy: float, cost: float) -> float:
        if self.reward_name == "acc":
            return accuracy
        # AMC's -error * log(cost); latency in microseconds and energy in microjoules keep the log positive
        scale = 1000.0 if self.budget.metric in ("latency", "energy") else 1.0
        return -(1.0 - accuracy) * math.log(max(cost * scale, 1.0 + 1e-9))
