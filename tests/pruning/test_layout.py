"""Channels-last weights: same outputs, and thinning keeps the layout (so every scored candidate runs fast)."""

from __future__ import annotations

import torch

from amc.graph import build_layer_table
from amc.models import create_model
from amc.models.layout import is_channels_last, use_fast_layout_
from amc.pruning import thin_with_report


def _halved(table) -> dict[int, int]:
    return {g.index: max(g.divisor, g.channels // 2 // 8 * 8) for g in table.groups if g.prunable}


def test_fast_layout_changes_storage_not_outputs() -> None:
    torch.manual_seed(0)
    model = create_model("resnet20", in_channels=1).eval()
    images = torch.randn(8, 1, 28, 28)
    with torch.no_grad():
        before = model(images)
        assert not is_channels_last(model)
        after = use_fast_layout_(model)(images)
    assert is_channels_last(model)
    torch.testing.assert_close(after, before, rtol=1e-4, atol=1e-5)


def test_thinning_keeps_the_layout_of_the_network_it_thins() -> None:
    torch.manual_seed(0)
    for fast in (False, True):
        model = create_model("resnet20", in_channels=1).eval()
        if fast:
            use_fast_layout_(model)
        table = build_layer_table(model, (1, 28, 28), "resnet20")
        thinned = thin_with_report(model, table, _halved(table)).model
        assert is_channels_last(thinned) == fast
        convs = [p for p in thinned.parameters() if p.dim() == 4 and p.shape[1] > 1]
        assert all(p.is_contiguous(memory_format=torch.channels_last) == fast or p.is_contiguous() for p in convs)
        if fast:
            assert all(p.is_contiguous(memory_format=torch.channels_last) for p in convs)
