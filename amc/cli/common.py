"""Flags every experiment command shares: --config, the usual overrides, and --set section.key=value."""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path
from typing import Any

from amc.config import ExperimentConfig, load_config, parse_override
from amc.errors import UserError


def add_config_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", help="experiment YAML (default: built-in defaults; see configs/)")
    parser.add_argument("--model", help="model name (model.name), e.g. resnet20 or torchvision:resnet18")
    parser.add_argument("--dataset", help="dataset name (data.dataset), e.g. fashion-mnist; `amc list datasets`")
    parser.add_argument("--data-root", help="dataset folder (data.root)")
    parser.add_argument("--checkpoint", help="base weights: a .pt path, auto or none (model.checkpoint)")
    parser.add_argument("--seed", type=int, help="experiment seed (experiment.seed)")
    parser.add_argument("--threads", type=int, help="torch CPU threads (experiment.threads)")
    parser.add_argument(
        "--device",
        help="where networks train and are scored (experiment.device): cpu (default), cuda, cuda:N, or auto "
        "(a GPU if torch sees one, else cpu); cost models still price the target device",
    )
    parser.add_argument(
        "--amp",
        action="store_true",
        default=None,
        help="bfloat16 mixed precision on CUDA (experiment.amp); faster on tensor-core GPUs, not bit-identical to "
        "float32; refused on the CPU",
    )
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
        "experiment.device": args.device,
        "experiment.amp": args.amp,
        **(extra or {}),
    }
    for text in args.set:
        key, value = parse_override(text)
        overrides[key] = value
    require_text_file(args.config, "config", "pass an experiment YAML such as configs/smoke.yaml to --config.")
    config = load_config(args.config, overrides)
    check_names(config)
    check_device(config)
    return config


def check_device(config: ExperimentConfig) -> None:
    """A GPU the config asks for exists (and --amp has one), before data loads; torch loads only to look."""
    if config.experiment.device != "cpu" or config.experiment.amp:
        from amc.device import check_compute

        check_compute(config)


def check_names(config: ExperimentConfig) -> None:
    """The model and the dataset exist, before data loads or a model is built (a minute on a large dataset)."""
    from amc.data.registry import dataset_info
    from amc.models.registry import model_info

    model_info(config.model.name)
    dataset_info(config.data.dataset)


def check_checkpoint(config: ExperimentConfig) -> None:
    """An explicit model.checkpoint to start from exists (`amc train` writes it instead, so it does not ask)."""
    checkpoint = config.model.checkpoint
    if checkpoint not in ("auto", "none") and not Path(checkpoint).is_file():
        state = "is a folder, not a file" if Path(checkpoint).is_dir() else "does not exist"
        raise UserError(
            f"model.checkpoint {checkpoint} {state}.", fix="train one with `amc train`, or set model.checkpoint: auto."
        )


def check_output_path(path: Path, flag: str = "--out", kind: str = "folder") -> None:
    """Fail before any work when `path` cannot be written: a folder (kind="folder") or a file (kind="file") that
    exists as the other kind, sits under a regular file, or in a place this user cannot create files in."""
    fix = f"point {flag} at a {kind} in a writable place (or remove what is there)."
    if kind == "folder" and path.exists() and not path.is_dir():
        raise UserError(f"{flag} {path} is an existing file, not a folder.", fix=fix)
    if kind == "file" and path.is_dir():
        raise UserError(f"{flag} {path} is an existing folder, not a file.", fix=fix)
    existing = path if kind == "folder" and path.is_dir() else path.parent
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise UserError(f"{flag} {path} cannot be created: {existing} is a file, not a folder.", fix=fix)
    try:  # os.access says yes to root on read-only mounts: really create a file
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as error:
        raise UserError(
            f"{flag} {path} is not writable: cannot create files in {existing} ({error.strerror or error}).", fix=fix
        ) from None


def require_text_file(path: Path | str | None, what: str, fix: str) -> None:
    """A YAML / JSON input that exists is UTF-8 text (a binary file given by mistake is a UserError, not a
    UnicodeDecodeError); a missing one is left to the reader, which says so."""
    if path is None or not Path(path).is_file():
        return
    try:
        Path(path).read_bytes().decode("utf-8")
    except UnicodeDecodeError as error:
        raise UserError(f"{what} {path} is not a text file (byte {error.start} is not UTF-8).", fix=fix) from None
