"""Network slimming (Liu et al. 2017): one global threshold on BatchNorm scales decides every group's width.

A network trained with `train.slimming_l1` has pushed the |gamma| of channels it does not need towards zero. The
paper prunes every channel whose |gamma| is below one global threshold; here the threshold is the lowest one whose
strategy meets the budget by the cost model, found by bisection over the sorted scales. A group's kept share is
the share of its channels above the threshold, snapped down to the problem's grid within [lbound, rbound]; when
that clamp keeps more than the threshold asked for, the bisection simply tightens the threshold further. The
channels kept are the largest-|gamma| ones (`search.selection: bn_scale`, which the config requires). A coupled
group compares its mean |gamma| over its member BatchNorms with the threshold, so a residual group of several
BatchNorms is held to the same scale as a single layer. One strategy is scored, as uniform's is; cheap enough
that --resume simply redoes it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from amc.problem import ChannelProblem, Task
from amc.pruning.selection import BatchNormScale, check_selection
from amc.search.baselines.common import channel_problem, open_folder, record
from amc.search.result import SearchResult, finish_search


@dataclass(frozen=True)
class Slimming:
    """The threshold found, and the kept channel count per group it gives."""

    threshold: float
    kept: dict[int, int]


def group_scales(problem: ChannelProblem) -> dict[int, Tensor]:
    """Per prunable group: each channel's |gamma| averaged over the group's member BatchNorms."""
    check_selection("bn_scale", problem.model, problem.table)
    selector = BatchNormScale()
    groups = problem.table.groups
    return {g: selector.scores(groups[g], problem.model) / len(groups[g].layers) for g in problem.order}


def kept_above(problem: ChannelProblem, scales: dict[int, Tensor], threshold: float) -> dict[int, int]:
    """Each group's count of channels with |gamma| > threshold, snapped down to the problem's grid (within
    [lbound, rbound]: the smallest allowed count when fewer survive)."""
    return {g: problem.snap_down(g, float((scales[g] > threshold).double().mean())) for g in problem.order}


def slimming_threshold(problem: ChannelProblem, scales: dict[int, Tensor] | None = None) -> Slimming:
    """The lowest global |gamma| threshold whose strategy costs <= the budget (bisection over the sorted scales:
    cost never rises as the threshold does; above every scale all groups sit at their minimum, which the budget
    admits)."""
    scales = group_scales(problem) if scales is None else scales
    budget = problem.budget.value
    values = torch.unique(torch.cat([scale for scale in scales.values()])).tolist()
    thresholds = [-1.0, *values]  # -1: keep every channel; values[i]: cut every channel at or below it

    def meets(index: int) -> bool:
        return problem.cost(kept_above(problem, scales, thresholds[index])) <= budget

    low, high = 0, len(thresholds) - 1  # invariant: high meets the budget, every index below low does not
    while low < high:
        middle = (low + high) // 2
        if meets(middle):
            high = middle
        else:
            low = middle + 1
    return Slimming(thresholds[high], kept_above(problem, scales, thresholds[high]))


def run_slimming(
    task: Task, out: Path, resume: bool = False, progress: bool = True, log: Callable[[str], None] = print
) -> SearchResult:
    start = time.perf_counter()
    problem = channel_problem(task)
    found = slimming_threshold(problem)
    log(
        f"slimming threshold |gamma| > {found.threshold:.4g} meets the budget: keep ratios "
        + ", ".join(f"{ratio:.2f}" for ratio in problem.keep_ratios(found.kept))
    )
    folder = open_folder(task, out, resume, keep_rows=0)
    record(folder, 1, problem.score(found.kept), problem.budget.value)
    return finish_search(task, folder, time.perf_counter() - start, log=log)
