"""Search methods by name. Each takes (task, run folder path, resume, progress, log) and returns a SearchResult."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import yaml

from amc.errors import UserError
from amc.locks import lock_folder
from amc.problem import Task
from amc.resume import refuse_changed
from amc.search.amc_method import run_amc
from amc.search.baselines import run_bayes, run_random, run_sensitivity, run_uniform
from amc.search.energy_aware import run_energy_aware
from amc.search.netadapt import run_netadapt
from amc.search.result import SearchResult
from amc.search.run_folder import recorded_rows
from amc.search.slimming import run_slimming
from amc.search.stages import run_stages

SearchMethod = Callable[..., SearchResult]

METHODS: dict[str, tuple[SearchMethod, str]] = {
    "amc": (run_amc, "AMC: DDPG agent choosing per-layer keep ratios, budget enforced by clipping (He et al. 2018)"),
    "netadapt": (run_netadapt, "NetAdapt: step-by-step cuts, the best single-group cut after a short fine-tune"),
    "uniform": (run_uniform, "one keep ratio for every group, the largest meeting the budget (bisection)"),
    "sensitivity": (run_sensitivity, "per-group sensitivity sweep, then ratios from an accuracy-drop threshold"),
    "random": (run_random, "random strategies clipped to the budget like AMC's actions; best of search.episodes"),
    "bayes": (run_bayes, "Optuna TPE over per-group keep ratios, clipped to the budget like AMC's actions"),
    "energy-aware": (run_energy_aware, "most energy-hungry group first, cut while accuracy holds (Yang et al. 2017)"),
    "slimming": (run_slimming, "network slimming: one global |gamma| threshold meeting the budget (Liu et al. 2017)"),
}


def get_method(name: str) -> SearchMethod:
    if name not in METHODS:
        raise UserError(f"search.method {name!r} is not known.", fix=f"use one of {', '.join(METHODS)}.")
    return METHODS[name][0]


RESUMABLE_CHANGES = (
    "search.workers", "search.executor", "search.ray_address", "search.netadapt.max_iterations",
    "experiment.threads", "experiment.name", "data.root", "cost.allow_foreign_lut", "finetune", "search.episodes",
    "search.rerank_top", "search.verify_top",
)  # fmt: skip
"""Settings a resumed search may change: where and how fast candidates are scored, and what comes after the search
(re-ranking and the budget check pick the result among the episodes, after them); every other setting changes the
episodes, so a resume with another value is refused. `search.episodes` may change:
more extends the run, fewer (or as many as are done) ends it with what it has. experiment.device and
experiment.amp may not: GPU (and bfloat16) results are not bit-identical to CPU ones."""

ADDED_SETTINGS = {
    "experiment.device": "cpu", "experiment.amp": False, "experiment.channels_last": False,
    "search.bits_range": [2, 8], "cost.precision": "fp32",
    "search.energy_aware": {"max_drop": 0.01, "growth": 2.0}, "train.slimming_l1": 0.0,
    "agent.budget_range": None, "search.stages": 1,
}  # fmt: skip
"""Settings newer than some run folders: a config.yaml without one was run with this value."""


def run_search(task: Task, out: Path, resume: bool = False, progress: bool = True,
               log: Callable[[str], None] = print) -> SearchResult:  # fmt: skip
    """Run the configured method on `out`, holding the folder's lock for the whole run (a second search writing
    the same folder is refused); a resume is checked against the folder first (check_resume)."""
    method = get_method(task.config.search.method)
    with lock_folder(out):
        if resume:
            check_resume(task, Path(out), log)
        if task.config.search.stages > 1:  # iterative pruning: the method once per stage (amc.search.stages)
            return run_stages(task, Path(out), method, resume=resume, progress=progress, log=log)
        return method(task, out, resume=resume, progress=progress, log=log)


def check_resume(task: Task, out: Path, log: Callable[[str], None] = print) -> None:
    """--resume continues only an amc run folder of the same search: an empty or missing folder starts fresh (said on
    the log), a folder of other files is refused, and so is one whose config.yaml differs in a setting that changes
    results (each named with its stored and new value)."""
    entries = [entry for entry in out.iterdir() if not entry.name.startswith(".")] if out.is_dir() else []
    stored_path = out / "config.yaml"
    if not stored_path.is_file():
        if entries:
            raise UserError(
                f"--resume: {out} is not an amc run folder (no config.yaml; it holds "
                f"{', '.join(sorted(entry.name for entry in entries)[:5])}).",
                fix="point --out at the run folder to continue, or at a new or empty folder.",
            )
        log(f"nothing to resume in {out}, starting fresh")
        return
    try:
        stored = yaml.safe_load(stored_path.read_text()) or {}
    except yaml.YAMLError as error:
        raise UserError(f"--resume: {stored_path} is not valid YAML ({error}).", fix="use a new --out.") from None
    for dotted, value in ADDED_SETTINGS.items():
        section, key = dotted.split(".")
        stored.setdefault(section, {}).setdefault(key, value)
    new = task.config.to_dict()
    refuse_changed(
        f"--resume: the search in {out}", stored, new,
        fix=f"continue it with its old values (in {stored_path}), or run the new settings in another --out.",
        ignore=RESUMABLE_CHANGES,
    )  # fmt: skip
    if not recorded_rows(out) and not (out / "stage_1").is_dir():  # stage_1/: a staged search (its own rows)
        log(f"nothing to resume in {out} (no episode recorded yet), starting fresh")
