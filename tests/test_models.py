"""The model zoo: every model builds by name and runs on 1-channel 28x28 and 3-channel 32x32 data."""

from __future__ import annotations

import pytest
import torch

from amc.errors import UserError
from amc.models import create_model, list_models

ZOO = [
    "resnet20",
    "resnet56",
    "plain20",
    "vgg16_bn",
    "mobilenetv2",
    "tiny",
    "vgg16_cifar",
    "preact_resnet20",
    "preact_resnet56",
]


@pytest.mark.parametrize("name", ZOO)
@pytest.mark.parametrize("size", [(1, 28, 28), (3, 32, 32)])
def test_zoo_forward(name: str, size: tuple[int, int, int]) -> None:
    model = create_model(name, in_channels=size[0], num_classes=7).eval()
    with torch.no_grad():
        assert model(torch.randn(2, *size)).shape == (2, 7)


def test_torchvision_models_by_prefix_with_grayscale_stem() -> None:
    model = create_model("torchvision:resnet18", in_channels=1, num_classes=10).eval()
    with torch.no_grad():
        assert model(torch.randn(1, 1, 64, 64)).shape == (1, 10)
    names = [info.name for info in list_models()]
    assert "resnet20" in names and "torchvision:resnet50" in names


def test_unknown_model_names_the_fix() -> None:
    with pytest.raises(UserError, match="amc list models"):
        create_model("resnet21")
    with pytest.raises(UserError, match="torchvision"):
        create_model("torchvision:not_a_model")


def test_distiller_networks_keep_distillers_names_and_arch() -> None:
    """vgg16_cifar and the pre-activation ResNets name their modules as Distiller does, so its schedules apply."""
    from amc.models import model_info

    vgg = dict(create_model("vgg16_cifar").named_parameters())
    assert "features.28.weight" in vgg and "features.0.bias" in vgg and vgg["classifier.weight"].shape == (10, 512)
    assert not any("bn" in name or "running" in name for name in vgg)  # no BatchNorm
    preact = dict(create_model("preact_resnet20").named_parameters())
    assert {"layer1.0.pre_bn.weight", "layer1.0.bn.weight", "layer2.0.downsample.weight", "final_bn.weight"} <= set(
        preact
    )
    assert model_info("preact_resnet56").distiller_arch == "preact_resnet56_cifar_conv_ds"
    assert model_info("resnet20").distiller_arch == "resnet20_cifar"
    assert model_info("torchvision:resnet50").distiller_arch == "resnet50"
