"""What every non-AMC search shares with AMC: the env's budget and scoring, the run folder, the result.

Each baseline builds the same `ChannelPruningEnv` AMC uses, so the budget is resolved, clipped and priced by
the same cost model, and a kept-channel variant is pruned and scored exactly as an AMC episode would be.
Methods that choose whole strategies (random, bayes) step the env with their actions; methods that choose
channel counts directly (uniform, sensitivity, NetAdapt) score them with `score_kept`, which is the env's last
step without the clipping.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from amc.errors import UserError
from amc.pruning import Strategy, thin
from amc.search.run_folder import EpisodeRow, RunFolder
from amc.search.task import SearchTask
from envs import ChannelPruningEnv

ALL_ROWS = 2**62
"""keep_rows for a resumed run folder whose rows are all valid (methods that record finished trials only)."""


@dataclass(frozen=True)
class Scored:
    """One scored variant: what a run folder row and the best strategy need."""

    kept: dict[int, int]
    keep_ratios: list[float]
    cost: float
    accuracy: float
    reward: float
    strategy: Strategy
    timings: dict[str, float]
    wall_s: float


def channel_env(task: SearchTask) -> ChannelPruningEnv:
    """The AMC env for `task`; the baselines decide coupling groups' channels, not element-wise densities."""
    granularity = task.config.search.granularity
    if granularity != "channel":
        raise UserError(
            f"search.method {task.config.search.method} prunes channels, not search.granularity={granularity}.",
            fix="use search.granularity=channel, or search.method=amc for element-wise densities.",
        )
    return ChannelPruningEnv(**task.env_kwargs())


def play(env: ChannelPruningEnv, actions: Sequence[float]) -> Scored:
    """One episode with the given actions (one per group, in [-1, 1]): clipped to the budget and scored."""
    tick = time.perf_counter()
    env.reset()
    for action in actions:
        _, reward, terminated, _, info = env.step(np.array([action], dtype=np.float32))
    if not terminated:
        raise ValueError(f"{len(actions)} actions for an episode of {len(env.order)} steps")
    return Scored(
        dict(info["kept"]), list(info["keep_ratios"]), float(info["cost"]), float(info["accuracy"]), float(reward),
        info["strategy"], dict(info["timings"]), time.perf_counter() - tick,
    )  # fmt: skip


def score_kept(env: ChannelPruningEnv, kept: Mapping[int, int]) -> Scored:
    """The env's last step for chosen channel counts: cost, prune (the env's channel selection), score, reward."""
    tick = time.perf_counter()
    cost = env.accountant.cost(kept)
    cost_s = time.perf_counter() - tick
    pruned = thin(env.model, env.table, kept, selection=env.selection, calibration=env.calibration)
    prune_s = time.perf_counter() - tick - cost_s
    accuracy = float(env.evaluator(pruned))
    eval_s = time.perf_counter() - tick - cost_s - prune_s
    strategy = strategy_of(env, kept, cost, accuracy)
    return Scored(
        dict(kept), keep_ratios(env, kept), cost, accuracy, env.reward_of(accuracy, cost), strategy,
        {"cost_s": cost_s, "prune_s": prune_s, "eval_s": eval_s}, time.perf_counter() - tick,
    )  # fmt: skip


def strategy_of(env: ChannelPruningEnv, kept: Mapping[int, int], cost: float, accuracy: float) -> Strategy:
    """`kept` as a Strategy against the original table, with the same metadata an AMC episode records."""
    budget = env.budget
    metadata = replace(
        env.metadata_template, budget_metric=budget.metric, budget=budget.value, cost=cost,
        dense_cost=budget.dense_cost, accuracy=accuracy,
    )  # fmt: skip
    return Strategy.from_kept_channels(env.table, dict(kept), env.round_to, metadata)


def keep_ratios(env: ChannelPruningEnv, kept: Mapping[int, int]) -> list[float]:
    groups = env.table.groups
    return [kept.get(g, groups[g].channels) / groups[g].channels for g in env.order]


def snap(counts: Sequence[int], wanted: int) -> int:
    """The largest allowed count <= wanted (the smallest allowed one if none is)."""
    return max((count for count in counts if count <= wanted), default=counts[0])


def open_folder(task: SearchTask, env: ChannelPruningEnv, out: Path, resume: bool, keep_rows: int) -> RunFolder:
    """The run folder with one keep column per group (named by its leader), its best restored on resume."""
    leaders = [task.table.groups[g].leader for g in env.order]
    folder = RunFolder.create(out, task.config, leaders, resume, keep_rows=keep_rows)
    folder.restore_best()
    if folder.best_row is not None and folder.best_row.cost > folder.best_row.budget:
        folder.best_row = best_within_budget(folder)
    return folder


def best_within_budget(folder: RunFolder) -> EpisodeRow:
    """The best row among those within the budget: rows over it (NetAdapt's intermediate candidates) never won."""
    rows = [row for row in folder.read_rows() if float(row["cost"]) <= float(row["budget"])]
    best = max(rows, key=lambda row: float(row["reward"]))
    keeps = [float(best[column]) for column in folder.columns if column.startswith("keep:")]
    return EpisodeRow(
        int(best["episode"]), float(best["reward"]), float(best["accuracy"]), float(best["cost"]),
        float(best["budget"]), keeps, float(best["wall_s"]),
    )  # fmt: skip


def record(folder: RunFolder, episode: int, scored: Scored, budget: float) -> None:
    """Append one row; only a variant within the budget may become the best strategy."""
    row = EpisodeRow(
        episode, scored.reward, scored.accuracy, scored.cost, budget, scored.keep_ratios, scored.wall_s,
        scored.timings,
    )  # fmt: skip
    folder.append(row, scored.strategy if scored.cost <= budget else None)
