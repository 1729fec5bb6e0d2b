"""Reinforcement-learning agents configured as AMC (stable-baselines3 DDPG by default; TD3 and SAC selectable)."""

from amc.agents.factory import make_agent
from amc.agents.noise import TruncatedNormalActionNoise
from amc.agents.replay import EpisodeRewardReplayBuffer
from amc.agents.state import (
    load_agent_state,
    load_policy_weights,
    read_agent_state,
    read_policy,
    save_agent_state,
)

__all__ = [
    "EpisodeRewardReplayBuffer",
    "TruncatedNormalActionNoise",
    "load_agent_state",
    "load_policy_weights",
    "make_agent",
    "read_agent_state",
    "read_policy",
    "save_agent_state",
]
