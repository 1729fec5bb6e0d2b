"""VGG-16 with BatchNorm at CIFAR width (Simonyan & Zisserman; the 512-wide classifier of CIFAR ports)."""

from __future__ import annotations

from torch import Tensor, nn

VGG16_PLAN = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512)


class CifarVGG(nn.Module):
    def __init__(self, in_channels: int = 3, num_classes: int = 10) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        channels = in_channels
        for item in VGG16_PLAN:
            if item == "M":
                layers.append(nn.MaxPool2d(2))
                continue
            layers += [
                nn.Conv2d(channels, int(item), 3, padding=1, bias=False),
                nn.BatchNorm2d(int(item)),
                nn.ReLU(True),
            ]
            channels = int(item)
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(nn.Linear(512, 512), nn.ReLU(True), nn.Linear(512, num_classes))

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(self.pool(self.features(x)).flatten(1))
