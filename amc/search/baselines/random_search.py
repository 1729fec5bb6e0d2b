"""Random search: search.episodes random strategies, each clipped to the budget as AMC's actions are; the best wins.

Trial i's actions come from a numpy Generator seeded with (experiment.seed, i), so a trial is the same whether
the run was resumed, and whichever worker scores it. Trials are scored in parallel (search.workers, on local
processes or Ray) and recorded in order; --resume continues after the last row of episodes.csv. Works on any
problem (channels or element-wise densities). Trials are drawn lazily, a chunk of a few per worker at a time, so
a huge search.episodes (1e12: "until stopped") starts at once instead of drawing every trial first.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from amc.problem import Outcome, PruningProblem, Task
from amc.search.baselines.common import ALL_ROWS, open_folder, play, record
from amc.search.parallel import open_executor
from amc.search.result import SearchResult, finish_search


def trial_actions(seed: int, trial: int, steps: int) -> list[float]:
    """Uniform actions in [-1, 1] for trial `trial` (0-based), independent of every other trial (`steps` counts
    numbers: steps x decision_size)."""
    return np.random.default_rng([seed, trial]).uniform(-1.0, 1.0, size=steps).tolist()


def trials(seed: int, start: int, stop: int, steps: int) -> Iterator[list[float]]:
    """The actions of trials start..stop-1, drawn one at a time as they are consumed."""
    return (trial_actions(seed, trial, steps) for trial in range(start, stop))


CHUNK_PER_WORKER = 4
"""Trials handed to the executor at once, per worker: enough to keep every worker busy, few enough to stay lazy."""


def problem_of(task: Task) -> PruningProblem:
    """Worker set-up: the problem a worker plays trials on."""
    return task.problem


def play_trial(problem: PruningProblem, actions: Sequence[float]) -> Outcome:
    """Worker function: one trial on the worker's problem."""
    return play(problem, actions)


def run_random(
    task: Task, out: Path, resume: bool = False, progress: bool = True, log: Callable[[str], None] = print
) -> SearchResult:
    start = time.perf_counter()
    config, problem = task.config, task.problem
    folder = open_folder(task, out, resume, keep_rows=ALL_ROWS)
    done = folder.rows_written
    if done:
        log(f"resuming {out} after trial {done}")
    seed, steps = config.experiment.seed, len(problem.order) * problem.decision_size
    todo = max(0, config.search.episodes - done)
    chunk = CHUNK_PER_WORKER * max(1, config.search.workers)
    with open_executor(config.search, problem_of, replace(task, data=None), local=problem) as executor:
        bar = tqdm(total=todo, desc="random search", disable=not progress)
        with bar:
            for first in range(done, done + todo, chunk):
                batch = trials(seed, first, min(first + chunk, done + todo), steps)
                for episode, outcome in enumerate(executor.map_ordered(play_trial, batch), start=first + 1):
                    record(folder, episode, outcome, problem.budget.value)
                    bar.update(1)
    return finish_search(task, folder, time.perf_counter() - start, log=log)
