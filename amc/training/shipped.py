"""Base models this project trained and ships, so a fresh machine searches in minutes instead of training first.

`weights/manifest.json` lists each file with the exact `amc train` command and settings that produced it, the
SHA-256 of the file and of its weights (after the first epoch, too: a slow test re-trains that epoch and compares),
and its test accuracy. `model.checkpoint: auto` uses a shipped file when the cache has none and the config asks
for exactly what it was trained with (model, dataset, data split, every `train:` setting); anything else is
trained as before.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from amc.config import ExperimentConfig, TrainSection
from amc.errors import UserError

WEIGHTS = Path(__file__).parent / "weights"
MANIFEST = WEIGHTS / "manifest.json"
MANIFEST_TYPE = "amc.ShippedBaseModels"
MANIFEST_VERSION = 1
SPLIT_KEYS = ("search_val_size", "split_seed", "image_size")
"""The data settings a base model's training split depends on (search-val is held out of it)."""


@dataclass(frozen=True)
class ShippedModel:
    file: str
    model: str
    dataset: str
    train: dict[str, Any]
    data: dict[str, Any]
    command: str
    threads: int
    torch: str
    file_sha256: str
    weights_sha256: str
    epoch1_weights_sha256: str
    test_top1: float
    test_top5: float
    test_images: int
    train_seconds: float

    @property
    def path(self) -> Path:
        return WEIGHTS / self.file

    def matches(self, config: ExperimentConfig) -> bool:
        """True when `config` asks for exactly the base model this file is."""
        split = {key: getattr(config.data, key) for key in SPLIT_KEYS}
        train = json.loads(json.dumps(dataclasses.asdict(config.train)))
        newer = {key: value for key, value in train_defaults().items() if key not in self.train}
        return (config.model.name, config.data.dataset, split, train) == (
            self.model, self.dataset, self.data, {**newer, **self.train}
        )  # fmt: skip


def train_defaults() -> dict[str, Any]:
    """Every `train:` key at its default: a manifest entry written before a key existed was trained with it."""
    return json.loads(json.dumps(dataclasses.asdict(TrainSection())))


def file_sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def weights_sha256(state: dict[str, torch.Tensor]) -> str:
    """A digest of the weights alone (names, dtypes, shapes and bytes, in key order): equal weights, equal digest,
    whatever else the checkpoint file holds (timings, metadata)."""
    digest = hashlib.sha256()
    for name in sorted(state):
        tensor = state[name].detach().cpu().contiguous()
        digest.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}|".encode())
        digest.update(tensor.numpy().tobytes() if tensor.numel() else b"")
    return digest.hexdigest()


def shipped_models() -> list[ShippedModel]:
    if not MANIFEST.is_file():
        return []
    data = json.loads(MANIFEST.read_text())
    if data.get("_type") != MANIFEST_TYPE or data.get("_version") != MANIFEST_VERSION:
        raise UserError(f"{MANIFEST} is not a version-{MANIFEST_VERSION} manifest.", fix="reinstall amc.")
    return [ShippedModel(**entry) for entry in data["models"]]


def shipped_for(config: ExperimentConfig) -> ShippedModel | None:
    """The shipped base model `config` asks for, checked against its recorded SHA-256; None if none matches."""
    for shipped in shipped_models():
        if shipped.matches(config):
            if not shipped.path.is_file() or file_sha256(shipped.path) != shipped.file_sha256:
                raise UserError(
                    f"the shipped base model {shipped.path} is missing or does not match its SHA-256 in {MANIFEST}.",
                    fix=f"reinstall amc, or train it yourself: {shipped.command}.",
                )
            return shipped
    return None
