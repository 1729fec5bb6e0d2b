"""`amc train`: train a base model and cache its checkpoint (resumable, with a progress bar)."""

from __future__ import annotations

import argparse
from collections.abc import Sized
from pathlib import Path
from typing import cast

import torch

from amc.cli.common import add_config_arguments, check_output_path, config_from_args
from amc.training.base_model import checkpoint_path, load_data, train_base_model
from amc.training.checkpoints import base_checkpoint_path


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "train",
        help="train a base model on a dataset and cache the checkpoint",
        description=(
            "Train a model from scratch (SGD + cosine schedule; shift/flip augmentation with "
            "--set train.augment=true) on the training split "
            "(search-val held out), report test accuracy, and cache the checkpoint where searches find it "
            "($AMC_CACHE/checkpoints, default ~/.cache/amc). Each epoch is checkpointed: re-running the same "
            "command after Ctrl-C or kill resumes."
        ),
    )
    add_config_arguments(parser)
    parser.add_argument("--epochs", type=int, help="training epochs (train.epochs; default 3)")
    parser.add_argument("--lr", type=float, help="peak learning rate (train.lr)")
    parser.add_argument("--out", type=Path, help="checkpoint path (default: the cache path searches use)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    config = config_from_args(args, {"train.epochs": args.epochs, "train.lr": args.lr, "train.seed": args.seed})
    torch.set_num_threads(config.experiment.threads)
    default = checkpoint_path(config) or base_checkpoint_path(config.model.name, config.data.dataset, config.train.seed)
    out = args.out or default
    check_output_path(out, "--out" if args.out else "the checkpoint path (model.checkpoint / $AMC_CACHE)", "file")
    bundle = load_data(config)
    # typed as torch Datasets, which need not be Sized; every registry dataset defines __len__
    train, search_val = (cast(Sized, split) for split in (bundle.train, bundle.search_val))
    print(
        f"training {config.model.name} on {bundle.name} ({len(train)} train / {len(search_val)} "
        f"search-val images, {config.experiment.threads} threads) -> {out}"
    )
    train_base_model(config, bundle, out, progress=not args.no_progress)
    print(f"saved {out}")
    return 0
