"""The model zoo: every model builds by name and runs on 1-channel 28x28 and 3-channel 32x32 data."""

from __future__ import annotations

import pytest
import torch

from amc.errors import UserError
from amc.models import create_model, list_models

ZOO = ["resnet20", "resnet56", "plain20", "vgg16_bn", "mobilenetv2", "tiny"]


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
