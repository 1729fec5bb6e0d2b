"""The AMC search: a stable-baselines3 agent driving the pruning env over the task's problem, one episode per strategy.

Episode bookkeeping, best-strategy tracking, progress and checkpoints are a `BaseCallback`. The agent's whole
state is checkpointed after each episode's updates, so a killed run loses at most the episode in flight and
`--resume` continues it (episodes.csv is cut back to the checkpoint, so no episode appears twice).
With search.workers > 1 the agent keeps that many episodes in flight, scored on workers (amc.search.amc_parallel);
with one worker it runs stable-baselines3's own learn loop, one episode at a time in this process.

A budget-conditioned run (`agent.budget_range`) draws each episode's budget and shows it to the agent (the env);
each row of episodes.csv records the budget its episode drew. Rewards at different budgets do not compare, so the
run's best (best_strategy.json, summary.json, re-ranking) is the most rewarding episode whose cost meets the
config's own budget (budget.ratio / budget.value), whatever it drew; summary.json says it was conditioned. The
policy for every budget is `amc pareto`'s job.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm
from tqdm.auto import tqdm

from amc.agents import load_agent_state, load_policy_weights, make_agent, read_agent_state, save_agent_state
from amc.errors import UserError
from amc.problem import Budget, Outcome, Result, Task
from amc.search.amc_parallel import learn_in_batches, scoring_problem
from amc.search.parallel import open_executor
from amc.search.result import SearchResult, finish_search
from amc.search.run_folder import EpisodeRow, RunFolder, recorded_rows
from envs import ChannelPruningEnv

AGENT_FILE = "agent.pt"


class EpisodeCallback(BaseCallback):
    """Records each finished episode in the run folder, shows progress, checkpoints the agent between episodes."""

    def __init__(self, folder: RunFolder, budget: float, episodes_done: int, total: int,
                 checkpoint: Callable[[int], None], progress: bool) -> None:  # fmt: skip
        super().__init__()
        self.folder = folder
        self.budget = budget
        self.conditioned = isinstance(folder, ConditionedRunFolder)
        self.episodes_done = episodes_done
        self.checkpointed = episodes_done
        self.checkpoint = checkpoint
        self.bar = tqdm(total=total, initial=episodes_done, desc="AMC search", unit="ep", disable=not progress)
        self.episode_start = time.perf_counter()
        self.agent_seconds = 0.0
        self.update_start: float | None = None

    def _on_rollout_start(self) -> None:
        if self.update_start is not None:
            self.agent_seconds = time.perf_counter() - self.update_start
        if self.episodes_done > self.checkpointed:
            self.checkpoint(self.episodes_done)
            self.checkpointed = self.episodes_done
        self.episode_start = time.perf_counter()

    def _on_rollout_end(self) -> None:
        self.update_start = time.perf_counter()

    def _on_step(self) -> bool:
        if not self.locals["dones"][0]:
            return True
        outcome: Outcome = self.locals["infos"][0]["outcome"]
        self.episodes_done += 1
        timings = {**outcome.timings, "agent_s": self.agent_seconds}
        budget = float(self.locals["infos"][0]["budget"]) if self.conditioned else self.budget
        row = EpisodeRow(
            self.episodes_done, float(self.locals["rewards"][0]), outcome.accuracy, outcome.cost, budget,
            list(outcome.keep_ratios), time.perf_counter() - self.episode_start + self.agent_seconds, timings,
        )  # fmt: skip
        self.folder.append(row, outcome.result)
        for key in ("accuracy", "cost", "reward"):
            self.logger.record(f"search/{key}", getattr(row, key))
        best = self.folder.best_row
        self.bar.update(1)
        if best is not None:
            self.bar.set_postfix(best_acc=f"{100 * best.accuracy:.2f}%", cost=f"{best.cost:.4g}")
        return True

    def _on_training_end(self) -> None:
        if self.episodes_done > self.checkpointed:
            self.checkpoint(self.episodes_done)
            self.checkpointed = self.episodes_done
        self.bar.close()


def run_amc(
    task: Task, out: Path, resume: bool = False, progress: bool = True, log: Callable[[str], None] = print
) -> SearchResult:
    config, problem = task.config, task.problem
    budget_range = _budget_range(config.agent.budget_range)
    learns_conditioned = budget_range is not None and not config.agent.policy
    configured = problem.budget
    batched = config.search.workers > 1 and not config.agent.policy
    env = ChannelPruningEnv(problem, budget_range if learns_conditioned else None, config.experiment.seed,
                            observe_budget=budget_range is not None, score_episodes=not batched)  # fmt: skip
    steps = len(problem.order)
    agent_path = out / "agent" / AGENT_FILE
    state = read_agent_state(agent_path) if resume and agent_path.exists() else None
    done = int(state["episodes"]) if state else 0
    env.episodes = done
    folder_class = ConditionedRunFolder if learns_conditioned else RunFolder
    folder = folder_class.create(out, config, problem.names, resume, keep_rows=done)
    if isinstance(folder, ConditionedRunFolder):
        folder.within = configured.value
    folder.restore_best()
    agent = make_agent(env, config.agent, steps, config.experiment.seed, out / "tensorboard")
    if state:
        load_agent_state(agent, state)
        log(f"resuming {out} after episode {done}")
    start = time.perf_counter()
    if config.agent.policy:
        _run_greedy(
            agent, env, folder, problem.budget.value, Path(config.agent.policy), config.search.episodes, progress
        )
    elif batched:
        workers = config.search.workers
        log(f"AMC: {workers} episodes in flight, scored on {workers} {config.search.executor} workers")
        with open_executor(config.search, scoring_problem, replace(task, data=None), local=problem) as executor:
            learn_in_batches(agent, env, executor, folder, None if learns_conditioned else configured.value, done,
                             config.search.episodes, workers, agent_path, progress)  # fmt: skip
    else:
        _learn(agent, folder, configured.value, done, config.search.episodes, steps, agent_path, progress)
    problem.budget = configured  # the env drew each episode's; what follows is about the config's
    result = finish_search(task, folder, time.perf_counter() - start, log=log)
    if learns_conditioned and budget_range is not None:
        _note_conditioned(folder, budget_range, configured)
    return result


class ConditionedRunFolder(RunFolder):
    """A budget-conditioned run's folder: rows keep the budget each episode drew, but the best (and the candidates
    re-ranked after the search) are the episodes meeting `within`, the config's budget, compared by reward."""

    within: float = float("inf")

    def append(self, row: EpisodeRow, result: Result | None = None) -> bool:
        return super().append(row, result if row.cost <= self.within else None)

    def episode_rows(self) -> list[EpisodeRow]:
        """The rows, each judged against the config's budget (what restore_best and the re-ranking compare)."""
        return [replace(row, budget=self.within) for row in super().episode_rows()]


