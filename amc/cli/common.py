"""Flags every experiment command shares: --config, the usual overrides, and --set section.key=value."""

from __future__ import annotations

import argparse
from typing import Any

from amc.config import ExperimentConfig, load_config, parse_override


def add_config_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", help="experiment YAML (default: built-in defaults; see configs/)")
    parser.add_argument("--model", help="model name (model.name), e.g. resnet20 or torchvision:resnet18")
    parser.add_argument("--dataset", help="dataset name (data.dataset), e.g. fashion-mnist; `amc list datasets`")
    parser.add_argument("--data-root", help="dataset folder (data.root)")
    parser.add_argument("--checkpoint", help="base weights: a .pt path, auto or none (model.checkpoint)")
    parser.add_argument("--seed", type=int, help="experiment seed (experiment.seed)")
    parser.add_argument("--threads", type=int, help="torch CPU threads (experiment.threads)")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="SECTION.KEY=VALUE",
        help="override any config key, e.g. --set search.episodes=50 (repeatable)",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bars (logs only)")


def config_from_args(args: argparse.Namespace, extra: dict[str, Any] | None = None) -> ExperimentConfig:
    overrides: dict[str, Any] = {
        "model.name": args.model,
        "data.dataset": args.dataset,
        "data.root": args.data_root,
        "model.checkpoint": args.checkpoint,
        "experiment.seed": args.seed,
        "experiment.threads": args.threads,
        **(extra or {}),
    }
    for text in args.set:
        key, value = parse_override(text)
        overrides[key] = value
    return load_config(args.config, overrides)
