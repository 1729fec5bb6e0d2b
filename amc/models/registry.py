"""A small registry of CNNs by name, plus every torchvision classification model as `torchvision:<name>` and,
with the timm extra, every timm model as `timm:<name>` (amc/models/timm_zoo.py).

torchvision models are built with `weights=None` and timm models with `pretrained=False`: nothing is downloaded.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torchvision
from torch import nn

from amc.errors import UserError
from amc.models import timm_zoo
from amc.models.cifar_mobilenetv2 import CifarMobileNetV2
from amc.models.cifar_resnet import CifarResNet
from amc.models.cifar_vgg import CifarVGG
from amc.models.distiller_cifar import PreactResNetCifar, VGGCifar
from amc.models.tiny import TinyResNet

TORCHVISION_PREFIX = "torchvision:"


@dataclass(frozen=True)
class ModelInfo:
    name: str
    description: str
    input_size: tuple[int, int, int]
    build: Callable[[int, int], nn.Module]
    num_classes: int = 10
    distiller_arch: str = ""
    """Distiller's name for the same network (its `-a` / a thinning extension's `arch`), "" when it has none."""


_ZOO: dict[str, ModelInfo] = {}


def register_model(name: str, description: str, input_size: tuple[int, int, int], distiller_arch: str = "") -> Callable:
    def decorator(build: Callable[[int, int], nn.Module]) -> Callable[[int, int], nn.Module]:
        _ZOO[name] = ModelInfo(name, description, input_size, build, distiller_arch=distiller_arch)
        return build

    return decorator


@register_model(
    "resnet20", "CIFAR ResNet-20 (0.27 M params, 3 stages of 3 basic blocks)", (3, 32, 32), "resnet20_cifar"
)
def _resnet20(in_channels: int, num_classes: int) -> nn.Module:
    return CifarResNet(20, in_channels, num_classes)


@register_model(
    "resnet56", "CIFAR ResNet-56 (0.85 M params, 3 stages of 9 basic blocks)", (3, 32, 32), "resnet56_cifar"
)
def _resnet56(in_channels: int, num_classes: int) -> nn.Module:
    return CifarResNet(56, in_channels, num_classes)


@register_model("plain20", "ResNet-20 without shortcuts (no coupled layers)", (3, 32, 32), "plain20_cifar")
def _plain20(in_channels: int, num_classes: int) -> nn.Module:
    return CifarResNet(20, in_channels, num_classes, shortcut=False)


@register_model("vgg16_bn", "VGG-16 with BatchNorm at CIFAR width (512-512 classifier)", (3, 32, 32))
def _vgg16_bn(in_channels: int, num_classes: int) -> nn.Module:
    return CifarVGG(in_channels, num_classes)


@register_model(
    "vgg16_cifar",
    "Distiller's VGG-16 for CIFAR: 13 convs with bias, no BatchNorm, one linear layer",
    (3, 32, 32),
    "vgg16_cifar",
)
def _vgg16_cifar(in_channels: int, num_classes: int) -> nn.Module:
    return VGGCifar(in_channels, num_classes)


@register_model(
    "preact_resnet20",
    "Distiller's pre-activation ResNet-20 with 1x1-conv shortcuts",
    (3, 32, 32),
    "preact_resnet20_cifar_conv_ds",
)
def _preact_resnet20(in_channels: int, num_classes: int) -> nn.Module:
    return PreactResNetCifar(20, in_channels, num_classes)


@register_model(
    "preact_resnet56",
    "Distiller's pre-activation ResNet-56 with 1x1-conv shortcuts",
    (3, 32, 32),
    "preact_resnet56_cifar_conv_ds",
)
def _preact_resnet56(in_channels: int, num_classes: int) -> nn.Module:
    return PreactResNetCifar(56, in_channels, num_classes)


@register_model("mobilenetv2", "MobileNetV2, CIFAR-style strides (depthwise + inverted residuals)", (3, 32, 32))
def _mobilenetv2(in_channels: int, num_classes: int) -> nn.Module:
    return CifarMobileNetV2(in_channels, num_classes)


@register_model("tiny", "4-layer residual CNN for tests only (not a real model)", (3, 16, 16))
def _tiny(in_channels: int, num_classes: int) -> nn.Module:
    return TinyResNet(in_channels, num_classes)


@register_model("vit_tiny", "4-block vision transformer for 28x28 inputs (7x7 patches, 4 heads of 16)", (1, 28, 28))
def _vit_tiny(in_channels: int, num_classes: int) -> nn.Module:
    model = torchvision.models.VisionTransformer(28, 7, 4, 4, 64, 128, num_classes=num_classes)
    if in_channels != 3:
        _replace_stem(model, in_channels)
    return model


def _torchvision_names() -> list[str]:
    return sorted(torchvision.models.list_models(module=torchvision.models))


def list_models() -> list[ModelInfo]:
    """Zoo models first, then torchvision's classification models, then timm's models where timm is installed."""
    timm_models = [_timm_info(name) for name in timm_zoo.names()] if timm_zoo.available() else []
    return list(_ZOO.values()) + [_torchvision_info(name) for name in _torchvision_names()] + timm_models


def _torchvision_info(tv_name: str) -> ModelInfo:
    def build(in_channels: int, num_classes: int) -> nn.Module:
        model = torchvision.models.get_model(tv_name, weights=None, num_classes=num_classes)
        if in_channels != 3:
            _replace_stem(model, in_channels)
        return model

    description = "torchvision classification model (weights=None)"
    return ModelInfo(
        TORCHVISION_PREFIX + tv_name, description, (3, 224, 224), build, num_classes=1000, distiller_arch=tv_name
    )


def _timm_info(timm_name: str) -> ModelInfo:
    def build(in_channels: int, num_classes: int) -> nn.Module:
        return timm_zoo.build(timm_name, in_channels, num_classes)

    size = timm_zoo.input_size(timm_name)
    return ModelInfo(timm_zoo.TIMM_PREFIX + timm_name, "timm model (pretrained=False)", size, build, num_classes=1000)


def model_info(name: str) -> ModelInfo:
    if name.startswith(timm_zoo.TIMM_PREFIX):
        timm_name = name[len(timm_zoo.TIMM_PREFIX) :]
        timm_zoo.check_name(timm_name)
        return _timm_info(timm_name)
    if name.startswith(TORCHVISION_PREFIX):
        tv_name = name[len(TORCHVISION_PREFIX) :]
        if tv_name not in _torchvision_names():
            raise UserError(
                f"unknown torchvision model {tv_name!r}.",
                fix="run `amc list models` for the names torchvision provides (e.g. torchvision:resnet50).",
            )
        return _torchvision_info(tv_name)
    if name not in _ZOO:
        raise UserError(
            f"unknown model {name!r}.",
            fix=f"use one of {', '.join(sorted(_ZOO))}, torchvision:<name> or timm:<name>; `amc list models` shows "
            "them all.",
        )
    return _ZOO[name]


def default_input_size(name: str) -> tuple[int, int, int]:
    return model_info(name).input_size


def create_model(name: str, in_channels: int | None = None, num_classes: int | None = None) -> nn.Module:
    """Build a fresh (randomly initialised) model by registry name; unset sizes take the model's defaults."""
    info = model_info(name)
    return info.build(in_channels or info.input_size[0], num_classes or info.num_classes)


def _replace_stem(model: nn.Module, in_channels: int) -> None:
    """Swap the first 3-channel conv for one taking `in_channels` (e.g. grayscale data)."""
    for name, module in model.named_modules():
        if isinstance(module, nn.Conv2d) and module.in_channels == 3:
            stem = nn.Conv2d(
                in_channels,
                module.out_channels,
                module.kernel_size,  # type: ignore[arg-type]
                module.stride,  # type: ignore[arg-type]
                module.padding,  # type: ignore[arg-type]
                bias=module.bias is not None,
            )
            parent = model.get_submodule(name.rpartition(".")[0]) if "." in name else model
            setattr(parent, name.rpartition(".")[2], stem)
            return
    raise UserError(
        f"could not find a 3-channel input conv in {type(model).__name__} to adapt to {in_channels} channels."
    )
