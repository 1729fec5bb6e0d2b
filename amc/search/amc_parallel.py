"""Parallel AMC episodes (search.workers > 1): the agent rolls out a batch of episodes here, workers score them.

An episode's steps are cheap (the actor, one exploration draw per step, cost queries and clipping); its score
(prune, BN re-estimation, evaluation) is not. So this process rolls out `search.workers` episodes one after the
other with the same actor, each with its own exploration draws (the noise's sigma still decays once per episode,
and warm-up still counts steps), maps `problem.score` over the workers (amc.search.parallel: local processes or
Ray actors, each set up once with the task), then enters every episode's transitions in the replay buffer with its
reward and records its row, in episode order, gives the agent the gradient steps the serial loop would have given
those episodes, and checkpoints the agent (the serial path's agent state). A killed run loses at most the batch in
flight, and `--resume` continues at the batch after the checkpoint.

The actor does not change within a batch, so a run with N workers is not the serial run; for fixed N and seed it
is deterministic whatever the executor, since workers only score and a score is a pure function of the decisions
and the budget the episode drew (a budget-conditioned run draws it from (seed, episode index) in the env's reset).
With one episode per batch this loop is stable-baselines3's own `learn` loop, row for row (tests check it).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm
from stable_baselines3.common.utils import configure_logger
from tqdm.auto import tqdm

from amc.agents import save_agent_state
from amc.problem import Outcome, PruningProblem, Task
from amc.search.parallel import Executor
from amc.search.run_folder import EpisodeRow, RunFolder
from envs import ChannelPruningEnv


@dataclass(frozen=True)
class ScoreRequest:
    """What a worker needs to score one rolled-out episode."""

    decisions: dict[int, Any]
    budget: float
    """The budget the episode drew (the outcome's metadata and reward are at this budget)."""


@dataclass
class Rollout:
    """One episode rolled out by the agent, waiting for its score."""

    request: ScoreRequest
    transitions: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, list[dict[str, Any]]]]
    """(obs, next_obs, buffer action, done, infos) per step, as SB3's collect_rollouts hands them to the buffer."""
    clip_s: float
    seconds: float
    gradient_steps: int
    """The updates the serial loop would make after this episode (none during warm-up)."""
    timesteps: int
    """The agent's step count at the end of the episode (the logger's x axis)."""


def scoring_problem(task: Task) -> PruningProblem:
    """Worker set-up: the problem a worker scores episodes on."""
    return task.problem


def score_episode(problem: PruningProblem, request: ScoreRequest) -> Outcome:
    """Worker function: score one episode's decisions at the budget it drew."""
    problem.budget = replace(problem.budget, value=request.budget)
    return problem.score(request.decisions)


def roll_out(agent: OffPolicyAlgorithm, env: ChannelPruningEnv) -> Rollout:
    """One episode's steps with the agent's exploration (SB3's `_sample_action`: warm-up or actor plus noise),
    counted as SB3's collect_rollouts counts them; the env leaves the scoring to the caller."""
    tick = time.perf_counter()
    obs, _ = env.reset()
    agent._last_obs = obs[None]
    transitions = []
    info: dict[str, Any] = {}
    terminated = False
    while not terminated:
        action, buffer_action = agent._sample_action(agent.learning_starts, agent.action_noise, 1)
        next_obs, _, terminated, _, info = env.step(action[0])
        agent.num_timesteps += 1
        transitions.append((agent._last_obs, next_obs[None], buffer_action, np.array([terminated]), [info]))
        agent._last_obs = next_obs[None]
    agent._episode_num += 1
    learns = agent.num_timesteps > agent.learning_starts
    steps = agent.gradient_steps if agent.gradient_steps >= 0 else len(transitions)
    return Rollout(
        ScoreRequest(info["decisions"], float(info["budget"])), transitions, float(info["clip_s"]),
        time.perf_counter() - tick, steps if learns else 0, agent.num_timesteps,
    )  # fmt: skip


def learn_in_batches(
    agent: OffPolicyAlgorithm, env: ChannelPruningEnv, executor: Executor, folder: RunFolder, budget: float | None,
    done: int, episodes: int, batch: int, agent_path: Path, progress: bool,
) -> None:  # fmt: skip
    """Episodes done+1..episodes, `batch` in flight at a time, on an env built with score_episodes=False.

    `budget` is every row's budget, or None for each episode's own draw (a budget-conditioned run). A batch's rows
    are recorded as soon as it is scored; the agent then trains and is checkpointed."""
    agent.set_logger(configure_logger(agent.verbose, agent.tensorboard_log, "agent", done == 0))
    agent_s = 0.0
    bar = tqdm(total=episodes, initial=done, desc=f"AMC search ({batch} in flight)", unit="ep", disable=not progress)
    with bar:
        while done < episodes:
            agent.policy.set_training_mode(False)
            rollouts = [roll_out(agent, env) for _ in range(min(batch, episodes - done))]
            outcomes = score_batch(executor, [rollout.request for rollout in rollouts])
            for rollout, outcome in zip(rollouts, outcomes, strict=True):
                done += 1
                _record(agent, folder, done, rollout, outcome, budget, agent_s)
                bar.update(1)
            best = folder.best_row
            if best is not None:
                bar.set_postfix(best_acc=f"{100 * best.accuracy:.2f}%", cost=f"{best.cost:.4g}")
            tick = time.perf_counter()
            for rollout, outcome in zip(rollouts, outcomes, strict=True):
                reward = np.array([outcome.reward], dtype=np.float32)
                for obs, next_obs, action, finished, infos in rollout.transitions:
                    agent.replay_buffer.add(obs, next_obs, action, reward, finished, infos)  # type: ignore[union-attr]
            gradient_steps = sum(rollout.gradient_steps for rollout in rollouts)
            if gradient_steps > 0:
                agent.train(gradient_steps=gradient_steps, batch_size=agent.batch_size)
            save_agent_state(agent, agent_path, done)
            agent_s = (time.perf_counter() - tick) / len(rollouts)


def score_batch(executor: Executor, requests: list[ScoreRequest]) -> list[Outcome]:
    """The batch's outcomes, in episode order, from the workers."""
    return list(executor.map_ordered(score_episode, requests))


def _record(agent: OffPolicyAlgorithm, folder: RunFolder, episode: int, rollout: Rollout, outcome: Outcome,
            budget: float | None, agent_s: float) -> None:  # fmt: skip
    timings = {**outcome.timings, "cost_s": outcome.timings["cost_s"] + rollout.clip_s, "agent_s": agent_s}
    row = EpisodeRow(
        episode, float(np.float32(outcome.reward)), outcome.accuracy, outcome.cost,
        rollout.request.budget if budget is None else budget, list(outcome.keep_ratios),
        rollout.seconds + outcome.wall_s + agent_s, timings,
    )  # fmt: skip
    folder.append(row, outcome.result)
    for key in ("accuracy", "cost", "reward"):
        agent.logger.record(f"search/{key}", getattr(row, key))
    agent.logger.dump(step=rollout.timesteps)
