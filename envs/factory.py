"""Build the pruning env from a config, for `gymnasium.make("amc/ChannelPruning-v0", config=...)`.

This is the I/O edge: the problem factory reads the data, the base model and the cost model; the env itself
never touches files.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from amc.config import ExperimentConfig, load_config
from amc.problem import build_task
from envs.channel_pruning import ChannelPruningEnv


def env_from_config(
    config: str | Path | ExperimentConfig | None = None, overrides: dict[str, Any] | None = None,
    progress: bool = False,
) -> ChannelPruningEnv:  # fmt: skip
    resolved = config if isinstance(config, ExperimentConfig) else load_config(config, overrides)
    return ChannelPruningEnv(build_task(resolved, progress=progress, log=lambda _: None).problem)
