"""Oracle tests: MAC and parameter counts against hand formulas and published totals."""

from __future__ import annotations

import pytest
from torch import nn

from amc.graph import build_layer_table
from amc.models import create_model
from hwmodel.spec import LayerSpec


def test_design_worked_example_by_formula() -> None:
    first = LayerSpec("conv", 64, 256, kernel=3, stride=2, padding=1, in_hw=(56, 56))
    second = LayerSpec("conv", 256, 256, kernel=3, stride=2, padding=1, in_hw=(28, 28))
    assert first.out_hw == (28, 28) and second.out_hw == (14, 14)
    assert first.params == 147_456 and second.params == 589_824
    # 28*28*256*64*9 and 14*14*256*256*9: both 115.6 M
    assert first.macs == 115_605_504 and second.macs == 115_605_504


def test_design_worked_example_through_layer_table() -> None:
    model = nn.Sequential(
        nn.Conv2d(64, 256, 3, 2, 1, bias=False),
        nn.Conv2d(256, 256, 3, 2, 1, bias=False),
        nn.Flatten(),
        nn.Linear(256 * 14 * 14, 10),
    )
    table = build_layer_table(model, (64, 56, 56))
    assert [layer.macs for layer in table.layers[:2]] == [115_605_504, 115_605_504]
    assert [layer.params for layer in table.layers[:2]] == [147_456, 589_824]
    assert table.layers[2].spec.in_channels == 256 * 14 * 14
    # the flatten makes every kept channel of the second conv worth 14*14 classifier inputs
    assert table.layers[2].in_sources == ((1, 14 * 14),)


@pytest.mark.parametrize(
    ("name", "macs", "params"),
    [
        ("torchvision:resnet50", 4_089_184_256, 25_557_032),  # published: 4.089 G MACs, 25.557 M params
        ("torchvision:mobilenet_v2", 300_774_272, 3_504_872),  # published: 300.8 M MACs, 3.50 M params
    ],
)
def test_torchvision_published_totals(name: str, macs: int, params: int) -> None:
    table = build_layer_table(create_model(name), (3, 224, 224), name)
    assert table.total_macs == macs
    assert table.total_params == params


def test_cifar_resnet56_published_totals() -> None:
    table = build_layer_table(create_model("resnet56"), (3, 32, 32))
    assert round(table.total_macs / 1e6) in (125, 126)  # about 125 M MACs
    assert round(table.total_params / 1e6, 2) in (0.85, 0.86)  # about 0.85 M params (projection shortcuts)


def test_conv_counting_matches_module_parameters() -> None:
    """Every layer's params must equal its module's own weight + bias count."""
    model = create_model("mobilenetv2")
    table = build_layer_table(model, (3, 32, 32))
    for layer in table.layers:
        module = model.get_submodule(layer.name)
        assert layer.params == sum(p.numel() for p in module.parameters()), layer.name
