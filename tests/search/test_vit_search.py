"""The AMC search on a vision transformer: a tiny ViT trained on Fashion-MNIST, searched at half its MACs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from amc.cli.main import main
from amc.pruning import Strategy

VIT = {
    "model.name": "vit_tiny", "data.dataset": "fashion-mnist", "data.search_val_size": 1000, "train.epochs": 1,
    "train.optimizer": "adamw", "train.lr": 0.001, "train.weight_decay": 0.05, "search.episodes": 8,
    "search.eval_images": 500, "search.bn_images": 256, "search.round_to": 1,
}  # fmt: skip


@pytest.mark.slow
def test_amc_searches_a_tiny_vit_on_fashion_mnist(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AMC_CACHE", str(tmp_path / "cache"))  # trains its own base model (about 20 s)
    run = tmp_path / "run"
    settings = [f"--set={key}={value}" for key, value in VIT.items()]
    assert main(["search", "--config", "configs/smoke.yaml", "--out", str(run), "--no-progress", *settings]) == 0
    summary = json.loads((run / "summary.json").read_text())
    assert summary["dense_accuracy"] > 0.7  # the base model learned
    assert summary["best_cost"] <= summary["budget"]["value"]
    assert summary["best_accuracy"] > summary["dense_accuracy"] - 0.1  # least squares keeps most of it at 50%
    strategy = Strategy.load(run / "best_strategy.json")
    residual = next(layer for layer in strategy.layers if layer.name == "conv_proj")
    assert residual.kept % 4 == 0  # round_to 1: only the 4 heads (equal widths) make it a multiple of 4
