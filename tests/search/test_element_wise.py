"""The env's element-wise mode: one step per layer, weight density as the action, priced by a sparse model."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env as gym_check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env

from amc.pruning import LayerDensities
from envs import ChannelPruningEnv
from envs.element_wise import density_grid, snap_density
from hwmodel import create_cost_model


@pytest.fixture
def element_kwargs(tiny_env_kwargs: dict) -> dict:
    return {**tiny_env_kwargs, "granularity": "element", "cost_model": create_cost_model("sparse:macs")}


def test_env_checkers_pass_in_element_mode(element_kwargs: dict) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        gym_check_env(ChannelPruningEnv(**element_kwargs), skip_render_check=True)
        sb3_check_env(ChannelPruningEnv(**element_kwargs), warn=True)


def test_one_step_per_layer_and_budget_met(element_kwargs: dict) -> None:
    env = ChannelPruningEnv(**element_kwargs)
    assert len(env.order) == len(element_kwargs["table"].layers)
    rng = np.random.default_rng(0)
    for _ in range(5):
        env.reset(seed=0)
        for action in rng.uniform(-1, 1, size=len(env.order)):
            _, _, terminated, _, info = env.step(np.array([action], dtype=np.float32))
        assert terminated and info["cost"] <= info["budget"] + 1e-12
        densities = info["strategy"]
        assert isinstance(densities, LayerDensities)
        assert all(0.2 - 1e-9 <= d < 1.0 for d in densities.densities.values())


def test_zeroed_weights_match_the_chosen_density(element_kwargs: dict) -> None:
    env = ChannelPruningEnv(**element_kwargs)
    env.reset(seed=0)
    kept = {index: 0.5 for index in env.order}
    pruned = env._apply(kept)
    for layer in element_kwargs["table"].layers:
        weight = pruned.get_submodule(layer.name).weight
        assert (weight != 0).float().mean().item() == pytest.approx(0.5, abs=0.02)


def test_density_grid_and_snapping() -> None:
    grid = density_grid(0.2, 1.0)
    assert grid[0] == 0.2 and grid[-1] == 1.0 and len(grid) == 81
    assert snap_density(0.555, grid) == 0.55 and snap_density(0.1, grid) == 0.2


def test_unknown_granularity_is_a_user_error(tiny_env_kwargs: dict) -> None:
    from amc.errors import UserError

    with pytest.raises(UserError, match="granularity"):
        ChannelPruningEnv(**{**tiny_env_kwargs, "granularity": "block"})
