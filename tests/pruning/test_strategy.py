"""Strategy: channel rounding, per-layer view, validation against a table, versioned JSON round trip."""

from __future__ import annotations

import json

import pytest

from amc.errors import UserError
from amc.graph import build_layer_table
from amc.models import create_model
from amc.pruning import Strategy, StrategyMetadata, round_channels


@pytest.mark.parametrize(
    ("ratio", "channels", "round_to", "divisor", "expected"),
    [
        (0.5, 64, 8, 1, 32),
        (0.3, 64, 8, 1, 16),  # 19.2 -> nearest multiple of 8
        (0.32, 64, 8, 1, 24),  # 20.48 -> 24
        (0.01, 64, 8, 1, 8),  # never below one step
        (0.0, 16, 8, 1, 8),
        (1.0, 100, 8, 1, 100),  # full keep is exact even off the grid
        (0.999, 100, 8, 1, 96),  # 99.9 -> nearest multiple of 8
        (0.99, 102, 8, 1, 102),  # 100.98 -> 104 is above the original: clamp
        (0.5, 4, 8, 1, 2),  # step larger than the layer: round to 1
        (0.5, 400, 8, 25, 200),  # grouped conv: multiple of lcm(8, 25) = 200
        (0.3, 48, 8, 3, 24),  # lcm(8, 3) = 24
        (0.5, 6, 8, 3, 3),  # lcm too big: multiple of the divisor alone
    ],
)
def test_round_channels(ratio: float, channels: int, round_to: int, divisor: int, expected: int) -> None:
    kept = round_channels(ratio, channels, round_to, divisor)
    assert kept == expected
    assert 1 <= kept <= channels and kept % divisor == 0


@pytest.mark.parametrize("ratio", [-0.1, 1.5, float("nan")])
def test_round_channels_rejects_bad_ratios(ratio: float) -> None:
    with pytest.raises(ValueError, match="keep ratio"):
        round_channels(ratio, 16)


@pytest.fixture(scope="module")
def table():
    return build_layer_table(create_model("resnet20"), (3, 16, 16), "resnet20")


def test_from_keep_ratios_by_group_or_layer_name(table) -> None:
    residual = table.group_of("layer1.0.conv2")
    strategy = Strategy.from_keep_ratios(table, {residual.index: 0.5, "layer3.0.conv1": 0.25})
    assert {layer.name for layer in strategy.layers} == {n for g in table.prunable_groups for n in g.layers}
    for name in residual.layers:
        assert strategy.layer(name).kept == 8 and strategy.layer(name).keep_ratio == 0.5
    assert strategy.layer("layer3.0.conv1").kept == 16
    assert strategy.layer("layer2.1.conv1").kept == 32  # absent: unpruned
    kept = strategy.kept_channels(table)
    assert kept[residual.index] == 8 and kept == strategy.kept_channels()
    assert strategy.keep_ratios()["layer3.0.conv1"] == 0.25
    assert table.specs(kept)[table.layer("layer3.0.conv1").index].out_channels == 16


def test_bad_ratios_name_the_group(table) -> None:
    with pytest.raises(UserError, match="layer1.0.conv1.*keep ratio"):
        Strategy.from_keep_ratios(table, {"layer1.0.conv1": 1.5})
    with pytest.raises(UserError, match="no conv/linear layer 'nope'"):
        Strategy.from_keep_ratios(table, {"nope": 0.5})
    with pytest.raises(UserError, match="classifier"):
        Strategy.from_keep_ratios(table, {"fc": 0.5})
    with pytest.raises(UserError, match="no coupling group 999"):
        Strategy.from_keep_ratios(table, {999: 0.5})


def test_json_round_trip_and_atomic_save(table, tmp_path) -> None:
    meta = StrategyMetadata(
        model="resnet20",
        dataset="fashion-mnist",
        input_size=(1, 28, 28),
        cost_model="lut",
        budget_metric="latency_ms",
        budget=2.5,
        cost=2.4,
        dense_cost=5.0,
        accuracy=0.91,
    )
    strategy = Strategy.uniform(table, 0.5, metadata=meta)
    assert Strategy.from_json(strategy.to_json()) == strategy
    path = tmp_path / "s.json"
    strategy.save(path)
    assert Strategy.load(path) == strategy
    assert [p.name for p in tmp_path.iterdir()] == ["s.json"]  # no temporary file left behind
    assert json.loads(path.read_text())["_version"] == 1


def test_json_rejects_future_versions_wrong_types_and_garbage(table) -> None:
    data = Strategy.uniform(table, 0.5).to_dict()
    with pytest.raises(UserError, match="version 2"):
        Strategy.from_dict({**data, "_version": 2})
    with pytest.raises(UserError, match="_type"):
        Strategy.from_dict({**data, "_type": "amc.Other"})
    with pytest.raises(UserError, match="not valid JSON.*line 1"):
        Strategy.from_json("{nope")
    with pytest.raises(UserError, match="malformed"):
        Strategy.from_dict({**data, "layers": [{"name": "x"}]})
    with pytest.raises(UserError, match="does not exist"):
        Strategy.load("/nonexistent/strategy.json")


def test_check_names_the_layer_that_does_not_fit(table) -> None:
    data = Strategy.uniform(table, 0.5).to_dict()
    data["layers"][0]["name"] = "layer9.conv"
    with pytest.raises(UserError, match="'layer9.conv' is not a conv/linear layer"):
        Strategy.from_dict(data).kept_channels(table)
    data = Strategy.uniform(table, 0.5).to_dict()
    data["layers"][0]["kept"] = 16  # conv1 shares channels with layer1.x.conv2, which keep 8
    with pytest.raises(UserError, match="share their output channels"):
        Strategy.from_dict(data).check(table)
    other = build_layer_table(create_model("resnet56"), (3, 16, 16), "resnet56")
    with pytest.raises(UserError, match="layer1.3.conv1.*not a conv/linear layer of resnet20.*with resnet56"):
        Strategy.uniform(other, 0.5).check(table)


def test_from_kept_channels_respects_divisor_and_range(table) -> None:
    group = table.group_of("layer1.0.conv1")
    assert Strategy.from_kept_channels(table, {group.index: 5}).layer("layer1.0.conv1").kept == 5
    with pytest.raises(UserError, match="cannot keep 0"):
        Strategy.from_kept_channels(table, {group.index: 0})
