"""Build the pruning env from a config, for `gymnasium.make("amc/ChannelPruning-v0", config=...)`.

This is the I/O edge: it reads the YAML, loads data and the base model and opens the cost model, then hands
the env ready objects. The env itself never touches files.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from amc.config import ExperimentConfig, load_config
from amc.search.task import build_task
from envs.channel_pruning import ChannelPruningEnv


def env_from_config(
    config: str | Path | ExperimentConfig | None = None, overrides: dict[str, Any] | None = None,
    progress: bool = False,
) -> ChannelPruningEnv:  # fmt: skip
    resolved = config if isinstance(config, ExperimentConfig) else load_config(config, overrides)
    task = build_task(resolved, progress=progress, log=lambda _: None)
    return ChannelPruningEnv(**task.env_kwargs())
