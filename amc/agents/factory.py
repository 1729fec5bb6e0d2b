"""Build an AMC-configured stable-baselines3 agent for a pruning env from the agent section of a config."""

from __future__ import annotations

from pathlib import Path

import gymnasium as gym
from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm

from amc.agents.algorithms import ALGORITHMS
from amc.agents.noise import TruncatedNormalActionNoise
from amc.agents.replay import EpisodeRewardReplayBuffer
from amc.config import AgentSection
from amc.errors import UserError
from amc.optional import installed


def make_agent(
    env: gym.Env, settings: AgentSection, steps_per_episode: int, seed: int, tensorboard_dir: Path | None = None
) -> OffPolicyAlgorithm:
    """DDPG (default), TD3 or SAC with AMC's settings: warm-up episodes, discount 1, episode-level reward credit
    with a moving-average baseline, truncated-normal exploration decaying per episode, separate learning rates.

    Training curves go to `tensorboard_dir` when tensorboard (the `tensorboard` extra) is installed; without it
    they are skipped (stable-baselines3 would raise ImportError), and episodes.csv still holds every episode."""
    if settings.algorithm not in ALGORITHMS:
        raise UserError(
            f"agent.algorithm {settings.algorithm!r} is not known.", fix=f"use one of {', '.join(sorted(ALGORITHMS))}."
        )
    algorithm = ALGORITHMS[settings.algorithm]
    kwargs: dict = {
        "learning_rate": settings.lr_actor,
        "buffer_size": settings.buffer_size,
        "learning_starts": settings.warmup_episodes * steps_per_episode,
        "batch_size": settings.batch_size,
        "tau": settings.tau,
        "gamma": 1.0,
        "train_freq": (1, "episode"),
        "gradient_steps": settings.gradient_steps,
        "replay_buffer_class": EpisodeRewardReplayBuffer,
        "replay_buffer_kwargs": {"baseline_alpha": settings.baseline_alpha},
        "policy_kwargs": {"net_arch": list(settings.hidden)},
        "seed": seed,
        "device": "cpu",
        "verbose": 0,
        "tensorboard_log": str(tensorboard_dir) if tensorboard_dir and installed("tensorboard") else None,
    }
    if settings.algorithm != "sac":
        kwargs["action_noise"] = TruncatedNormalActionNoise(
            settings.noise_sigma, settings.noise_decay, settings.warmup_episodes, seed=seed
        )
    agent = algorithm("MlpPolicy", env, **kwargs)
    agent.critic_learning_rate = settings.lr_critic  # type: ignore[attr-defined]
    return agent
