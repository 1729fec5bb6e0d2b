"""Uniform pruning: one keep ratio for every group, the largest that meets the budget.

The ratio is found by bisection on the cost model (no scoring needed: cost falls as the ratio does), so the
budget is met as tightly as rounding to multiples of round_to allows; the one resulting strategy is scored.
Cheap enough that --resume simply redoes it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from amc.problem import ChannelProblem, Task
from amc.search.baselines.common import channel_problem, open_folder, record
from amc.search.result import SearchResult, finish_search

BISECTION_STEPS = 50


def uniform_kept(problem: ChannelProblem, keep: float) -> dict[int, int]:
    """Every group at `keep` of its channels, rounded and snapped to the counts the search allows."""
    return {g: problem.snap_down(g, keep) for g in problem.order}


def uniform_keep(problem: ChannelProblem) -> float:
    """The largest keep ratio in [lbound, rbound] whose uniform variant costs <= the budget."""
    budget = problem.budget.value
    low, high = problem.bounds.low, problem.bounds.high
    if problem.cost(uniform_kept(problem, high)) <= budget:
        return high
    for _ in range(BISECTION_STEPS):  # invariant: low meets the budget (resolve_budget checked it), high does not
        middle = (low + high) / 2
        if problem.cost(uniform_kept(problem, middle)) <= budget:
            low = middle
        else:
            high = middle
    return low


def run_uniform(
    task: Task, out: Path, resume: bool = False, progress: bool = True, log: Callable[[str], None] = print
) -> SearchResult:
    start = time.perf_counter()
    problem = channel_problem(task)
    folder = open_folder(task, out, resume, keep_rows=0)
    keep = uniform_keep(problem)
    log(f"uniform keep ratio {keep:.4f} meets the budget")
    record(folder, 1, problem.score(uniform_kept(problem, keep)), problem.budget.value)
    return finish_search(task, folder, time.perf_counter() - start, log=log)
