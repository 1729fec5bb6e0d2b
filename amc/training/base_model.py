"""From a validated config to the objects a run needs: data splits and the trained base model.

The base model is the cached result of `amc train` for (model, dataset, seed). With model.checkpoint: auto a
missing one is taken from the base models amc ships (amc/training/shipped.py) when the config asks for exactly
one of them, and otherwise trained on the spot (and cached), so the demo runs on a fresh machine.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from amc.config import ExperimentConfig
from amc.data import DataBundle, load_dataset
from amc.device import check_compute, resolve_device, to_device
from amc.errors import UserError
from amc.models import create_model
from amc.training.checkpoints import base_checkpoint_path, load_weights, save_checkpoint
from amc.training.loop import TrainResult, TrainSettings, accuracy_on, train
from amc.training.shipped import shipped_for


def load_data(config: ExperimentConfig) -> DataBundle:
    data = config.data
    return load_dataset(data.dataset, data.root, data.search_val_size, data.split_seed, data.image_size)


def build_model(config: ExperimentConfig, bundle: DataBundle) -> nn.Module:
    return create_model(config.model.name, in_channels=bundle.input_size[0], num_classes=bundle.num_classes)


def checkpoint_path(config: ExperimentConfig) -> Path | None:
    if config.model.checkpoint == "none":
        return None
    if config.model.checkpoint == "auto":
        path = base_checkpoint_path(config.model.name, config.data.dataset, config.train.seed)
        slimming = config.train.slimming_l1
        return path.with_name(f"{path.stem}__slim{slimming:g}.pt") if slimming else path  # not the plain base
    return Path(config.model.checkpoint)


def train_base_model(
    config: ExperimentConfig, bundle: DataBundle, out: Path, progress: bool = True, log: Callable[[str], None] = print
) -> tuple[nn.Module, TrainResult, float]:
    """Train the configured model from scratch (resumable) on experiment.device, save it to `out`; returns (model,
    on that device, history, test top-1)."""
    experiment = check_compute(config).experiment
    torch.manual_seed(config.train.seed)
    model = to_device(build_model(config, bundle), resolve_device(experiment.device), experiment.channels_last)
    section = config.train
    settings = TrainSettings(
        section.epochs,
        section.batch_size,
        section.optimizer,
        section.lr,
        section.weight_decay,
        section.label_smoothing,
        section.augment and bundle.augmentable,
        section.seed,
        section.slimming_l1,
    )
    state_path = out.with_suffix(".state.pt")
    result = train(model, bundle.train, bundle.search_val, settings, state_path=state_path, progress=progress, log=log,
                   amp=experiment.amp)  # fmt: skip
    tick = time.perf_counter()
    test = accuracy_on(model, bundle.test, config.data.batch_size, amp=experiment.amp)
    log(
        f"test accuracy {100 * test.top1:.2f}% (top-5 {100 * test.top5:.2f}%) on {test.images} images "
        f"in {time.perf_counter() - tick:.1f} s; training took {result.seconds:.0f} s"
    )
    save_checkpoint(
        out,
        model,
        {
            "model": config.model.name,
            "dataset": bundle.name,
            "input_size": list(bundle.input_size),
            "num_classes": bundle.num_classes,
            "epochs": section.epochs,
            "seed": section.seed,
            "train": dataclasses.asdict(section),
            "data": {
                "search_val_size": config.data.search_val_size,
                "split_seed": config.data.split_seed,
                "image_size": config.data.image_size,
            },
            "test_top1": test.top1,
            "test_top5": test.top5,
            "train_seconds": result.seconds,
            "threads": torch.get_num_threads(),
        },
    )
    state_path.unlink(missing_ok=True)
    return model, result, test.top1


def load_base_model(
    config: ExperimentConfig, bundle: DataBundle, progress: bool = True, log: Callable[[str], None] = print
) -> nn.Module:
    """The trained base model on the CPU in eval mode; trains (on experiment.device) and caches it first when
    model.checkpoint is auto and missing."""
    path = checkpoint_path(config)
    if path is None:  # random weights, but the same ones every run (seeded by train.seed, global RNG untouched)
        with torch.random.fork_rng():
            torch.manual_seed(config.train.seed)
            model = build_model(config, bundle)
        log("model.checkpoint is none: using random weights (accuracies will be meaningless).")
        return model.eval()
    model = build_model(config, bundle)
    if path.is_file():
        load_weights(model, path)
    elif config.model.checkpoint == "auto" and (shipped := shipped_for(config)) is not None:
        load_weights(model, shipped.path)
        log(
            f"using the shipped {shipped.model} for {shipped.dataset} (test top-1 {100 * shipped.test_top1:.2f}%; "
            f"reproduce it with `{shipped.command}`)"
        )
    elif config.model.checkpoint == "auto":
        log(
            f"no cached {config.model.name} for {config.data.dataset}: training it now "
            f"({config.train.epochs} epochs; cached at {path})"
        )
        model = train_base_model(config, bundle, path, progress=progress, log=log)[0].cpu()
    else:
        raise UserError(
            f"model.checkpoint {path} does not exist.", fix="train one with `amc train`, or set model.checkpoint: auto."
        )
    return model.eval()
