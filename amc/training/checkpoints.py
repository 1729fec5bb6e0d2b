"""Model checkpoints: a state dict plus plain metadata, loadable with `torch.load(weights_only=True)`.

Base models are trained by `amc train` and cached under $AMC_CACHE (default ~/.cache/amc), keyed by model,
dataset and seed, so searches and the demo reuse them instead of training again.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from amc.errors import UserError
from amc.io import atomic_torch_save

CHECKPOINT_VERSION = 1


def cache_dir() -> Path:
    return Path(os.environ.get("AMC_CACHE", Path.home() / ".cache" / "amc"))


def base_checkpoint_path(model_name: str, dataset: str, seed: int = 0) -> Path:
    safe = model_name.replace(":", "-").replace("/", "-")
    return cache_dir() / "checkpoints" / f"{safe}__{dataset}__seed{seed}.pt"


def save_checkpoint(path: Path, model: nn.Module, meta: dict[str, Any]) -> None:
    state = {key: value.detach().cpu() for key, value in model.state_dict().items()}
    atomic_torch_save(path, {"version": CHECKPOINT_VERSION, "state_dict": state, "meta": meta})


def load_checkpoint(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """(state_dict, meta) of a checkpoint written by save_checkpoint; never unpickles code."""
    if not Path(path).is_file():
        raise UserError(f"checkpoint {path} does not exist.", fix="train one with `amc train` or fix model.checkpoint.")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # noqa: BLE001 - any unreadable file is the same user problem
        raise UserError(
            f"checkpoint {path} cannot be read safely: {error}.",
            fix="use a file written by `amc train` / `amc prune` (a state dict with metadata).",
        ) from None
    if not isinstance(data, dict) or "state_dict" not in data:
        # A bare state dict from someone else's training script is fine too.
        return data, {}
    if data.get("version", 0) > CHECKPOINT_VERSION:
        raise UserError(
            f"checkpoint {path} has format version {data['version']}, newer than this amc understands "
            f"({CHECKPOINT_VERSION}).",
            fix="upgrade amc.",
        )
    return data["state_dict"], data.get("meta", {})


def load_weights(model: nn.Module, path: Path) -> dict[str, Any]:
    """Load a checkpoint into `model` (in place); returns its metadata."""
    state, meta = load_checkpoint(path)
    check_state_dict(state, path)
    try:
        model.load_state_dict(state)
    except RuntimeError as error:
        first = str(error).splitlines()[1].strip() if len(str(error).splitlines()) > 1 else str(error)
        raise UserError(
            f"checkpoint {path} does not fit model {meta.get('model', '?')}: {first}",
            fix="check model.name / data.dataset match the checkpoint's.",
        ) from None
    return meta


def check_state_dict(state: object, path: Path | str) -> None:
    """A checkpoint's weights are a state dict (parameter name -> tensor); a bare tensor, a whole pickled model, a
    training script's {'model': ..., 'optimizer': ...} or any other object is a UserError naming what it holds."""
    expected = (
        "expected a file written by `amc train` ({'version', 'state_dict', 'meta'}) or a plain state dict "
        "(parameter name -> tensor, as `torch.save(model.state_dict(), path)` writes)"
    )
    fix = "pass a checkpoint of `amc train` (or model.checkpoint: auto), or save your model's state_dict() instead."
    if not isinstance(state, Mapping):
        raise UserError(f"checkpoint {path} holds a {type(state).__name__}, not weights: {expected}.", fix=fix)
    if not state:
        raise UserError(f"checkpoint {path} holds an empty dict: {expected}.", fix=fix)
    bad = [str(key) for key, value in state.items() if not isinstance(value, torch.Tensor)]
    if bad:
        shown = ", ".join(repr(key) for key in bad[:5]) + (", ..." if len(bad) > 5 else "")
        raise UserError(
            f"checkpoint {path} is a dict whose entries {shown} are not tensors: {expected}.",
            fix=fix + " A training script's checkpoint keeps the weights under one of those keys: save that one.",
        )
