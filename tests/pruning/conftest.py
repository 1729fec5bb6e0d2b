"""Small networks holding each coupling case, and helpers shared by the pruning tests (as fixtures: the suite
runs with --import-mode=importlib, so test modules cannot import this file)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
from torch import Tensor, nn


def conv_bn(cin: int, cout: int, kernel: int = 3, stride: int = 1, groups: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, kernel, stride, kernel // 2, groups=groups, bias=False), nn.BatchNorm2d(cout), nn.ReLU()
    )


class ConcatNet(nn.Module):
    """DenseNet-like: the stem's output is concatenated with two branches; a flatten feeds the classifier."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = conv_bn(3, 16)
        self.branch_a = conv_bn(16, 8)
        self.branch_b = conv_bn(16, 24, kernel=1)
        self.mix = conv_bn(48, 32, stride=2)
        self.pool = nn.AdaptiveAvgPool2d(2)
        self.fc = nn.Linear(32 * 4, 10)

    def forward(self, x: Tensor) -> Tensor:
        x = self.stem(x)
        x = torch.cat([self.branch_a(x), x, self.branch_b(x)], dim=1)
        return self.fc(self.pool(self.mix(x)).flatten(1))


class GroupedNet(nn.Module):
    """RegNet-like: 1x1 -> grouped 3x3 (4 groups) -> 1x1 with a residual add, conv bias in the last layer."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = conv_bn(3, 32)
        self.a = conv_bn(32, 32, kernel=1)
        self.b = conv_bn(32, 32, groups=4)
        self.c = nn.Conv2d(32, 32, 1, bias=True)
        self.head = nn.Linear(32, 10)

    def forward(self, x: Tensor) -> Tensor:
        x = self.stem(x)
        x = torch.relu(x + self.c(self.b(self.a(x))))
        return self.head(x.mean((2, 3)))


class DepthwiseNet(nn.Module):
    """MobileNetV2-like inverted residual: expand 1x1 -> depthwise 3x3 -> project 1x1, added to its input."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = conv_bn(3, 16)
        self.expand = conv_bn(16, 48, kernel=1)
        self.depthwise = conv_bn(48, 48, groups=48)
        self.project = nn.Sequential(nn.Conv2d(48, 16, 1, bias=False), nn.BatchNorm2d(16))
        self.down = conv_bn(16, 32, stride=2)
        self.fc = nn.Linear(32, 10)

    def forward(self, x: Tensor) -> Tensor:
        x = self.stem(x)
        x = x + self.project(self.depthwise(self.expand(x)))
        return self.fc(self.down(x).mean((2, 3)))


NETS = {"concat": ConcatNet, "grouped": GroupedNet, "depthwise": DepthwiseNet}


def _randomize_bn_(model: nn.Module, seed: int = 0) -> nn.Module:
    """Give every BN non-trivial statistics and affine parameters, so a wrong slice changes the output."""
    generator = torch.Generator().manual_seed(seed)
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            n = module.num_features
            module.running_mean.copy_(torch.randn(n, generator=generator) * 0.1)
            module.running_var.copy_(torch.rand(n, generator=generator) + 0.5)
            module.weight.data.copy_(torch.rand(n, generator=generator) + 0.5)
            module.bias.data.copy_(torch.randn(n, generator=generator) * 0.1)
    return model.eval()


def _zero_removed_inputs(model: nn.Module, kept_in: dict[str, tuple[int, ...]]) -> nn.Module:
    """The original network with the input columns a thinned layer lost set to zero (depthwise convs excluded):
    it must compute exactly what the thinned network computes."""
    for name, kept in kept_in.items():
        module = model.get_submodule(name)
        if isinstance(module, nn.Conv2d) and module.groups == module.in_channels and module.groups > 1:
            continue
        columns = module.weight.shape[1] * getattr(module, "groups", 1)
        if len(kept) == columns:
            continue
        mask = torch.zeros(columns, dtype=torch.bool)
        mask[list(kept)] = True
        groups = getattr(module, "groups", 1)
        per_group = mask.reshape(groups, -1)
        assert (per_group == per_group[0]).all(), f"{name}: grouped conv lost different positions per group"
        module.weight.data[:, ~per_group[0]] = 0
    return model


@pytest.fixture
def make_net() -> Callable[[str], nn.Module]:
    """make_net(kind) for kind in concat, grouped, depthwise: a fresh net with randomized BN statistics."""
    return lambda kind: _randomize_bn_(NETS[kind]())


@pytest.fixture
def randomize_bn() -> Callable[[nn.Module], nn.Module]:
    return _randomize_bn_


@pytest.fixture
def zero_removed_inputs() -> Callable[[nn.Module, dict[str, tuple[int, ...]]], nn.Module]:
    return _zero_removed_inputs


@pytest.fixture
def tiny_table():
    from amc.graph import build_layer_table
    from amc.models import create_model

    model = _randomize_bn_(create_model("tiny"))
    return model, build_layer_table(model, (3, 16, 16), "tiny")
