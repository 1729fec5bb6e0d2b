"""Pruning a torchvision detector's backbone: FPN inputs coupled, only the backbone shrinks, the detector still
detects, the search scores it with the user's callback, and the result saves and reloads."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import cast

import pytest
import torch
from torch import nn
from torchvision.models.detection import FasterRCNN, fasterrcnn_mobilenet_v3_large_fpn
from torchvision.ops import FrozenBatchNorm2d

import amc
from amc.errors import UserError
from amc.graph import LayerTable, build_layer_table
from amc.graph.detector import DetectorView, backbone_macs, backbone_only, check_detector, detector_view
from amc.pruning import Strategy, prune_network

SIZE = (3, 128, 128)
BODY = "detector.backbone.body."


def small_detector() -> nn.Module:
    torch.manual_seed(0)
    return fasterrcnn_mobilenet_v3_large_fpn(
        weights=None, weights_backbone=None, min_size=128, max_size=128, box_score_thresh=0.0
    ).eval()


@pytest.fixture(scope="module")
def detector() -> nn.Module:
    return small_detector()


@pytest.fixture(scope="module")
def view_table(detector: nn.Module) -> tuple[DetectorView, LayerTable]:
    view = detector_view(detector, "backbone.body")
    return view, backbone_only(build_layer_table(view, SIZE), view)


def images() -> list[torch.Tensor]:
    generator = torch.Generator().manual_seed(1)
    return [torch.rand(*SIZE, generator=generator) for _ in range(2)]


def test_only_backbone_groups_are_prunable(view_table: tuple[DetectorView, LayerTable]) -> None:
    _, table = view_table
    assert len(table.prunable_groups) >= 20
    assert all(name.startswith(BODY) for group in table.prunable_groups for name in group.layers)
    fpn = [group for group in table.groups if any(".fpn." in name for name in group.layers)]
    assert fpn and not any(group.prunable for group in fpn)
    assert all("outside the backbone 'backbone.body'" in group.reason for group in fpn)
    # the FPN's lateral 1x1 convs read backbone groups, so they are coupled with them
    laterals = {"detector.backbone.fpn.inner_blocks.0.0", "detector.backbone.fpn.inner_blocks.1.0"}
    fed = {name for group in table.prunable_groups for name in group.consumers} & laterals
    assert fed == laterals


def test_half_backbone_detector_detects_and_fpn_inputs_shrank(
    detector: nn.Module, view_table: tuple[DetectorView, LayerTable]
) -> None:
    view, table = view_table
    kept = Strategy.uniform(table, 0.5).kept_channels(table)
    pruned = cast(DetectorView, prune_network(view, table, kept).model).detector
    found = check_detector(pruned, SIZE)
    assert len(found) == 2 and found[0]["boxes"].shape[1] == 4
    assert len(found[0]["boxes"]) == len(found[0]["scores"]) == len(found[0]["labels"]) > 0
    for index, dense in enumerate(detector.backbone.fpn.inner_blocks):  # type: ignore[union-attr]
        thin = pruned.backbone.fpn.inner_blocks[index][0]  # type: ignore[index]
        name = f"detector.backbone.fpn.inner_blocks.{index}.0"
        (source,) = table.layer(name).in_sources
        assert thin.in_channels == kept[source[0]] < dense[0].in_channels
        assert thin.out_channels == dense[0].out_channels == 256
    heads = (pruned.rpn, pruned.roi_heads)  # type: ignore[attr-defined]
    dense_heads = (detector.rpn, detector.roi_heads)  # type: ignore[attr-defined]
    assert [p.shape for h in heads for p in h.parameters()] == [p.shape for h in dense_heads for p in h.parameters()]
    assert backbone_macs(table, view, kept) < 0.5 * backbone_macs(table, view)


def test_view_leaves_the_callers_detector_and_unfreezes_batchnorm(detector: nn.Module) -> None:
    frozen = copy.deepcopy(detector)
    body = frozen.backbone.body  # type: ignore[union-attr]
    for name, module in list(body.named_modules()):
        if isinstance(module, nn.BatchNorm2d):
            replacement = FrozenBatchNorm2d(module.num_features, eps=module.eps)
            replacement.running_mean.uniform_(-0.1, 0.1)
            replacement.running_var.uniform_(0.5, 2.0)
            parent, _, leaf = name.rpartition(".")
            setattr(body.get_submodule(parent) if parent else body, leaf, replacement)
    view = detector_view(frozen, "backbone.body")
    assert any(isinstance(m, FrozenBatchNorm2d) for m in frozen.modules())  # the caller's copy is untouched
    assert not any(isinstance(m, FrozenBatchNorm2d) for m in view.modules())
    batch = torch.stack(images())
    with torch.no_grad():
        torch.testing.assert_close(view(batch), DetectorView(frozen, "backbone.body")(batch))
    table = backbone_only(build_layer_table(view, SIZE), view)
    pruned = prune_network(view, table, Strategy.uniform(table, 0.5).kept_channels(table)).model
    check_detector(cast(DetectorView, pruned).detector, SIZE)


def test_search_through_the_api_scores_the_detector_and_saves_it(detector: nn.Module, tmp_path: Path) -> None:
    pictures = images()
    with torch.no_grad():
        dense = detector(pictures)
    seen: list[type] = []

    def evaluate(model: nn.Module) -> float:  # a toy: 1 - mean change of the detections' scores
        seen.append(type(model))
        with torch.no_grad():
            found = model(pictures)
        change = sum(abs(float(a["scores"].mean() - b["scores"].mean())) for a, b in zip(found, dense)) / 2
        return max(0.0, 1.0 - change)

    task = amc.prepare(
        detector, SIZE, evaluate, backbone="backbone.body", method="random", budget=0.6,
        settings={"search.episodes": 2}, log=lambda _: None,
    )  # fmt: skip
    result = amc.search_strategy(task, tmp_path / "run", progress=False, log=lambda _: None)
    assert len(seen) >= 2 and set(seen) == {FasterRCNN}
    assert result.best.metadata.cost <= result.best.metadata.budget < result.best.metadata.dense_cost
    assert all(layer.name.startswith(BODY) for layer in result.best.layers)
    pruned = amc.apply(task, result.best)
    folder = amc.save_detector(pruned, tmp_path / "final", result.best)
    back = amc.load_detector(small_detector(), folder)
    with torch.no_grad():
        want, got = cast(DetectorView, pruned).detector(pictures), back(pictures)
    torch.testing.assert_close(got[0]["boxes"], want[0]["boxes"])
    torch.testing.assert_close(got[1]["scores"], want[1]["scores"])


@pytest.mark.parametrize("name", ["backbone.bodyy", "backbone", "body"])
def test_a_bad_backbone_name_is_a_user_error_naming_it(detector: nn.Module, name: str) -> None:
    with pytest.raises(UserError, match=f"backbone '{name}'.*backbone.body"):
        amc.prepare(detector, SIZE, lambda _: 1.0, backbone=name, log=lambda _: None)


def test_a_model_without_a_backbone_is_a_user_error() -> None:
    with pytest.raises(UserError, match="no `backbone` submodule"):
        detector_view(nn.Sequential(nn.Conv2d(3, 8, 3)), "backbone.body")