def _budget_range(value: Sequence[float] | None) -> tuple[float, float] | None:
    return None if value is None else (float(value[0]), float(value[1]))


def _note_conditioned(folder: RunFolder, budget_range: tuple[float, float], configured: Budget) -> None:
    """summary.json says the run was conditioned and what its best is the best of."""
    summary = json.loads((folder.path / "summary.json").read_text())
    drawn = [float(row["budget"]) / configured.dense_cost for row in recorded_rows(folder.path)]
    summary["conditioned"] = {
        "budget_range": list(budget_range),
        "best_is": f"the most rewarding episode meeting budget.ratio {configured.ratio:.4g}, whatever it drew",
        "episodes_meeting_budget": sum(row.cost <= row.budget for row in folder.episode_rows()),
        "drawn_budget_ratios_min_max": [min(drawn), max(drawn)] if drawn else None,
    }
    folder.write_summary(summary)


def _learn(agent: OffPolicyAlgorithm, folder: RunFolder, budget: float, done: int, episodes: int, steps: int,
           agent_path: Path, progress: bool) -> None:  # fmt: skip
    def checkpoint(count: int) -> None:
        save_agent_state(agent, agent_path, count)

    callback = EpisodeCallback(folder, budget, done, episodes, checkpoint, progress)
    remaining = (episodes - done) * steps
    if remaining > 0:
        agent.learn(remaining, callback=callback, log_interval=1, tb_log_name="agent", reset_num_timesteps=done == 0)


def _run_greedy(agent: OffPolicyAlgorithm, env: ChannelPruningEnv, folder: RunFolder, budget: float, policy: Path,
                episodes: int, progress: bool) -> None:  # fmt: skip
    """Run a trained actor without exploration or learning (a learned policy on a new model or budget)."""
    if not policy.exists():
        raise UserError(
            f"agent checkpoint {policy} does not exist.", fix=f"point --policy at a run's agent/{AGENT_FILE}."
        )
    load_policy_weights(agent, policy)
    for episode in tqdm(range(1, episodes + 1), desc="greedy policy", disable=not progress):
        tick = time.perf_counter()
        obs, _ = env.reset()
        while True:
            action, _ = agent.predict(obs, deterministic=True)
            obs, reward, terminated, _, info = env.step(action)
            if terminated:
                break
        outcome: Outcome = info["outcome"]
        folder.append(
            EpisodeRow(episode, reward, outcome.accuracy, outcome.cost, budget,
                       list(outcome.keep_ratios), time.perf_counter() - tick, outcome.timings),
            outcome.result,
        )  # fmt: skip
