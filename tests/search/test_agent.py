"""AMC's agent pieces: truncated-normal exploration, episode-level reward credit, separate learning rates."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
from gymnasium import spaces
from scipy.stats import truncnorm
from stable_baselines3.common.logger import Logger

from amc.agents import EpisodeRewardReplayBuffer, TruncatedNormalActionNoise, make_agent
from amc.config import AgentSection
from amc.problem import PruningProblem
from envs import ChannelPruningEnv


def test_noise_stays_in_bounds_and_decays_after_warmup() -> None:
    noise = TruncatedNormalActionNoise(sigma=0.5, decay=0.95, warmup_episodes=2, seed=0)
    samples = np.concatenate([noise.perturb(np.array([0.9]), 2) for _ in range(500)])
    assert samples.min() >= -1.0 and samples.max() <= 1.0
    # sigma 1.0 around 0.9, truncated to [-1, 1]: the mean is pulled far below 0.9 (to 0.25; sd of 500 draws 0.025)
    assert samples.mean() == pytest.approx(truncnorm.mean(-1.9, 0.1, loc=0.9, scale=1.0), abs=0.08)
    sigmas = [noise.sigma_at(episode) for episode in range(5)]
    assert sigmas[0] == sigmas[1] == sigmas[2] == pytest.approx(1.0)  # 0.5 on the keep scale = 1.0 on [-1, 1]
    assert sigmas[3] == pytest.approx(0.95) and sigmas[4] == pytest.approx(0.95**2)
    noise.reset()  # SB3 calls it at every episode end and when learn() starts: it must not move the schedule
    assert noise.sigma_at(3) == pytest.approx(0.95)


def test_noise_state_round_trip() -> None:
    noise = TruncatedNormalActionNoise(seed=3)
    noise.perturb(np.zeros(1), 0)
    state = noise.state_dict()
    expected = noise.perturb(np.zeros(1), 4)
    clone = TruncatedNormalActionNoise(seed=99)
    clone.load_state_dict(state)
    assert np.array_equal(clone.perturb(np.zeros(1), 4), expected)


def test_exploration_draws_are_not_the_warmup_draws_of_the_same_seed() -> None:
    """SB3 seeds the action space (warm-up) with the run's seed; the noise must draw from another stream, or the
    first learning episodes replay the warm-up's offsets around the actor's action."""
    box = spaces.Box(-1.0, 1.0, (1,), np.float32)
    box.seed(3)
    noise = TruncatedNormalActionNoise(sigma=0.5, seed=3)
    warmup = [float(box.sample()[0]) for _ in range(300)]
    explored = [float(noise.perturb(np.zeros(1), 0)[0]) for _ in range(300)]
    assert abs(np.corrcoef(warmup, explored)[0, 1]) < 0.3


def _explored_actions(agent, env: ChannelPruningEnv, episodes: int) -> list[np.ndarray]:
    """The exploration actions of `episodes` episodes as SB3's learn() draws them (warm-up, then actor + noise)."""
    actions = []
    for _ in range(episodes):
        agent._last_obs = env.reset()[0][None]
        terminated = False
        while not terminated:
            action, _ = agent._sample_action(agent.learning_starts, agent.action_noise, 1)
            actions.append(action)
            obs, _, terminated, _, _ = env.step(action[0])
            agent._last_obs = obs[None]
            agent.num_timesteps += 1
        agent._episode_num += 1
        agent.action_noise.reset()  # as SB3's collect_rollouts does at every episode end
    return actions


def test_a_resumed_agent_explores_with_the_straight_runs_sigma(
    make_problem: Callable[..., PruningProblem], tmp_path
) -> None:
    """The noise's decay follows the agent's episode count (restored on resume), not SB3's reset() calls, which
    learn() also makes when it starts: a resumed run explored one decay step ahead."""
    from amc.agents import load_agent_state, read_agent_state, save_agent_state

    settings = AgentSection(warmup_episodes=1, hidden=(8, 8), noise_decay=0.5)

    def build():
        env = ChannelPruningEnv(make_problem())
        agent = make_agent(env, settings, steps_per_episode=3, seed=0)
        agent.set_logger(Logger(folder=None, output_formats=[]))
        return agent, env

    straight, env = build()
    expected = _explored_actions(straight, env, 4)
    first, env = build()
    done = _explored_actions(first, env, 2)
    save_agent_state(first, tmp_path / "agent.pt", 2)
    resumed, env = build()
    load_agent_state(resumed, read_agent_state(tmp_path / "agent.pt"))
    resumed.action_noise.reset()  # what learn(reset_num_timesteps=False) does first
    for a, b in zip(done + _explored_actions(resumed, env, 2), expected, strict=True):
        assert np.array_equal(a, b)


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
