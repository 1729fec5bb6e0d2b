"""Bayesian optimisation: Optuna's TPE over the per-group keep ratios, the budget enforced by the AMC env.

TPE suggests one keep ratio per group; the env clips them to the budget exactly as it clips AMC's actions and
scores the variant; TPE is told the env's reward. The study lives in an Optuna storage, by default
`sqlite:///<run folder>/study.db`; `search.study_storage` can point several `amc search --method bayes` processes
(each with its own run folder) at one database, so they share one history (no longer reproducible, then).

Trial k's sampler is seeded with (experiment.seed, k) and sees only finished trials, so with search.trial_batch=1
a resumed run suggests exactly what a straight run would. `trial_batch` > 1 asks that many trials at once (TPE's
constant liar keeps them apart) and scores them in parallel on search.workers.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
import optuna
from optuna.distributions import BaseDistribution, FloatDistribution
from optuna.trial import TrialState
from tqdm.auto import tqdm

from amc.errors import UserError
from amc.search.baselines.common import channel_env, open_folder, record
from amc.search.baselines.random_search import play_trial
from amc.search.parallel import open_executor
from amc.search.result import SearchResult, finish_search
from amc.search.task import SearchTask
from envs import ChannelPruningEnv

RUN_ATTR = "run_folder"


def default_storage(out: Path) -> str:
    return f"sqlite:///{(out / 'study.db').resolve()}"


def open_study(task: SearchTask, out: Path) -> optuna.Study:
    """The study in the configured storage (created on first use, shared by every run that names it)."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = task.config.search.study_storage or default_storage(out)
    out.mkdir(parents=True, exist_ok=True)
    name = f"{task.config.experiment.name}-{task.config.model.name}-bayes"
    try:
        return optuna.create_study(study_name=name, storage=storage, direction="maximize", load_if_exists=True)
    except (ValueError, ImportError, optuna.exceptions.OptunaError) as error:
        raise UserError(
            f"cannot open the Optuna study in {storage}: {error}.",
            fix="set search.study_storage to a database URL such as sqlite:///runs/study.db, or leave it unset.",
        ) from None


def own_trials(study: optuna.Study, run: str, state: TrialState) -> list[optuna.trial.FrozenTrial]:
    return [t for t in study.get_trials(deepcopy=False, states=(state,)) if t.user_attrs.get(RUN_ATTR) == run]


def sampler_for(seed: int, trial: int, batch: int) -> optuna.samplers.TPESampler:
    """TPE seeded for trial `trial`: what it suggests depends on the history and (seed, trial), not on a resume."""
    trial_seed = int(np.random.SeedSequence([seed, trial]).generate_state(1)[0])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return optuna.samplers.TPESampler(seed=trial_seed, constant_liar=batch > 1)


def ask(study: optuna.Study, env: ChannelPruningEnv, run: str, seed: int, trial: int, batch: int) -> optuna.Trial:
    study.sampler = sampler_for(seed, trial, batch)
    space: dict[str, BaseDistribution] = {
        f"keep:{env.table.groups[g].leader}": FloatDistribution(env.lbound, env.rbound) for g in env.order
    }
    suggestion = study.ask(space)
    suggestion.set_user_attr(RUN_ATTR, run)
    return suggestion


def actions_of(env: ChannelPruningEnv, suggestion: optuna.Trial) -> list[float]:
    return [env.keep_to_action(suggestion.params[f"keep:{env.table.groups[g].leader}"]) for g in env.order]


def run_bayes(
    task: SearchTask, out: Path, resume: bool = False, progress: bool = True, log: Callable[[str], None] = print
) -> SearchResult:
    start = time.perf_counter()
    search, seed = task.config.search, task.config.experiment.seed
    if search.trial_batch < 1:
        raise UserError(f"search.trial_batch must be at least 1, got {search.trial_batch}.", fix="e.g. 1 or 4.")
    env = channel_env(task)
    study = open_study(task, out)
    run = str(out.resolve())
    for stale in own_trials(study, run, TrialState.RUNNING):  # in flight when the last run was killed
        study.tell(stale.number, state=TrialState.FAIL)
    done = len(own_trials(study, run, TrialState.COMPLETE)) if resume else 0
    folder = open_folder(task, env, out, resume, keep_rows=done)
    if done:
        log(f"resuming {out} after trial {done}")
    bar = tqdm(total=search.episodes, initial=done, desc="bayesian search", disable=not progress)
    with open_executor(search, channel_env, replace(task, bundle=None), local=env) as executor:
        while done < search.episodes:
            batch = [ask(study, env, run, seed, done + i, search.trial_batch)
                     for i in range(min(search.trial_batch, search.episodes - done))]  # fmt: skip
            for suggestion, scored in zip(batch, executor.map_ordered(play_trial, [actions_of(env, t) for t in batch])):
                done += 1
                record(folder, done, scored, env.budget.value)
                study.tell(suggestion, scored.reward)
                bar.update(1)
    bar.close()
    return finish_search(task, folder, env.budget, time.perf_counter() - start, log=log)
