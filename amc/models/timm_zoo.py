"""timm models by name (`timm:<name>`), an optional extra: timm is imported only when such a name is used.

Built with `pretrained=False` always, so no weights are ever downloaded; amc's `in_channels` and `num_classes`
are timm's `in_chans` and `num_classes` (timm adapts the stem itself).
"""

from __future__ import annotations

import functools
from types import ModuleType

from torch import nn

from amc.errors import UserError
from amc.optional import installed, require
from hwmodel.errors import did_you_mean

TIMM_PREFIX = "timm:"


def available() -> bool:
    """Whether timm is installed (without importing it), so listings can include its models."""
    return installed("timm")


def _timm() -> ModuleType:
    return require("timm", "model timm:<name>")


@functools.cache
def names() -> tuple[str, ...]:
    """Every architecture timm can build (its registry's names, without pretrained tags)."""
    return tuple(_timm().list_models())


def check_name(name: str) -> None:
    """A UserError, before any model is built, unless timm is installed and knows `name`."""
    known = names()
    if name not in known:
        raise UserError(
            f"unknown timm model {name!r} (timm {_timm().__version__}).{did_you_mean(name, known)}",
            fix="run `amc list models` for the timm:<name> models this timm provides (e.g. timm:resnet50d); "
            "pretrained tags such as '.a1_in1k' are not used (weights are never downloaded).",
        )


def input_size(name: str) -> tuple[int, int, int]:
    """The input timm's default pretrained config names for `name` (3x224x224 where it has none)."""
    config = _timm().get_pretrained_cfg(name)
    size = getattr(config, "input_size", None) or (3, 224, 224)
    return (int(size[0]), int(size[1]), int(size[2]))


def build(name: str, in_channels: int, num_classes: int) -> nn.Module:
    """A randomly initialised timm model (pretrained=False: nothing is downloaded)."""
    model: nn.Module = _timm().create_model(name, pretrained=False, in_chans=in_channels, num_classes=num_classes)
    return model
