"""torchvision networks whose modules keep widths or format versions of their own: thinned, saved, reloaded equal."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn
from torchvision.models import MNASNet, SwinTransformer, VisionTransformer
from torchvision.models.convnext import CNBlockConfig, ConvNeXt

from amc.deliver.export import export
from amc.graph import build_layer_table
from amc.pruning import Strategy, StrategyMetadata, prune_network
from amc.pruning.export import load_thinned
from amc.pruning.exported import count_macs
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


def test_count_macs_sees_attention_as_an_exported_program_does() -> None:
    # eval-mode attention takes a fused fast path the FLOP counter cannot see into; an exported program has none
    model = VisionTransformer(image_size=32, patch_size=8, num_layers=2, num_heads=2, hidden_dim=32, mlp_dim=64,
                              num_classes=10).eval()  # fmt: skip
    size = (3, 32, 32)
    program = torch.export.export(model, (torch.zeros(1, *size),)).module()
    counted = count_macs(model, size)
    assert counted == count_macs(program, size)
    assert counted > build_layer_table(model, size, "vit").total_macs  # the attention matmuls are in it
    assert torch.backends.mha.get_fastpath_enabled()  # restored


def test_linear_layers_on_channels_last_maps_are_priced_per_position() -> None:
    # ConvNeXt's and Swin's MLPs are nn.Linear over (B, H, W, C): one matrix product per position, not per image
    model = ConvNeXt([CNBlockConfig(8, 16, 1), CNBlockConfig(16, None, 1)], num_classes=10).eval()
    table = build_layer_table(model, (3, 32, 32), "convnext")
    assert table.total_macs == count_macs(model, (3, 32, 32))


def test_swin_prunes_its_mlp_widths_and_keeps_the_windowed_residual_stream(tmp_path: Path) -> None:
    model = SwinTransformer([4, 4], 16, [2, 2], [2, 4], [4, 4], num_classes=10)
    table = build_layer_table(model, (3, 32, 32), "swin")
    fixed = [group for group in table.groups if not group.prunable]
    assert fixed and all("windowed" in group.kinds and "Swin" in group.reason for group in fixed)
    mlp_inputs = {layer.name for layer in table.layers if layer.name.endswith("mlp.0")}
    prunable_members = {name for group in table.prunable_groups for name in group.layers}
    assert mlp_inputs and mlp_inputs <= prunable_members
    dense = {name: model.get_submodule(name).out_features for name in mlp_inputs}
    thinned = _prune_save_reload(model, (3, 32, 32), tmp_path)
    assert all(thinned.get_submodule(name).out_features < width for name, width in dense.items())
