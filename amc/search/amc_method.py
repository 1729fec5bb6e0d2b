"""The AMC search: a stable-baselines3 agent driving the pruning env over the task's problem, one episode per strategy.

Episode bookkeeping, best-strategy tracking, progress and checkpoints are a `BaseCallback`. The agent's whole
state is checkpointed after each episode's updates, so a killed run loses at most the episode in flight and
`--resume` continues it (episodes.csv is cut back to the checkpoint, so no episode appears twice).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm
from tqdm.auto import tqdm

from amc.agents import load_agent_state, load_policy_weights, make_agent, read_agent_state, save_agent_state
from amc.errors import UserError
from amc.problem import Outcome, Task
from amc.search.result import SearchResult, finish_search
from amc.search.run_folder import EpisodeRow, RunFolder
from envs import ChannelPruningEnv

AGENT_FILE = "agent.pt"


class EpisodeCallback(BaseCallback):
    """Records each finished episode in the run folder, shows progress, checkpoints the agent between episodes."""

    def __init__(self, folder: RunFolder, budget: float, episodes_done: int, total: int,
                 checkpoint: Callable[[int], None], progress: bool) -> None:  # fmt: skip
        super().__init__()
        self.folder = folder
        self.budget = budget
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
        row = EpisodeRow(
            self.episodes_done, float(self.locals["rewards"][0]), outcome.accuracy, outcome.cost, self.budget,
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
    env = ChannelPruningEnv(problem)
    steps = len(problem.order)
    agent_path = out / "agent" / AGENT_FILE
    state = read_agent_state(agent_path) if resume and agent_path.exists() else None
    done = int(state["episodes"]) if state else 0
    folder = RunFolder.create(out, config, problem.names, resume, keep_rows=done)
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
    else:
        _learn(agent, folder, problem.budget.value, done, config.search.episodes, steps, agent_path, progress)
    return finish_search(task, folder, time.perf_counter() - start, log=log)


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
