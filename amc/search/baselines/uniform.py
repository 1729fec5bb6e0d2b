"""Uniform pruning: one keep ratio for every group, the largest that meets the budget.

The ratio is found by bisection on the cost model (no scoring needed: cost falls as the ratio does), so the
budget is met as tightly as rounding to multiples of round_to allows; the one resulting strategy is scored.
For bit-widths, uniform is one bit-width for every weight and activation, the largest that meets the budget; for
joint problems, each bit-width of search.bits_range at the largest uniform keep ratio meeting the budget with it
(each scored, the best wins). Cheap enough that --resume simply redoes it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from amc.problem import BitPair, BitsProblem, ChannelProblem, JointDecision, JointProblem, Task
from amc.problem.joint import JointWanted
from amc.search.baselines.common import channel_problem, open_folder, record
from amc.search.result import SearchResult, finish_search

BISECTION_STEPS = 50


def uniform_kept(problem: ChannelProblem, keep: float) -> dict[int, int]:
    """Every group at `keep` of its channels, rounded and snapped to the counts the search allows."""
    return {g: problem.snap_down(g, keep) for g in problem.order}


def _largest_keep(low: float, high: float, meets: Callable[[float], bool]) -> float:
    """The largest keep in [low, high] that `meets` the budget, by bisection (`low` is known to meet it)."""
    if meets(high):
        return high
    for _ in range(BISECTION_STEPS):  # invariant: low meets the budget, high does not
        middle = (low + high) / 2
        if meets(middle):
            low = middle
        else:
            high = middle
    return low


def uniform_keep(problem: ChannelProblem) -> float:
    """The largest keep ratio in [lbound, rbound] whose uniform variant costs <= the budget."""
    budget = problem.budget.value
    return _largest_keep(
        problem.bounds.low, problem.bounds.high, lambda keep: problem.cost(uniform_kept(problem, keep)) <= budget
    )


def uniform_bits(problem: BitsProblem) -> dict[int, BitPair]:
    """The largest single bit-width for every weight and activation whose variant costs <= the budget (b_min
    always does: the budget was refused otherwise)."""
    low, high = problem.bits_range
    for bits in range(high, low, -1):
        decisions = {unit: BitPair(bits, bits) for unit in problem.order}
        if problem.cost(decisions) <= problem.budget.value:
            return decisions
    return {unit: BitPair(low, low) for unit in problem.order}


def uniform_joint(problem: JointProblem, bits: int) -> dict[int, JointDecision] | None:
    """Every group at one keep ratio and every quantized layer at `bits`: the largest keep meeting the budget,
    or None when even lbound does not."""

    def decisions(keep: float) -> dict[int, JointDecision]:
        wanted = JointWanted(keep, BitPair(bits, bits))
        return {unit: problem.snap(unit, wanted) for unit in problem.order}

    def meets(keep: float) -> bool:
        return problem.cost(decisions(keep)) <= problem.budget.value

    low, high = problem.bounds.low, problem.bounds.high
    return decisions(_largest_keep(low, high, meets)) if meets(low) else None


def uniform_candidates(task: Task, log: Callable[[str], None]) -> list[Mapping[int, Any]]:
    """What uniform scores on the task's problem (one variant; for joint one per feasible bit-width)."""
    problem = task.problem
    if isinstance(problem, BitsProblem):
        decisions = uniform_bits(problem)
        log(f"uniform {next(iter(decisions.values())).weight} bits meet the budget")
        return [decisions]
    if isinstance(problem, JointProblem):
        low, high = problem.bits_range
        found = [uniform_joint(problem, bits) for bits in range(high, low - 1, -1)]
        return [decisions for decisions in found if decisions is not None]
    channels = channel_problem(task)
    keep = uniform_keep(channels)
    log(f"uniform keep ratio {keep:.4f} meets the budget")
    return [uniform_kept(channels, keep)]


def run_uniform(
    task: Task, out: Path, resume: bool = False, progress: bool = True, log: Callable[[str], None] = print
) -> SearchResult:
    start = time.perf_counter()
    candidates = uniform_candidates(task, log)
    folder = open_folder(task, out, resume, keep_rows=0)
    for episode, decisions in enumerate(candidates, start=1):
        record(folder, episode, task.problem.score(decisions), task.problem.budget.value)
    return finish_search(task, folder, time.perf_counter() - start, log=log)
