"""A detector's backbone as something amc can trace, price and thin.

A torchvision detector takes a list of images and returns a list of dicts, so it cannot be traced as it is. The
`DetectorView` runs the detector from an image batch through its `backbone` attribute (body + FPN in every
torchvision detector) and reduces the feature maps to one tensor: tracing it lets Torch-Pruning see that the
FPN's lateral 1x1 convs read the body's outputs, so their input channels shrink with the body. Only groups whose
layers all lie inside the named backbone (e.g. "backbone.body") may shrink; the FPN, RPN and heads keep their
widths, so the heads (never traced) still fit. The thinned detector is then forward-checked on a few images in
eval mode, since nothing of the heads was traced.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import replace

import torch
from torch import Tensor, nn

from amc.errors import UserError
from amc.graph.layer_table import LayerTable

PREFIX = "detector."
"""Layer names in the view's layer table are the detector's own qualified names with this prefix."""


class DetectorView(nn.Module):
    """The detector from an image batch to its feature maps, summed into one (N, C) tensor: for tracing only.

    `detector` is the whole detector (it moves, thins and saves with the view); `backbone` is the qualified name
    of the part to prune. Images are normalised as the detector's transform would (when it has `normalize`),
    but not resized: give them at the size the transform resizes to.
    """

    def __init__(self, detector: nn.Module, backbone: str) -> None:
        super().__init__()
        self.detector = detector
        self.backbone = backbone

    def forward(self, images: Tensor) -> Tensor:
        normalize = getattr(getattr(self.detector, "transform", None), "normalize", None)
        if callable(normalize):
            images = normalize(images)
        features = self.detector.get_submodule("backbone")(images)
        maps = list(features.values()) if isinstance(features, Mapping) else [features]
        return torch.stack([feature.flatten(2).mean(2) for feature in maps]).sum(0)


def detector_view(detector: nn.Module, backbone: str) -> DetectorView:
    """A view over a copy of `detector` (the caller's is not touched) whose layer table prunes `backbone` only.

    FrozenBatchNorm2d (what torchvision builds around pretrained backbones) becomes an equal BatchNorm2d in the
    copy, since channels cannot be removed from a frozen one; it computes the same in eval mode.
    """
    if not isinstance(getattr(detector, "backbone", None), nn.Module):
        raise UserError(
            f"{type(detector).__name__} has no `backbone` submodule, so amc cannot find its feature maps.",
            fix="pass a torchvision-style detector (detector.backbone(images) returns the feature maps).",
        )
    names = {name for name, _ in detector.named_modules()}
    if not backbone.startswith("backbone.") or backbone not in names:
        inside = sorted(f"backbone.{name}" for name, _ in detector.backbone.named_children())  # type: ignore[union-attr]
        raise UserError(
            f"backbone {backbone!r} is not a submodule inside {type(detector).__name__}.backbone.",
            fix=f"name the part to prune by its qualified name, one of: {', '.join(inside) or 'none'}.",
        )
    work = copy.deepcopy(detector).eval()
    _unfreeze_batchnorm_(work.get_submodule(backbone))
    return DetectorView(work, backbone)


def _unfreeze_batchnorm_(module: nn.Module) -> None:
    from torchvision.ops import FrozenBatchNorm2d

    for name, child in list(module.named_children()):
        if isinstance(child, FrozenBatchNorm2d):
            norm = nn.BatchNorm2d(child.weight.numel(), eps=child.eps)
            with torch.no_grad():
                norm.weight.copy_(child.weight)
                norm.bias.copy_(child.bias)
                norm.running_mean.copy_(child.running_mean)  # type: ignore[union-attr]
                norm.running_var.copy_(child.running_var)  # type: ignore[union-attr]
            setattr(module, name, norm.eval())
        else:
            _unfreeze_batchnorm_(child)


def backbone_only(table: LayerTable, view: DetectorView) -> LayerTable:
    """`table` with every group that has a layer outside the view's backbone marked not prunable."""
    inside = f"{PREFIX}{view.backbone}."
    reason = f"it lies outside the backbone {view.backbone!r}: the FPN, RPN and heads keep their widths"
    groups = tuple(
        group
        if all(name.startswith(inside) for name in group.layers)
        else replace(group, prunable=False, reason=reason)
        for group in table.groups
    )
    if not any(group.prunable for group in groups):
        raise UserError(
            f"backbone {view.backbone!r} has no conv layer whose channels amc can prune.",
            fix="name the detector's feature extractor, e.g. backbone='backbone.body'.",
        )
    return replace(table, groups=groups)


def backbone_macs(table: LayerTable, view: DetectorView, kept: Mapping[int, int] | None = None) -> int:
    """MACs of the layers inside the backbone when group g keeps kept[g] channels (absent: unpruned)."""
    inside = f"{PREFIX}{view.backbone}."
    return sum(spec.macs for layer, spec in zip(table.layers, table.specs(kept or {})) if layer.name.startswith(inside))


def check_detector(detector: nn.Module, image_size: tuple[int, int, int], images: int = 2) -> list[dict[str, Tensor]]:
    """Run `detector` in eval mode on `images` random images and check it returns boxes, scores and labels each.

    The heads were never traced, so this is the only proof that a thinned backbone still fits them.
    """
    training = detector.training
    device = next(detector.parameters()).device
    generator = torch.Generator().manual_seed(0)
    batch = [torch.rand(*image_size, generator=generator).to(device) for _ in range(images)]
    detector.eval()
    try:
        with torch.no_grad():
            out = detector(batch)
    except RuntimeError as error:
        raise UserError(
            f"the detector fails its forward pass after thinning: {str(error).splitlines()[0]}",
            fix="report this detector; prune a smaller part of its backbone meanwhile.",
        ) from None
    finally:
        detector.train(training)
    keys = ("boxes", "scores", "labels")
    if (
        not isinstance(out, list)
        or len(out) != images
        or not all(isinstance(d, dict) and set(keys) <= set(d) for d in out)
    ):
        raise UserError(
            f"the detector returned {type(out).__name__}, not one dict of {', '.join(keys)} per image.",
            fix="pass a torchvision-style detector (eval mode returns a list of dicts).",
        )
    for found in out:
        count = len(found["boxes"])
        if found["boxes"].shape != (count, 4) or len(found["scores"]) != count or len(found["labels"]) != count:
            raise UserError(
                f"the detector returned boxes {tuple(found['boxes'].shape)} with {len(found['scores'])} scores.",
                fix="report this detector.",
            )
    return out
