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


def _cifar_resnet_weights(blocks: int, in_channels: int = 3, classes: int = 10) -> int:
    """Conv + linear weights of a CIFAR ResNet with 1x1-conv shortcuts, by hand: stem, 3 stages, classifier."""
    total, planes_in = 16 * in_channels * 9, 16
    for planes in (16, 32, 64):
        for index in range(blocks):
            total += planes * planes_in * 9 + planes * planes * 9
            if index == 0 and planes_in != planes:
                total += planes * planes_in  # the 1x1 shortcut conv
            planes_in = planes
    return total + 64 * classes


@pytest.mark.parametrize(("name", "blocks"), [("preact_resnet20", 3), ("preact_resnet56", 9)])
def test_preact_resnets_by_hand(name: str, blocks: int) -> None:
    table = build_layer_table(create_model(name), (3, 32, 32), name)
    weights = _cifar_resnet_weights(blocks)
    assert sum(layer.spec.weight_count for layer in table.layers) == weights
    # BatchNorm: pre_bn on each block's input, bn after conv1, final_bn; 2 parameters per channel; fc bias
    bn_channels = sum(
        planes_in + planes
        for stage, planes in enumerate((16, 32, 64))
        for planes_in in [(16, 16, 32)[stage]] + [planes] * (blocks - 1)
    )
    assert table.total_params == weights + 2 * (bn_channels + 64) + 10
    # the same convolutions as the post-activation ResNet of that depth: same MACs (ResNet-20: 40.8 M, 56: 125.7 M)
    plain = build_layer_table(create_model(name.removeprefix("preact_")), (3, 32, 32))
    assert table.total_macs == plain.total_macs
    assert table.total_macs == {3: 40_813_184, 9: 125_747_840}[blocks]


def test_vgg16_cifar_matches_li_et_al() -> None:
    """Distiller's vgg16_cifar is the VGG-16 of Li et al. (ICLR 2017, "Pruning Filters for Efficient ConvNets",
    Table 1): 3.13e8 FLOPs (multiply-accumulates) and 1.5e7 parameters on CIFAR-10."""
    table = build_layer_table(create_model("vgg16_cifar"), (3, 32, 32), "vgg16_cifar")
    plan = [(3, 64, 32), (64, 64, 32), (64, 128, 16), (128, 128, 16), (128, 256, 8), (256, 256, 8), (256, 256, 8)]
    plan += [(256, 512, 4), (512, 512, 4), (512, 512, 4), (512, 512, 2), (512, 512, 2), (512, 512, 2)]
    macs = sum(hw * hw * cout * cin * 9 for cin, cout, hw in plan) + 512 * 10
    params = sum(cout * cin * 9 + cout for cin, cout, _ in plan) + 512 * 10 + 10
    assert table.total_macs == macs == 313_201_664
    assert table.total_params == params == 14_719_818
    assert round(table.total_macs / 1e8, 2) == 3.13 and round(table.total_params / 1e7, 1) == 1.5
    small = build_layer_table(create_model("vgg16_cifar", in_channels=1), (1, 28, 28), "vgg16_cifar")
    assert small.layers[-1].spec.in_channels == 512  # 28 -> 14 -> 7 -> 4 -> 2 -> 1 with ceil-mode pools
