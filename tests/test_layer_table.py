"""The layer table: shapes, fused ops, coupling groups and the specs of pruned variants."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from amc.graph import build_layer_table
from amc.models import create_model


def test_tiny_table_shapes_and_residual_group() -> None:
    model = create_model("tiny")
    table = build_layer_table(model, (3, 16, 16), "tiny")
    assert [layer.name for layer in table.layers] == ["stem.0", "conv1", "conv2", "down.0", "fc"]
    assert table.layers[3].spec.out_hw == (8, 8)
    assert table.layers[0].spec.fused == ("bn", "relu")
    assert table.layers[2].spec.fused == ("bn",)  # relu2 runs after the residual add, not on conv2's output
    residual = table.group_of("conv2")
    assert residual is not None and residual.layers == ("stem.0", "conv2") and "residual" in residual.kinds
    assert table.group_of("fc") is None  # the classifier's outputs are never pruned


def test_specs_of_pruned_variant_follow_groups() -> None:
    table = build_layer_table(create_model("tiny"), (3, 16, 16))
    residual = table.group_of("conv2").index
    inner = table.group_of("conv1").index
    specs = table.specs({residual: 8, inner: 4})
    by_name = {layer.name: spec for layer, spec in zip(table.layers, specs)}
    assert (by_name["stem.0"].in_channels, by_name["stem.0"].out_channels) == (3, 8)
    assert (by_name["conv1"].in_channels, by_name["conv1"].out_channels) == (8, 4)
    assert (by_name["conv2"].in_channels, by_name["conv2"].out_channels) == (4, 8)
    assert by_name["down.0"].in_channels == 8
    assert by_name["fc"].in_channels == 32


def test_depthwise_follows_its_producer() -> None:
    table = build_layer_table(create_model("mobilenetv2"), (3, 32, 32))
    depthwise = [layer for layer in table.layers if layer.op == "dwconv"]
    assert depthwise, "mobilenetv2 has depthwise convs"
    for layer in depthwise:
        group = table.groups[layer.out_group]
        assert "depthwise" in group.kinds and len(group.layers) >= 2
    first = depthwise[1]
    specs = table.specs({first.out_group: 24})
    assert specs[first.index].in_channels == specs[first.index].out_channels == specs[first.index].groups == 24


class Concat(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Conv2d(3, 8, 3, padding=1)
        self.b = nn.Conv2d(3, 16, 3, padding=1)
        self.c = nn.Conv2d(24, 4, 1)
        self.fc = nn.Linear(4, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.c(torch.cat([self.a(x), self.b(x)], dim=1)).mean((2, 3)))


def test_concat_consumer_sums_its_sources() -> None:
    table = build_layer_table(Concat(), (3, 8, 8))
    a, b = table.group_of("a"), table.group_of("b")
    assert "concat" in a.kinds and "concat" in b.kinds
    consumer = table.layer("c")
    assert sorted(group for group, _ in consumer.in_sources) == sorted([a.index, b.index])
    assert table.specs({a.index: 4, b.index: 8})[consumer.index].in_channels == 12


def test_inspect_leaves_model_untouched() -> None:
    model = create_model("tiny")
    before = {key: value.clone() for key, value in model.state_dict().items()}
    model.train()
    build_layer_table(model, (3, 16, 16))
    assert model.training
    assert all(torch.equal(before[key], value) for key, value in model.state_dict().items())


def test_an_input_size_the_network_refuses_is_a_user_error() -> None:
    from amc.errors import UserError
    from amc.models import create_model

    with pytest.raises(UserError, match=r"vit_tiny cannot run on a 1x32x32 input: Wrong image height"):
        build_layer_table(create_model("vit_tiny"), (1, 32, 32), "vit_tiny")
