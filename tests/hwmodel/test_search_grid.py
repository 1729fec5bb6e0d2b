"""The layer variants a LUT measures ahead of a search come from the layer table's one coupling rule."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import amc.costs.latency_tables as latency_tables
from amc.costs.latency_tables import Grid, load_network, nearest_choice, reachable_channels, search_grid
from amc.graph import LayerTable, build_layer_table
from hwmodel.spec import LayerSpec


def frozen_search_grid(table: LayerTable, grid: Grid) -> list[LayerSpec]:
    """search_grid as it was before it used `LayerTable.layer_channels`: its own copy of the coupling rule."""

    def sums(options, fixed=0):
        totals = {fixed}
        for choices in options:
            totals = {total + choice for total in totals for choice in choices}
        return tuple(sorted(totals))

    choices = grid.choices(table)
    found: dict[str, LayerSpec] = {}
    for layer in table.layers:
        spec = layer.spec
        if layer.out_group is None and spec.op == "dwconv":
            variants = [spec]
        else:
            outs = choices[layer.out_group] if layer.out_group is not None else (spec.out_channels,)
            ins = sums((tuple(m * c for c in choices[g]) for g, m in layer.in_sources), layer.in_fixed)
            if spec.op == "dwconv":
                variants = [spec.with_channels(c, c) for c in outs]
            else:
                variants = [spec.with_channels(i, o) for i in ins for o in outs]
        for variant in variants:
            found.setdefault(variant.key(), variant)
    return list(found.values())


@pytest.mark.parametrize(
    ("model", "size"),
    [("resnet20", (3, 32, 32)), ("mobilenetv2", (3, 32, 32)), ("torchvision:densenet121", (3, 64, 64))],
)
def test_search_grid_is_the_variants_the_old_rule_gave(model, size):
    table = load_network(model, size).table
    grid = Grid()
    assert [spec.key() for spec in search_grid(table, grid)] == [spec.key() for spec in frozen_search_grid(table, grid)]


class ThreeWayConcat(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Conv2d(3, 16, 3, padding=1)
        self.b = nn.Conv2d(3, 24, 3, padding=1)
        self.c = nn.Conv2d(3, 16, 3, padding=1)
        self.d = nn.Conv2d(56, 32, 1)
        self.fc = nn.Linear(32, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.d(torch.cat([self.a(x), self.b(x), self.c(x)], dim=1)).mean((2, 3)))


def test_folding_a_concatenation_finds_what_the_product_does(monkeypatch):
    table = build_layer_table(ThreeWayConcat(), (3, 8, 8), "concat")
    concat = table.layer("d")
    assert len(concat.in_sources) == 3
    choices = Grid().choices(table)
    product = reachable_channels(table, concat.index, choices)
    assert product == {(i, o) for i in range(24, 57, 8) for o in (8, 16, 24, 32)}  # 8..16 + 8..24 + 8..16
    monkeypatch.setattr(latency_tables, "PRODUCT_LIMIT", 1)  # fold every layer, one group at a time
    assert reachable_channels(table, concat.index, choices) == product
    assert [spec.key() for spec in search_grid(table, Grid())] == [
        spec.key() for spec in frozen_search_grid(table, Grid())
    ]


def test_nearest_choice_prefers_the_larger_on_a_tie():
    assert nearest_choice((8, 16, 24), 13) == 16
    assert nearest_choice((8, 16, 24), 12) == 16
    assert nearest_choice((8, 16, 24), 100) == 24
