"""The base models amc ships: intact, loaded safely, used by `model.checkpoint: auto` only when the config asks
for exactly them, reproducing their recorded test accuracy (slow) and their first training epoch (slow)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import torch

from amc.config import load_config
from amc.data import load_dataset
from amc.models import create_model
from amc.training.base_model import load_base_model, train_base_model
from amc.training.checkpoints import load_checkpoint
from amc.training.shipped import MANIFEST, file_sha256, shipped_for, shipped_models, weights_sha256

SHIPPED = shipped_models()
needs_data = pytest.mark.skipif(
    not Path("/usr/share/datasets/fashion-mnist").is_dir(), reason="Debian's dataset-fashion-mnist is not installed"
)


def test_the_zoo_resnets_are_shipped() -> None:
    assert {(shipped.model, shipped.dataset) for shipped in SHIPPED} == {
        ("resnet20", "fashion-mnist"), ("resnet56", "fashion-mnist"),
    }  # fmt: skip


@pytest.mark.parametrize("shipped", SHIPPED, ids=lambda shipped: shipped.model)
def test_shipped_file_is_intact_and_loads_safely(shipped) -> None:
    assert file_sha256(shipped.path) == shipped.file_sha256
    state, meta = load_checkpoint(shipped.path)  # torch.load(weights_only=True)
    assert weights_sha256(state) == shipped.weights_sha256
    assert meta["model"] == shipped.model and meta["test_top1"] == shipped.test_top1
    model = create_model(shipped.model, in_channels=1, num_classes=10)
    model.load_state_dict(state)


@needs_data
def test_auto_checkpoint_uses_the_shipped_model_without_training(monkeypatch: pytest.MonkeyPatch) -> None:
    import amc.training.base_model as base_model

    monkeypatch.setattr(base_model, "train_base_model", _no_training)
    config = load_config(None, {"model.name": "resnet20"})
    bundle = load_dataset("fashion-mnist", search_val_size=config.data.search_val_size)
    lines: list[str] = []
    model = load_base_model(config, bundle, progress=False, log=lines.append)
    state = {key: value for key, value in model.state_dict().items()}
    assert weights_sha256(state) == shipped_for(config).weights_sha256  # type: ignore[union-attr]
    assert "using the shipped resnet20" in lines[0] and "amc train --model resnet20" in lines[0]


@pytest.mark.parametrize(
    "change", [{"train.epochs": 4}, {"train.lr": 0.05}, {"data.search_val_size": 1000}, {"train.seed": 1}]
)
def test_a_config_that_asks_for_another_model_gets_none(change: dict) -> None:
    assert shipped_for(load_config(None, {"model.name": "resnet20", **change})) is None


def test_a_damaged_shipped_file_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import amc.training.shipped as shipped_module

    weights = tmp_path / "weights"
    weights.mkdir()
    entry = dataclasses.asdict(SHIPPED[0])
    (weights / entry["file"]).write_bytes(b"not the model")
    (weights / "manifest.json").write_text(json.dumps({**json.loads(MANIFEST.read_text()), "models": [entry]}))
    monkeypatch.setattr(shipped_module, "WEIGHTS", weights)
    monkeypatch.setattr(shipped_module, "MANIFEST", weights / "manifest.json")
    from amc.errors import UserError

    with pytest.raises(UserError, match="does not match its SHA-256"):
        shipped_module.shipped_for(load_config(None, {"model.name": entry["model"]}))


def _no_training(*args: object, **kwargs: object) -> None:
    raise AssertionError("the shipped model should have been used")


@needs_data
@pytest.mark.slow
@pytest.mark.parametrize("shipped", SHIPPED, ids=lambda shipped: shipped.model)
def test_shipped_model_reproduces_its_test_accuracy(shipped) -> None:
    from amc.training.loop import accuracy_on

    bundle = load_dataset("fashion-mnist", search_val_size=shipped.data["search_val_size"])
    model = create_model(shipped.model, in_channels=1, num_classes=10)
    model.load_state_dict(load_checkpoint(shipped.path)[0])
    result = accuracy_on(model.eval(), bundle.test)
    assert (result.top1, result.top5, result.images) == (shipped.test_top1, shipped.test_top5, shipped.test_images)


@needs_data
@pytest.mark.slow
def test_amc_train_reproduces_the_first_epoch_of_the_shipped_resnet20(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One epoch of `amc train` (as the manifest's command: 1 thread) gives the shipped run's weights bit for bit."""
    import amc.training.loop as loop

    shipped = next(shipped for shipped in SHIPPED if shipped.model == "resnet20")
    torch.set_num_threads(shipped.threads)
    run_epoch, calls = loop._run_epoch, {"n": 0}

    def stop_after_the_first_epoch(*args: object, **kwargs: object) -> object:
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return run_epoch(*args, **kwargs)

    monkeypatch.setattr(loop, "_run_epoch", stop_after_the_first_epoch)
    config = load_config(None, {"model.name": "resnet20"})
    bundle = load_dataset("fashion-mnist", search_val_size=config.data.search_val_size)
    out = tmp_path / "resnet20.pt"
    with pytest.raises(KeyboardInterrupt):
        train_base_model(config, bundle, out, progress=False, log=lambda _: None)
    state = torch.load(out.with_suffix(".state.pt"), map_location="cpu", weights_only=True)
    assert state["epoch"] == 1
    assert weights_sha256(state["model"]) == shipped.epoch1_weights_sha256
