"""Distiller schedules: round trips of every format, real Distiller-style files, and every bad-input path."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from amc.errors import UserError
from amc.graph import build_layer_table
from amc.models import create_model
from amc.pruning import Strategy, StrategyMetadata
from amc.pruning.finegrained import LayerDensities
from amc.schedule import (
    Schedule,
    load_schedule,
    parse_distiller,
    save_schedule,
    strategy_to_distiller,
    strategy_to_distiller_yaml,
    summarize,
)

DATA = Path(__file__).parents[1] / "data"


@pytest.fixture(scope="module")
def resnet20():
    model = create_model("resnet20")
    return model, build_layer_table(model, (3, 16, 16), "resnet20")


def _varied(table) -> Strategy:
    """Different keep counts per group, including ones off the 8-grid (6 of 16, 20 of 32)."""
    groups = table.prunable_groups
    kept = {g.index: max(1, (g.channels * (i % 4 + 1)) // 5 - i % 3) for i, g in enumerate(groups)}
    meta = StrategyMetadata(model="resnet20", dataset="cifar10", accuracy=0.9)
    return Strategy.from_kept_channels(table, kept, metadata=meta)


@pytest.mark.parametrize("prefix", ["module.", ""])
def test_structured_yaml_round_trip(resnet20, prefix: str) -> None:
    _, table = resnet20
    strategy = _varied(table)
    text = strategy_to_distiller_yaml(strategy, prefix)
    data = yaml.safe_load(text)
    assert data["version"] == 1
    assert {p["class"] for p in data["pruners"].values()} == {"L1RankedStructureParameterPruner"}
    assert all(p["group_type"] == "Filters" for p in data["pruners"].values())
    coupled = [p for p in data["pruners"].values() if p.get("group_dependency") == "Leader"]
    assert len(coupled) == sum(1 for g in table.groups if "residual" in g.kinds)
    assert data["extensions"]["net_thinner"]["class"] == "FilterRemover"
    assert all(policy.get("epochs") == [0] for policy in data["policies"])
    assert all(w.startswith(prefix) for p in data["pruners"].values() for w in p["weights"])
    back = parse_distiller(text, table).strategy
    assert back.kept_channels(table) == strategy.kept_channels(table)


def test_depthwise_groups_round_trip() -> None:
    table = build_layer_table(create_model("mobilenetv2"), (3, 16, 16), "mobilenetv2")
    strategy = Strategy.uniform(table, 0.4)
    back = parse_distiller(strategy_to_distiller_yaml(strategy), table).strategy
    assert back.kept_channels(table) == strategy.kept_channels(table)
    assert strategy_to_distiller(strategy)["pruners"]


def test_schedule_files_round_trip_by_suffix(resnet20, tmp_path) -> None:
    _, table = resnet20
    schedule = Schedule(_varied(table), LayerDensities({"layer3.1.conv1": 0.3, "fc": 0.5}, "resnet20"))
    for name in ("s.yaml", "s.yml", "s.json"):
        save_schedule(schedule, tmp_path / name)
        back = load_schedule(tmp_path / name, table)
        assert back.strategy.kept_channels(table) == schedule.strategy.kept_channels(table)
        assert back.densities.densities == pytest.approx(schedule.densities.densities)
    assert load_schedule(tmp_path / "s.json", table) == schedule  # JSON keeps everything, metadata included
    save_schedule(schedule.strategy, tmp_path / "strategy.json")
    assert Strategy.load(tmp_path / "strategy.json") == schedule.strategy
    save_schedule(schedule.densities, tmp_path / "densities.json")
    assert load_schedule(tmp_path / "densities.json", table).densities == schedule.densities


def test_resnet50_elementwise_agp_gives_the_right_ideal_macs() -> None:
    model = create_model("torchvision:resnet50")
    table = build_layer_table(model, (3, 224, 224), "torchvision:resnet50")
    schedule = load_schedule(DATA / "distiller_resnet50_agp.yaml", table)
    assert schedule.strategy is None
    densities = schedule.densities.densities
    assert len(densities) == 53 and "conv1" not in densities
    assert densities["fc"] == pytest.approx(0.13) and densities["layer4.2.conv3"] == pytest.approx(0.2)
    summary = summarize(schedule, table, model)
    total = 4_089_184_256  # published torchvision ResNet-50 MACs
    stem = 112 * 112 * 64 * 3 * 7 * 7  # conv1: out HxW * C_out * C_in * k*k
    fc = 2048 * 1000
    assert summary.dense_macs == total
    assert summary.ideal_macs == pytest.approx(stem + 0.13 * fc + 0.2 * (total - stem - fc))
    weights = {name: p.numel() for name, p in model.named_parameters()}
    removed = 0.87 * weights["fc.weight"] + sum(0.8 * weights[f"{name}.weight"] for name in densities if name != "fc")
    assert summary.dense_params == 25_557_032
    assert summary.ideal_params == pytest.approx(25_557_032 - removed)


def test_hybrid_distiller_schedule(resnet20) -> None:
    model, table = resnet20
    schedule = load_schedule(DATA / "distiller_resnet20_hybrid.yaml", table)
    kept = schedule.strategy.kept_channels(table)
    for name in ("layer2.0.conv1", "layer2.0.conv2", "layer2.0.downsample.0", "layer2.1.conv1", "layer2.2.conv2"):
        assert kept[table.layer(name).out_group] == 16
    assert len(kept) == len(table.prunable_groups)
    assert sum(count < table.groups[g].channels for g, count in kept.items()) == 4
    assert schedule.densities.densities == pytest.approx({"layer3.1.conv1": 0.3, "layer3.1.conv2": 0.3, "fc": 0.5})
    summary = summarize(schedule, table, model)
    assert summary.dense_macs < table.total_macs and summary.ideal_macs < summary.dense_macs


def test_channels_group_type_prunes_the_feeding_group(resnet20) -> None:
    _, table = resnet20
    text = (
        "pruners:\n  p:\n    class: L2RankedStructureParameterPruner\n    group_type: Channels\n"
        "    desired_sparsity: 0.25\n    weights: [layer1.0.conv2.weight]\n"
    )
    kept = parse_distiller(text, table).strategy.kept_channels(table)
    assert kept[table.group_of("layer1.0.conv1").index] == 12


def _error(table, text: str) -> str:
    with pytest.raises(UserError) as info:
        parse_distiller(text, table, "s.yaml")
    return str(info.value)


PRUNER = (
    "version: 1\npruners:\n  p:\n    class: {cls}\n    group_type: Filters\n    {key}: {value}\n"
    "    weights: [{weight}]\n"
)


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"weight": "module.layer9.conv1.weight"}, r"line 7.*'module.layer9.conv1.weight' is not the weight"),
        ({"weight": "module.layer1.0.conv1.bias"}, r"line 7.*'module.layer1.0.conv1.bias' is not the weight"),
        ({"value": "1.0"}, r"line 6.*desired_sparsity = 1.0 is outside \[0, 1\)"),
        ({"value": "-0.2"}, r"line 6.*outside \[0, 1\)"),
        ({"value": "lots"}, r"line 6.*desired_sparsity = 'lots' is not a number"),
        ({"key": "sparsity"}, r"pruners.p has no desired_sparsity.*_AGP variant"),
        ({"cls": "MagnitudeParameterPruner"}, r"line 4.*'MagnitudeParameterPruner' masks weights below.*thresholds"),
        ({"cls": "SensitivityPruner"}, r"line 4.*'SensitivityPruner' masks weights below.*standard deviation"),
        ({"cls": "NoSuchPruner"}, r"line 4.*class 'NoSuchPruner' is not supported"),
        ({"cls": "AutomatedGradualPruner", "key": "final_sparsity", "value": "1.5"}, r"final_sparsity = 1.5"),
        ({"cls": "AutomatedGradualPruner", "key": "final_sparsity"}, r"line 3.*has no initial_sparsity"),
        (
            {
                "weight": "module.conv1.weight, module.layer1.0.conv2.weight]\n  q:\n    class: "
                "L1RankedStructureParameterPruner\n    group_type: Filters\n    desired_sparsity: 0.75\n    weights: "
                "[module.layer1.1.conv2.weight"
            },
            r"line 12.*layer1.1.conv2.weight shares its channels.*keeps 8 channels, not 4",
        ),
    ],
)
def test_bad_structured_input_names_key_and_line(resnet20, fields: dict[str, str], expected: str) -> None:
    _, table = resnet20
    values = {
        "cls": "L1RankedStructureParameterPruner",
        "key": "desired_sparsity",
        "value": "0.5",
        "weight": "module.layer1.0.conv1.weight",
        **fields,
    }
    assert re.search(expected, _error(table, PRUNER.format(**values)), re.S)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("pruners:\n  p:\n    class: [unclosed\n", "malformed YAML at line 4"),
        ("pruners: {p: {class: X, weights: [a}\n", "malformed YAML at line 1"),
        ("- just\n- a list\n", "not a Distiller schedule"),
        ("version: 2\npruners: {}\n", "line 1.*'version' is 2"),
        ("version: 1\npruners: [a, b]\n", "line 2.*key 'pruners' is list"),
        (
            "pruners:\n  p:\n    class: L1RankedStructureParameterPruner\n    desired_sparsity: 0.5\n"
            "    weights: [conv1.weight]\n",
            "line 2.*has no group_type; Distiller requires it",
        ),
        ("pruners:\n  p:\n    class: AutomatedGradualPruner\n    final_sparsity: 0.5\n", "weights must be"),
        ("pruners:\n  p:\n    weights: [fc.weight]\n", "has no 'class'"),
        (
            "pruners:\n  p:\n    class: L1RankedStructureParameterPruner\n    group_type: Kernels\n"
            "    desired_sparsity: 0.5\n    weights: [conv1.weight]\n",
            "line 4.*group_type 'Kernels'",
        ),
        (
            "pruners:\n  p:\n    class: L1RankedStructureParameterPruner\n    group_type: Channels\n"
            "    desired_sparsity: 0.5\n    weights: [conv1.weight]\n",
            "reads 0 pruned groups",
        ),
        (
            "pruners:\n  p:\n    class: AutomatedGradualPruner\n    final_sparsity: 0.5\n    weights: [fc.weight]\n"
            "policies:\n  - pruner:\n      instance_name: q\n    epochs: [0]\n",
            "line 8.*instance_name 'q'",
        ),
        (
            "pruners:\n  p:\n    class: SparsityLevelParameterPruner\n    levels: {conv1.weight: 1.2}\n",
            "levels.conv1.weight = 1.2 is outside",
        ),
    ],
)
def test_bad_files_are_clear_errors(resnet20, text: str, expected: str) -> None:
    _, table = resnet20
    assert re.search(expected, _error(table, text), re.S)


def test_unprunable_and_grouped_layers_are_refused() -> None:
    shuffle = build_layer_table(create_model("torchvision:shufflenet_v2_x0_5"), (3, 32, 32), "shufflenet")
    blocked = next(g for g in shuffle.groups if not g.prunable)
    text = PRUNER.format(
        cls="L1RankedStructureParameterPruner", key="desired_sparsity", value=0.5, weight=f"{blocked.leader}.weight"
    )
    assert "channel shuffle" in _error(shuffle, text)
    regnet = build_layer_table(create_model("torchvision:regnet_x_400mf"), (3, 32, 32), "regnet")
    grouped = next(g for g in regnet.groups if g.divisor > 1 and g.channels % g.divisor == 0)
    sparsity = 1.5 / grouped.channels  # removes floor(1.5) = 1 channel: not a multiple of the divisor
    text = PRUNER.format(
        cls="L1RankedStructureParameterPruner",
        key="desired_sparsity",
        value=sparsity,
        weight=f"{grouped.leader}.weight",
    )
    assert f"multiple of {grouped.divisor}" in _error(regnet, text)


def test_load_schedule_file_errors(resnet20, tmp_path) -> None:
    _, table = resnet20
    with pytest.raises(UserError, match="does not exist"):
        load_schedule(tmp_path / "missing.yaml", table)
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(UserError, match="not valid JSON"):
        load_schedule(tmp_path / "bad.json", table)
    (tmp_path / "other.json").write_text('{"_type": "something"}')
    with pytest.raises(UserError, match="not an amc schedule"):
        load_schedule(tmp_path / "other.json", table)
    (tmp_path / "future.json").write_text('{"_type": "amc.Schedule", "_version": 7}')
    with pytest.raises(UserError, match="version 7"):
        load_schedule(tmp_path / "future.json", table)
