"""Gymnasium environments of amc. Importing this package registers `amc/ChannelPruning-v0`:

import envs, gymnasium
env = gymnasium.make("amc/ChannelPruning-v0", config="configs/smoke.yaml")
"""

from gymnasium.envs.registration import register, registry

from envs.channel_pruning import ChannelPruningEnv

ENV_ID = "amc/ChannelPruning-v0"

if ENV_ID not in registry:
    register(id=ENV_ID, entry_point="envs.factory:env_from_config")

__all__ = ["ENV_ID", "ChannelPruningEnv"]
