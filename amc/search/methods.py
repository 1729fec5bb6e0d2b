"""Search methods by name. Each takes (task, run folder path, resume, progress, log) and returns a SearchResult."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from amc.errors import UserError
from amc.problem import Task
from amc.search.amc_method import run_amc
from amc.search.baselines import run_bayes, run_random, run_sensitivity, run_uniform
from amc.search.netadapt import run_netadapt
from amc.search.result import SearchResult

SearchMethod = Callable[..., SearchResult]

METHODS: dict[str, tuple[SearchMethod, str]] = {
    "amc": (run_amc, "AMC: DDPG agent choosing per-layer keep ratios, budget enforced by clipping (He et al. 2018)"),
    "netadapt": (run_netadapt, "NetAdapt: step-by-step cuts, the best single-group cut after a short fine-tune"),
    "uniform": (run_uniform, "one keep ratio for every group, the largest meeting the budget (bisection)"),
    "sensitivity": (run_sensitivity, "per-group sensitivity sweep, then ratios from an accuracy-drop threshold"),
    "random": (run_random, "random strategies clipped to the budget like AMC's actions; best of search.episodes"),
    "bayes": (run_bayes, "Optuna TPE over per-group keep ratios, clipped to the budget like AMC's actions"),
}


def get_method(name: str) -> SearchMethod:
    if name not in METHODS:
        raise UserError(f"search.method {name!r} is not known.", fix=f"use one of {', '.join(METHODS)}.")
    return METHODS[name][0]


def run_search(task: Task, out: Path, resume: bool = False, progress: bool = True,
               log: Callable[[str], None] = print) -> SearchResult:  # fmt: skip
    return get_method(task.config.search.method)(task, out, resume=resume, progress=progress, log=log)
