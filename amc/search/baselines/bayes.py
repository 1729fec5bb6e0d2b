"""Bayesian optimisation: Optuna's TPE over the per-unit keep ratios, the budget enforced by the problem's clipping.

TPE suggests one keep ratio per decision unit (for bits and joint problems, each of a step's normalised actions);
the problem clips them to the budget exactly as it clips AMC's actions and scores the variant; TPE is told the
outcome's reward. The study lives in an Optuna storage, by default `sqlite:///<run folder>/study.db`;
`search.bayes.storage` can point several `amc search --method bayes` processes (each with its own run folder) at
one database, so they share one history (no longer reproducible, then).

Trial k's sampler is seeded with (experiment.seed, k) and sees only finished trials, so with search.bayes.trial_batch=1
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
from amc.problem import PruningProblem, Task
from amc.search.baselines.common import open_folder, record
from amc.search.baselines.random_search import play_trial, problem_of
from amc.search.parallel import open_executor
from amc.search.result import SearchResult, finish_search

RUN_ATTR = "run_folder"


def default_storage(out: Path) -> str:
    return f"sqlite:///{(out / 'study.db').resolve()}"


def open_study(task: Task, out: Path) -> optuna.Study:
    """The study in the configured storage (created on first use, shared by every run that names it)."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = task.config.search.bayes.storage or default_storage(out)
    out.mkdir(parents=True, exist_ok=True)
    name = f"{task.config.experiment.name}-{task.config.model.name}-bayes"
    try:
        return optuna.create_study(study_name=name, storage=storage, direction="maximize", load_if_exists=True)
    except (ValueError, ImportError, optuna.exceptions.OptunaError) as error:
        raise UserError(
            f"cannot open the Optuna study in {storage}: {error}.",
            fix="set search.bayes.storage to a database URL such as sqlite:///runs/study.db, or leave it unset.",
        ) from None


def own_trials(study: optuna.Study, run: str, state: TrialState) -> list[optuna.trial.FrozenTrial]:
    return [t for t in study.get_trials(deepcopy=False, states=(state,)) if t.user_attrs.get(RUN_ATTR) == run]


def sampler_for(seed: int, trial: int, batch: int) -> optuna.samplers.TPESampler:
    """TPE seeded for trial `trial`: what it suggests depends on the history and (seed, trial), not on a resume."""
    trial_seed = int(np.random.SeedSequence([seed, trial]).generate_state(1)[0])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return optuna.samplers.TPESampler(seed=trial_seed, constant_liar=batch > 1)


def ask(study: optuna.Study, problem: PruningProblem, run: str, seed: int, trial: int, batch: int) -> optuna.Trial:
    study.sampler = sampler_for(seed, trial, batch)
    suggestion = study.ask(search_space(problem))
    suggestion.set_user_attr(RUN_ATTR, run)
    return suggestion


def search_space(problem: PruningProblem) -> dict[str, BaseDistribution]:
    """A keep ratio per unit; for problems of several numbers per step, each normalised action in [-1, 1]."""
    if problem.decision_size == 1:
        bounds = problem.bounds
        return {f"keep:{name}": FloatDistribution(bounds.low, bounds.high) for name in problem.names}
    return {key: FloatDistribution(-1.0, 1.0) for key in _action_keys(problem)}


def _action_keys(problem: PruningProblem) -> list[str]:
    return [f"action{number}:{name}" for name in problem.names for number in range(problem.decision_size)]


def actions_of(problem: PruningProblem, suggestion: optuna.Trial) -> list[float]:
    """The suggested keep ratios (or actions) as normalised actions, played like random search's."""
    if problem.decision_size == 1:
        return [problem.bounds.action(suggestion.params[f"keep:{name}"]) for name in problem.names]
    return [float(suggestion.params[key]) for key in _action_keys(problem)]


def run_bayes(
    task: Task, out: Path, resume: bool = False, progress: bool = True, log: Callable[[str], None] = print
) -> SearchResult:
    start = time.perf_counter()
    search, seed, problem = task.config.search, task.config.experiment.seed, task.problem
    trial_batch = search.bayes.trial_batch
    study = open_study(task, out)
    run = str(out.resolve())
    for stale in own_trials(study, run, TrialState.RUNNING):  # in flight when the last run was killed
        study.tell(stale.number, state=TrialState.FAIL)
    done = len(own_trials(study, run, TrialState.COMPLETE)) if resume else 0
    folder = open_folder(task, out, resume, keep_rows=done)
    if done:
        log(f"resuming {out} after trial {done}")
    bar = tqdm(total=search.episodes, initial=done, desc="bayesian search", disable=not progress)
    with open_executor(search, problem_of, replace(task, data=None), local=problem) as executor:
        while done < search.episodes:
            batch = [ask(study, problem, run, seed, done + i, trial_batch)
                     for i in range(min(trial_batch, search.episodes - done))]  # fmt: skip
            played = executor.map_ordered(play_trial, [actions_of(problem, t) for t in batch])
            for suggestion, outcome in zip(batch, played):
                done += 1
                record(folder, done, outcome, problem.budget.value)
                study.tell(suggestion, outcome.reward)
                bar.update(1)
    bar.close()
    return finish_search(task, folder, time.perf_counter() - start, log=log)
