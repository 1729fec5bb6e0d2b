"""The pruning env over a problem: both env checkers, spaces, determinism, budget met, config entry point."""

from __future__ import annotations

import warnings
from collections.abc import Callable

import gymnasium
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env as gym_check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env

import envs
from amc.problem import Outcome, PruningProblem
from envs import ChannelPruningEnv

MakeProblem = Callable[..., PruningProblem]


def rollout(env: ChannelPruningEnv, actions: list[float], seed: int = 0) -> tuple[list[np.ndarray], float, Outcome]:
    obs, _ = env.reset(seed=seed)
    observations = [obs]
    for action in actions:
        obs, reward, terminated, truncated, info = env.step(np.array([action], dtype=np.float32))
        observations.append(obs)
        if terminated:
            return observations, reward, info["outcome"]
    raise AssertionError("episode did not end")


@pytest.mark.parametrize("granularity", ["channel", "element"])
def test_env_checkers_pass_without_warnings(make_problem: MakeProblem, granularity: str) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        gym_check_env(ChannelPruningEnv(make_problem(granularity)), skip_render_check=True)
        sb3_check_env(ChannelPruningEnv(make_problem(granularity)), warn=True)


def test_spaces_and_episode_length(make_problem: MakeProblem) -> None:
    problem = make_problem()
    env = ChannelPruningEnv(problem)
    assert env.action_space.low.tolist() == [-1.0] and env.action_space.high.tolist() == [1.0]
    assert env.observation_space.shape == (13,)
    # one decision per prunable coupling group: the residual group is decided once
    assert len(problem.order) == len(problem.table.prunable_groups) == 3


def test_seeded_rollout_is_deterministic(make_problem: MakeProblem) -> None:
    actions = [0.3, -0.2, 0.9]
    first = rollout(ChannelPruningEnv(make_problem()), actions)
    second = rollout(ChannelPruningEnv(make_problem()), actions)
    assert all(np.array_equal(a, b) for a, b in zip(first[0], second[0]))
    assert first[1] == second[1] and first[2].decisions == second[2].decisions


@pytest.mark.parametrize("ratio", [0.3, 0.5, 0.8])
def test_every_episode_meets_the_budget(make_problem: MakeProblem, ratio: float) -> None:
    problem = make_problem(budget_ratio=ratio)
    env = ChannelPruningEnv(problem)
    rng = np.random.default_rng(0)
    for _ in range(10):
        _, reward, outcome = rollout(env, list(rng.uniform(-1, 1, size=len(problem.order))))
        assert outcome.cost <= problem.budget.value + 1e-9
        assert outcome.result.metadata.cost == outcome.cost and reward == outcome.reward
    # keeping everything is clipped down to the budget, not passed through
    _, _, outcome = rollout(env, [1.0] * len(problem.order))
    assert problem.budget.value * 0.5 < outcome.cost <= problem.budget.value


def test_observation_reports_the_reduced_cost(make_problem: MakeProblem) -> None:
    problem = make_problem()
    env = ChannelPruningEnv(problem)
    observations, _, outcome = rollout(env, [-1.0, -1.0, -1.0])
    assert observations[0][10] == 0.0  # nothing reduced before the first decision
    assert observations[-1][10] == pytest.approx(1.0 - outcome.cost / problem.dense_cost, abs=1e-6)
    assert observations[-1][12] == pytest.approx(outcome.keep_ratios[-1], abs=1e-6)


def test_error_log_cost_reward_comes_from_the_problem(make_problem: MakeProblem) -> None:
    _, reward, outcome = rollout(ChannelPruningEnv(make_problem(reward="error_log_cost")), [0.0, 0.0, 0.0])
    assert reward == pytest.approx(-(1 - outcome.accuracy) * np.log(outcome.cost))


def test_gymnasium_make_from_config() -> None:
    env = gymnasium.make(envs.ENV_ID, config="configs/smoke.yaml")
    obs, _ = env.reset(seed=0)
    assert env.observation_space.contains(obs)
    terminated = False
    while not terminated:
        obs, reward, terminated, _, info = env.step(env.action_space.sample())
    outcome = info["outcome"]
    assert 0.0 <= outcome.accuracy <= 1.0 and outcome.cost <= env.unwrapped.problem.budget.value
