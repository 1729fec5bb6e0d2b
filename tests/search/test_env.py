"""The channel-pruning env: both env checkers, determinism, budget clipping and feasibility, bad settings."""

from __future__ import annotations

import warnings

import gymnasium
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env as gym_check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env

import envs
from amc.errors import UserError
from envs import ChannelPruningEnv


def rollout(env: ChannelPruningEnv, actions: list[float], seed: int = 0) -> tuple[list[np.ndarray], float, dict]:
    obs, _ = env.reset(seed=seed)
    observations = [obs]
    for action in actions:
        obs, reward, terminated, truncated, info = env.step(np.array([action], dtype=np.float32))
        observations.append(obs)
        if terminated:
            return observations, reward, info
    raise AssertionError("episode did not end")


def test_env_checkers_pass_without_warnings(tiny_env_kwargs: dict) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        gym_check_env(ChannelPruningEnv(**tiny_env_kwargs), skip_render_check=True)
        sb3_check_env(ChannelPruningEnv(**tiny_env_kwargs), warn=True)


def test_spaces_and_episode_length(tiny_env_kwargs: dict) -> None:
    env = ChannelPruningEnv(**tiny_env_kwargs)
    assert env.action_space.low.tolist() == [-1.0] and env.action_space.high.tolist() == [1.0]
    assert env.observation_space.shape == (13,)
    # one decision per prunable coupling group: the residual group is decided once
    assert len(env.order) == len(tiny_env_kwargs["table"].prunable_groups) == 3


def test_seeded_rollout_is_deterministic(tiny_env_kwargs: dict) -> None:
    actions = [0.3, -0.2, 0.9]
    first = rollout(ChannelPruningEnv(**tiny_env_kwargs), actions)
    second = rollout(ChannelPruningEnv(**tiny_env_kwargs), actions)
    assert all(np.array_equal(a, b) for a, b in zip(first[0], second[0]))
    assert first[1] == second[1] and first[2]["kept"] == second[2]["kept"]


@pytest.mark.parametrize("ratio", [0.3, 0.5, 0.8])
def test_every_episode_meets_the_budget(tiny_env_kwargs: dict, ratio: float) -> None:
    env = ChannelPruningEnv(**{**tiny_env_kwargs, "budget_ratio": ratio})
    rng = np.random.default_rng(0)
    for _ in range(10):
        _, _, info = rollout(env, list(rng.uniform(-1, 1, size=len(env.order))))
        assert info["cost"] <= info["budget"] + 1e-9
        assert info["strategy"].metadata.cost == info["cost"]
    # keeping everything is clipped down to the budget, not passed through
    _, _, info = rollout(env, [1.0] * len(env.order))
    assert info["budget"] * 0.5 < info["cost"] <= info["budget"]


def test_clipping_searches_discrete_counts_not_a_line(tiny_env_kwargs: dict) -> None:
    """With every later group at its minimum, the first group gets the largest count that still fits."""
    env = ChannelPruningEnv(**tiny_env_kwargs)
    env.reset(seed=0)
    env.step(np.array([1.0], dtype=np.float32))
    first = env.order[0]
    chosen = env._kept[first]
    rest = {g: env.minimum[g] for g in env.order[1:]}
    assert env.accountant.cost({**rest, first: chosen}) <= env.budget.value
    larger = [c for c in env.counts[first] if c > chosen]
    assert all(env.accountant.cost({**rest, first: c}) > env.budget.value for c in larger)


def test_infeasible_budget_is_refused_with_the_minimum(tiny_env_kwargs: dict) -> None:
    with pytest.raises(UserError, match=r"cannot be met.*lbound=0.2.*costs") as error:
        ChannelPruningEnv(**{**tiny_env_kwargs, "budget_ratio": 0.01})
    assert "at least" in error.value.fix


@pytest.mark.parametrize(
    ("change", "message"),
    [({"reward": "accuracy"}, "search.reward"), ({"lbound": 0.0}, "lbound"), ({"rbound": 1.5}, "rbound")],
)
def test_bad_settings_are_user_errors(tiny_env_kwargs: dict, change: dict, message: str) -> None:
    with pytest.raises(UserError, match=message):
        ChannelPruningEnv(**{**tiny_env_kwargs, **change})


def test_error_log_cost_reward(tiny_env_kwargs: dict) -> None:
    env = ChannelPruningEnv(**{**tiny_env_kwargs, "reward": "error_log_cost"})
    _, reward, info = rollout(env, [0.0, 0.0, 0.0])
    assert reward == pytest.approx(-(1 - info["accuracy"]) * np.log(info["cost"]))


def test_gymnasium_make_from_config() -> None:
    env = gymnasium.make(envs.ENV_ID, config="configs/smoke.yaml")
    obs, _ = env.reset(seed=0)
    assert env.observation_space.contains(obs)
    terminated = False
    while not terminated:
        obs, reward, terminated, _, info = env.step(env.action_space.sample())
    assert 0.0 <= info["accuracy"] <= 1.0 and info["cost"] <= info["budget"]
