"""The search baselines AMC is compared with, on the same config, budget, cost model, scoring and run folder."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from amc.optional import require
from amc.problem import Task
from amc.search.baselines.random_search import run_random
from amc.search.baselines.sensitivity import run_sensitivity
from amc.search.baselines.uniform import run_uniform
from amc.search.result import SearchResult


def run_bayes(
    task: Task, out: Path, resume: bool = False, progress: bool = True, log: Callable[[str], None] = print
) -> SearchResult:
    """Optuna TPE (`amc.search.baselines.bayes.run_bayes`). Optuna is an extra (`amc-toolkit[bayes]`), so its
    module is imported only here: without it every other method still runs, and this one is a UserError."""
    require("optuna", "search.method bayes")
    from amc.search.baselines.bayes import run_bayes as run

    return run(task, out, resume=resume, progress=progress, log=log)


__all__ = ["run_bayes", "run_random", "run_sensitivity", "run_uniform"]
