"""What every non-AMC search shares with AMC: the problem's budget, clipping and scoring, the run folder.

Every method works on the task's pruning problem, so the budget is resolved, clipped and priced by the same
cost model, and a variant is pruned and scored exactly as an AMC episode's would be. Methods that draw whole
strategies (random, Bayesian) play normalised actions through `problem.clip`, as the env does; methods that
choose channel counts directly (uniform, sensitivity, NetAdapt) hand them to `problem.score`.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from amc.errors import UserError
from amc.problem import ChannelProblem, Outcome, PruningProblem, Task
from amc.search.run_folder import EpisodeRow, RunFolder

ALL_ROWS = 2**62
"""keep_rows for a resumed run folder whose rows are all valid (methods that record finished trials only)."""


def channel_problem(task: Task) -> ChannelProblem:
    """The task's problem, for methods that decide coupling groups' channel counts."""
    problem = task.problem
    if not isinstance(problem, ChannelProblem):
        raise UserError(
            f"search.method {task.config.search.method} prunes channels, not "
            f"search.granularity={task.config.search.granularity}.",
            fix="use search.granularity=channel, or search.method amc, random or bayes (or uniform, for bits and "
            "joint) for the other granularities.",
        )
    return problem


def play(problem: PruningProblem, actions: Sequence[float]) -> Outcome:
    """One episode of normalised actions (`decision_size` per step, step after step, in [-1, 1], float32 as an
    agent's): each step's clipped to the budget in step order, then the decisions scored."""
    size = problem.decision_size
    if len(actions) != len(problem.order) * size:
        raise ValueError(f"{len(actions)} actions for an episode of {len(problem.order)} steps of {size}")
    tick = time.perf_counter()
    decided: dict[int, Any] = {}
    for step in range(len(problem.order)):
        wanted = problem.wanted(step, [float(np.float32(a)) for a in actions[step * size : (step + 1) * size]])
        decided[problem.order[step]] = problem.clip(step, decided, wanted)
    clip_s = time.perf_counter() - tick
    outcome = problem.score(decided)
    timings = {**outcome.timings, "cost_s": outcome.timings["cost_s"] + clip_s}
    return replace(outcome, timings=timings, wall_s=time.perf_counter() - tick)


def open_folder(task: Task, out: Path, resume: bool, keep_rows: int) -> RunFolder:
    """The run folder with one keep column per decision (named by its leader), its best restored on resume."""
    folder = RunFolder.create(out, task.config, task.problem.names, resume, keep_rows=keep_rows)
    folder.restore_best()
    return folder


def record(folder: RunFolder, episode: int, outcome: Outcome, budget: float) -> None:
    """Append one row; only a variant within the budget may become the best result."""
    row = EpisodeRow(
        episode, outcome.reward, outcome.accuracy, outcome.cost, budget, list(outcome.keep_ratios), outcome.wall_s,
        outcome.timings,
    )  # fmt: skip
    folder.append(row, outcome.result if outcome.cost <= budget else None)
