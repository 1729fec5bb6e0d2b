"""Random search: search.episodes random strategies, each clipped to the budget by the AMC env; the best wins.

Trial i's actions come from a numpy Generator seeded with (experiment.seed, i), so a trial is the same whether
the run was resumed, and whichever worker scores it. Trials are scored in parallel (search.workers, on local
processes or Ray) and recorded in order; --resume continues after the last row of episodes.csv.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from amc.search.baselines.common import ALL_ROWS, Scored, channel_env, open_folder, play, record
from amc.search.parallel import open_executor
from amc.search.result import SearchResult, finish_search
from amc.search.task import SearchTask
from envs import ChannelPruningEnv


def trial_actions(seed: int, trial: int, steps: int) -> list[float]:
    """Uniform actions in [-1, 1] for trial `trial` (0-based), independent of every other trial."""
    return np.random.default_rng([seed, trial]).uniform(-1.0, 1.0, size=steps).tolist()


def play_trial(env: ChannelPruningEnv, actions: Sequence[float]) -> Scored:
    """Worker function: one episode of the worker's own env."""
    return play(env, actions)


def run_random(
    task: SearchTask, out: Path, resume: bool = False, progress: bool = True, log: Callable[[str], None] = print
) -> SearchResult:
    start = time.perf_counter()
    config = task.config
    env = channel_env(task)
    folder = open_folder(task, env, out, resume, keep_rows=ALL_ROWS)
    done = folder.rows_written
    if done:
        log(f"resuming {out} after trial {done}")
    seed, steps = config.experiment.seed, len(env.order)
    actions = [trial_actions(seed, trial, steps) for trial in range(done, config.search.episodes)]
    with open_executor(config.search, channel_env, replace(task, bundle=None), local=env) as executor:
        results = executor.map_ordered(play_trial, actions)
        for episode, scored in enumerate(tqdm(results, total=len(actions), desc="random search",
                                              disable=not progress), start=done + 1):  # fmt: skip
            record(folder, episode, scored, env.budget.value)
    return finish_search(task, folder, env.budget, time.perf_counter() - start, log=log)
