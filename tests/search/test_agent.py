"""AMC's agent pieces: truncated-normal exploration, episode-level reward credit, separate learning rates."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
from gymnasium import spaces
from stable_baselines3.common.logger import Logger

from amc.agents import EpisodeRewardReplayBuffer, TruncatedNormalActionNoise, make_agent
from amc.config import AgentSection
from amc.problem import PruningProblem
from envs import ChannelPruningEnv


def test_noise_stays_in_bounds_and_decays_after_warmup() -> None:
    noise = TruncatedNormalActionNoise(sigma=0.5, decay=0.95, warmup_episodes=2, seed=0)
    samples = np.concatenate([noise.perturb(np.array([0.9])) for _ in range(500)])
    assert samples.min() >= -1.0 and samples.max() <= 1.0
    assert 0.3 < samples.mean() < 0.9  # truncated at +1: the mean is pulled below 0.9
    sigmas = []
    for _ in range(5):
        sigmas.append(noise.sigma)
        noise.reset()
    assert sigmas[0] == sigmas[1] == sigmas[2] == pytest.approx(1.0)  # 0.5 on the keep scale = 1.0 on [-1, 1]
    assert sigmas[3] == pytest.approx(0.95) and sigmas[4] == pytest.approx(0.95**2)


def test_noise_state_round_trip() -> None:
    noise = TruncatedNormalActionNoise(seed=3)
    noise.reset()
    state = noise.state_dict()
    expected = noise.perturb(np.zeros(1))
    clone = TruncatedNormalActionNoise(seed=99)
    clone.load_state_dict(state)
    assert clone.episodes == 1 and np.array_equal(clone.perturb(np.zeros(1)), expected)


def test_every_transition_gets_the_final_reward_minus_a_moving_baseline() -> None:
    box = spaces.Box(0, 1, (2,), np.float32)
    buffer = EpisodeRewardReplayBuffer(16, box, spaces.Box(-1, 1, (1,), np.float32), device="cpu", baseline_alpha=0.5)
    obs = np.zeros((1, 2), np.float32)
    for step, done in enumerate([False, False, True]):
        info = {"executed_action": np.array([0.1 * step], np.float32)}
        buffer.add(obs, obs, np.array([[0.9]], np.float32), np.array([7.0 if done else 0.0]), np.array([done]), [info])
        assert buffer.size() == (3 if done else 0)  # held back until the episode ends
    assert buffer.rewards[:3, 0].tolist() == [7.0, 7.0, 7.0]
    assert np.allclose(buffer.actions[:3, 0, 0], [0.0, 0.1, 0.2])  # the executed (clipped) actions
    first = buffer._get_samples(np.array([0, 1, 2]))
    assert np.allclose(first.rewards.numpy(), 0.0) and buffer.baseline == 7.0


def test_agent_is_configured_as_amc(make_problem: Callable[..., PruningProblem]) -> None:
    env = ChannelPruningEnv(make_problem())
    agent = make_agent(env, AgentSection(warmup_episodes=4, hidden=(300, 300)), steps_per_episode=3, seed=0)
    assert agent.gamma == 1.0 and agent.tau == 0.01 and agent.batch_size == 64
    assert agent.learning_starts == 12
    assert [layer.out_features for layer in agent.actor.mu if hasattr(layer, "out_features")] == [300, 300, 1]
    agent.set_logger(Logger(folder=None, output_formats=[]))
    agent._update_learning_rate([agent.actor.optimizer, agent.critic.optimizer])
    assert agent.actor.optimizer.param_groups[0]["lr"] == 1e-4
    assert agent.critic.optimizer.param_groups[0]["lr"] == 1e-3
    assert isinstance(agent.action_noise, TruncatedNormalActionNoise)
