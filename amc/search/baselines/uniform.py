"""Uniform pruning: one keep ratio for every group, the largest that meets the budget.

The ratio is found by bisection on the cost model (no scoring needed: cost falls as the ratio does), so the
budget is met as tightly as rounding to multiples of round_to allows; the one resulting strategy is scored.
Cheap enough that --resume simply redoes it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from amc.pruning import round_channels
from amc.search.baselines.common import channel_env, open_folder, record, score_kept, snap
from amc.search.result import SearchResult, finish_search
from amc.search.task import SearchTask
from envs import ChannelPruningEnv

BISECTION_STEPS = 50


def uniform_kept(env: ChannelPruningEnv, keep: float) -> dict[int, int]:
    """Every group at `keep` of its channels, rounded and snapped to the counts the search allows."""
    kept = {}
    for g in env.order:
        group = env.table.groups[g]
        kept[g] = snap(env.counts[g], round_channels(keep, group.channels, env.round_to, group.divisor))
    return kept


def uniform_keep(env: ChannelPruningEnv) -> float:
    """The largest keep ratio in [lbound, rbound] whose uniform variant costs <= the budget."""
    budget = env.budget.value
    low, high = env.lbound, env.rbound
    if env.accountant.cost(uniform_kept(env, high)) <= budget:
        return high
    for _ in range(BISECTION_STEPS):  # invariant: low meets the budget (resolve_budget checked it), high does not
        middle = (low + high) / 2
        if env.accountant.cost(uniform_kept(env, middle)) <= budget:
            low = middle
        else:
            high = middle
    return low


def run_uniform(
    task: SearchTask, out: Path, resume: bool = False, progress: bool = True, log: Callable[[str], None] = print
) -> SearchResult:
    start = time.perf_counter()
    env = channel_env(task)
    folder = open_folder(task, env, out, resume, keep_rows=0)
    keep = uniform_keep(env)
    log(f"uniform keep ratio {keep:.4f} meets the budget")
    record(folder, 1, score_kept(env, uniform_kept(env, keep)), env.budget.value)
    return finish_search(task, folder, env.budget, time.perf_counter() - start, log=log)
