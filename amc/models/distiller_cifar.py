"""Distiller's CIFAR networks that amc's zoo lacks, with Distiller's module names, so its schedules apply.

`VGGCifar` is Distiller's `vgg16_cifar` (distiller/models/cifar10/vgg_cifar.py): VGG-16's 13 convs with bias and
no BatchNorm, five max-pools, and one linear classifier (512 -> classes). Its pools round up (`ceil_mode`), which
changes nothing at 32x32 and lets 28x28 inputs reach 1x1 instead of 0x0.

`PreactResNetCifar` is Distiller's pre-activation ResNet with 1x1-conv shortcuts
(distiller/models/cifar10/preresnet_cifar.py, `preact_resnet20_cifar_conv_ds`): each block is
BN-ReLU (`pre_bn`, `pre_relu`) -> conv1 -> BN-ReLU (`bn`, `relu`) -> conv2, plus the shortcut (a 1x1 conv on the
pre-activation where the shape changes); `final_bn`, `final_relu` before the pooling. Distiller's default
`preact_resnet20_cifar` pads the shortcut with zero channels instead, which amc's channel-coupling analysis
cannot follow (it would tie 16 channels to 32), so the zoo offers the 1x1-conv variant. The global pooling is
adaptive (Distiller's is `AvgPool2d(8)`, the same at 32x32) so 28x28 inputs work too.
"""

from __future__ import annotations

from torch import Tensor, nn

VGG16_CFG = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M")


class VGGCifar(nn.Module):
    def __init__(self, in_channels: int = 3, num_classes: int = 10, cfg: tuple[int | str, ...] = VGG16_CFG) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        channels = in_channels
        for item in cfg:
            if item == "M":
                layers.append(nn.MaxPool2d(kernel_size=2, stride=2, ceil_mode=True))
                continue
            layers += [nn.Conv2d(channels, int(item), kernel_size=3, padding=1), nn.ReLU(inplace=True)]
            channels = int(item)
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(512, num_classes)
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
                nn.init.zeros_(module.bias)  # type: ignore[arg-type]
            elif isinstance(module, nn.Linear):
                nn.init.normal_(module.weight, 0, 0.01)
                nn.init.zeros_(module.bias)

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(self.features(x).flatten(1))


class PreactBasicBlock(nn.Module):
    def __init__(self, in_planes: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        self.pre_bn = nn.BatchNorm2d(in_planes)
        self.pre_relu = nn.ReLU(inplace=False)
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride, 1, bias=False)
        self.bn = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=False)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.downsample: nn.Module | None = None
        if stride != 1 or in_planes != planes:
            self.downsample = nn.Conv2d(in_planes, planes, 1, stride, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        preact = self.pre_relu(self.pre_bn(x))
        out = self.conv2(self.relu(self.bn(self.conv1(preact))))
        return out + (x if self.downsample is None else self.downsample(preact))


class PreactResNetCifar(nn.Module):
    def __init__(self, depth: int, in_channels: int = 3, num_classes: int = 10) -> None:
        super().__init__()
        if (depth - 2) % 6:
            raise ValueError(f"CIFAR pre-activation ResNet depth must be 6n+2, got {depth}")
        blocks = (depth - 2) // 6
        self.conv1 = nn.Conv2d(in_channels, 16, 3, 1, 1, bias=False)
        stages: list[nn.Module] = []
        in_planes = 16
        for planes, stride in ((16, 1), (32, 2), (64, 2)):
            stage = []
            for index in range(blocks):
                stage.append(PreactBasicBlock(in_planes, planes, stride if index == 0 else 1))
                in_planes = planes
            stages.append(nn.Sequential(*stage))
        self.layer1, self.layer2, self.layer3 = stages
        self.final_bn = nn.BatchNorm2d(64)
        self.final_relu = nn.ReLU(inplace=True)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(64, num_classes)
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: Tensor) -> Tensor:
        x = self.layer3(self.layer2(self.layer1(self.conv1(x))))
        return self.fc(self.avgpool(self.final_relu(self.final_bn(x))).flatten(1))
