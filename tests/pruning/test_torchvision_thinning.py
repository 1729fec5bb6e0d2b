"""torchvision networks whose modules keep widths or format versions of their own: thinned, saved, reloaded equal."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn
from torchvision.models import MNASNet, VisionTransformer

from amc.deliver.export import export
from amc.graph import build_layer_table
from amc.pruning import Strategy, StrategyMetadata, prune_network
from amc.pruning.export import load_thinned
from amc.schedule import Schedule


def _prune_save_reload(model: nn.Module, size: tuple[int, int, int], folder: Path, name: str = "") -> nn.Module:
    torch.manual_seed(0)
    model = model.eval()
    table = build_layer_table(model, size, name or "model")
    strategy = Strategy.uniform(table, 0.5, 1, StrategyMetadata(model=name, input_size=size, selection="l1"))
    thinned = prune_network(model, table, strategy.kept_channels(table), selection="l1").model.eval()
    assert sum(p.numel() for p in thinned.parameters()) < sum(p.numel() for p in model.parameters())
    export(thinned, folder, Schedule(strategy), size, name, onnx=False)
    reloaded = load_thinned(folder) if name else None
    example = torch.randn(2, *size)
    with torch.no_grad():
        out = thinned(example)
        assert out.shape == (2, 10) and torch.isfinite(out).all()
        if reloaded is not None:
            torch.testing.assert_close(reloaded(example), out, rtol=1e-4, atol=1e-5)
    return thinned


def test_vision_transformer_thins_with_whole_heads_and_forwards(tmp_path: Path) -> None:
    model = VisionTransformer(image_size=32, patch_size=8, num_layers=2, num_heads=2, hidden_dim=32, mlp_dim=64,
                              num_classes=10)  # fmt: skip
    thinned = _prune_save_reload(model, (3, 32, 32), tmp_path)
    assert thinned.hidden_dim == thinned.conv_proj.out_channels < 32  # the reshape width follows the thinning
    for module in thinned.modules():
        if isinstance(module, nn.MultiheadAttention):
            assert module.embed_dim % module.num_heads == 0


def test_mnasnet_reloads_from_architecture_json(tmp_path: Path) -> None:
    # MNASNet's loader refuses weights without the per-module format versions model.pt now keeps
    _prune_save_reload(MNASNet(0.5, num_classes=10), (3, 64, 64), tmp_path, "torchvision:mnasnet0_5")
