"""Bit-widths as Distiller `quantizers:`: round trips, Distiller's override semantics, bad input named by key."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from amc.errors import UserError
from amc.graph import build_layer_table
from amc.models import create_model
from amc.pruning import Strategy
from amc.quantize import LayerBits
from amc.schedule import Schedule, check_distiller_text, load_schedule, save_schedule, schedule_to_distiller_yaml
from amc.schedule.distiller_read import parse_distiller
from amc.schedule.quantizers import PTQ_CLASS, QAT_CLASS

DATA = Path(__file__).parents[1] / "data"


@pytest.fixture(scope="module")
def table():
    return build_layer_table(create_model("resnet20"), (3, 16, 16), "resnet20")


def _names(table) -> list[str]:
    return [layer.name for layer in table.layers]


def _mixed(table) -> LayerBits:
    """conv1 and fc at full precision, layer1 at 4-bit weights, the rest at 8; activations 8 but fc's 6."""
    names = _names(table)
    inner = names[1:-1]
    weights = {name: 4 if name.startswith("layer1.") else 8 for name in inner}
    activations = {**{name: 8 for name in inner}, names[-1]: 6}
    return LayerBits(weights, activations, "resnet20")


def _read(table, text: str):
    return parse_distiller(text, table, "schedule", warn=False)


def test_bits_round_trip_with_full_precision_layers(table) -> None:
    bits = _mixed(table)
    strategy = Strategy.from_kept_channels(table, {})
    text = schedule_to_distiller_yaml(Schedule(strategy=strategy, bits=bits), layers=_names(table))
    data = yaml.safe_load(text)
    quantizer = data["quantizers"]["linear_quantizer"]
    assert quantizer["class"] == QAT_CLASS
    assert (quantizer["bits_weights"], quantizer["bits_activations"]) == (8, 8)  # the most common pair
    overrides = quantizer["overrides"]
    assert overrides["conv1"] == {"bits_weights": None, "bits_activations": None}
    assert overrides["fc"] == {"bits_weights": None, "bits_activations": 6}
    assert overrides["layer1.0.conv1"] == {"bits_weights": 4, "bits_activations": 8}
    assert "layer2.0.conv1" not in overrides  # at the defaults
    policy = data["policies"][-1]
    assert policy["quantizer"] == {"instance_name": "linear_quantizer"} and policy["frequency"] == 1
    assert not [issue for issue in check_distiller_text(text) if issue.severity == "error"]
    assert _read(table, text).bits == bits


def test_bits_alone_round_trip_without_layer_names(table) -> None:
    bits = LayerBits({"layer2.0.conv1": 3}, {"layer2.0.conv1": 5, "fc": 8}, "resnet20")
    text = schedule_to_distiller_yaml(Schedule(bits=bits))
    quantizer = yaml.safe_load(text)["quantizers"]["linear_quantizer"]
    assert quantizer["bits_weights"] is None and quantizer["bits_activations"] is None
    assert quantizer["overrides"]["fc"] == {"bits_weights": None, "bits_activations": 8}
    assert _read(table, text).bits == bits


def test_post_training_quantizer_is_written_without_a_policy(table) -> None:
    bits = _mixed(table)
    strategy = Strategy.from_kept_channels(table, {})
    text = schedule_to_distiller_yaml(Schedule(strategy=strategy, bits=bits), quantizer=PTQ_CLASS, layers=_names(table))
    data = yaml.safe_load(text)
    quantizer = data["quantizers"]["linear_quantizer"]
    assert {"bits_parameters", "bits_accum"} <= set(quantizer) and "bits_weights" not in quantizer
    assert not any("quantizer" in policy for policy in data["policies"])
    assert "--qe-config-file" in text
    assert _read(table, text).bits == bits


def test_regex_overrides_follow_distiller(table) -> None:
    text = r"""
quantizers:
  linear_quantizer:
    class: QuantAwareTrainRangeLinearQuantizer
    bits_activations: 8
    bits_weights: 8
    mode: ASYMMETRIC_UNSIGNED
    overrides:
      conv1: {bits_weights: null, bits_activations: null}
      'layer1\.0\..*': {bits_weights: 4}
      'layer1\..*': {bits_weights: 2, bits_activations: 6}
      layer1.0.conv2: {bits_weights: 5}
      'relu.*': {bits_activations: 4}
policies:
  - quantizer: {instance_name: linear_quantizer}
    starting_epoch: 0
    ending_epoch: 200
    frequency: 1
"""
    schedule = _read(table, text)
    bits = schedule.bits
    assert bits is not None
    assert bits.weight_bits("conv1") == 32 and bits.activation_bits("conv1") == 32
    assert bits.weight_bits("layer1.0.conv1") == 4  # the first pattern that matches wins
    assert bits.activation_bits("layer1.0.conv1") == 8  # a key the entry leaves out takes the default
    assert bits.weight_bits("layer1.0.conv2") == 5  # an entry under the exact name wins over patterns
    assert (bits.weight_bits("layer1.1.conv1"), bits.activation_bits("layer1.1.conv1")) == (2, 6)
    assert bits.weight_bits("layer3.2.conv2") == 8 and bits.weight_bits("fc") == 8
    assert any("relu.*" in note and "no conv/linear layer" in note for note in schedule.notes)


def test_distiller_pact_file_reads_its_bits() -> None:
    network = create_model("preact_resnet20")
    table = build_layer_table(network, (3, 32, 32), "preact_resnet20")
    schedule = load_schedule(DATA / "distiller_preact_resnet20_pact.yaml", table, warn=False)
    assert schedule.bits is not None
    for layer in table.layers:
        expected = (32, 32) if layer.name in ("conv1", "fc") else (3, 4)
        assert (schedule.bits.weight_bits(layer.name), schedule.bits.activation_bits(layer.name)) == expected
    assert any("PACT" in note and "bit-widths" in note for note in schedule.notes)


def test_post_training_file_needs_no_policy_and_its_own_key_names(table) -> None:
    text = "quantizers:\n  q:\n    class: PostTrainLinearQuantizer\n    bits_parameters: 6\n"
    bits = _read(table, text).bits
    assert bits is not None
    assert bits.weight_bits("layer2.1.conv2") == 6 and bits.activation_bits("layer2.1.conv2") == 8  # the default
    with pytest.raises(UserError, match=r"line 4.*takes no 'bits_weights'"):
        _read(table, "quantizers:\n  q:\n    class: PostTrainLinearQuantizer\n    bits_weights: 6\n")


@pytest.mark.parametrize("value", ["9", "1", "x", ".nan", "4.0", "true"])
def test_bad_bits_name_the_key_and_line(table, value: str) -> None:
    text = (
        "quantizers:\n  q:\n    class: QuantAwareTrainRangeLinearQuantizer\n    bits_weights: 8\n"
        f"    overrides:\n      fc:\n        bits_activations: {value}\n"
        "policies:\n  - quantizer: {instance_name: q}\n    starting_epoch: 0\n    ending_epoch: 2\n    frequency: 1\n"
    )
    with pytest.raises(UserError, match=r"line 7\).*quantizers\.q\.overrides\.fc\.bits_activations") as error:
        _read(table, text)
    assert "2-8" in error.value.fix


def test_bad_default_bits_and_mode_are_user_errors(table) -> None:
    base = "quantizers:\n  q:\n    class: PostTrainLinearQuantizer\n"
    with pytest.raises(UserError, match=r"quantizers\.q\.bits_activations = 16"):
        _read(table, base + "    bits_activations: 16\n")
    with pytest.raises(UserError, match="not a Distiller quantization mode"):
        _read(table, base + "    mode: LOGARITHMIC\n")
    with pytest.raises(UserError, match="not a regular expression"):
        _read(table, base + "    overrides:\n      'layer1(': {bits_weights: 4}\n")
    with pytest.raises(UserError, match="must be a mapping of bit-widths"):
        _read(table, base + "    overrides:\n      fc: 4\n")


def test_quantizers_amc_cannot_map_are_notes_not_errors(table) -> None:
    for cls in ("WRPNQuantizer", "MyOwnQuantizer"):
        text = (
            f"quantizers:\n  q:\n    class: {cls}\n    bits_weights: 4\n"
            "policies:\n  - quantizer: {instance_name: q}\n    starting_epoch: 0\n    ending_epoch: 2\n"
            "    frequency: 1\n"
        )
        schedule = _read(table, text)
        assert schedule.bits is None
        assert any(f"class {cls}" in note and "does not map it" in note for note in schedule.notes)


def test_unscheduled_double_and_undefined_quantizers(table) -> None:
    qat = "  {name}:\n    class: QuantAwareTrainRangeLinearQuantizer\n    bits_weights: 4\n"
    schedule = _read(table, "quantizers:\n" + qat.format(name="q"))
    assert schedule.bits is None and any("appears in no policy" in note for note in schedule.notes)
    policy = "  - quantizer: {{instance_name: {name}}}\n    starting_epoch: 0\n    ending_epoch: 2\n    frequency: 1\n"
    two = "quantizers:\n" + qat.format(name="a") + qat.format(name="b") + "policies:\n"
    with pytest.raises(UserError, match="Distiller prepares one quantizer"):
        _read(table, two + policy.format(name="a") + policy.format(name="b"))
    with pytest.raises(UserError, match="instance_name 'c' is not defined"):
        _read(table, two + policy.format(name="c"))


def test_schedule_json_keeps_bits_and_a_bits_file_loads_as_a_schedule(table, tmp_path) -> None:
    bits = _mixed(table)
    schedule = Schedule(strategy=Strategy.from_kept_channels(table, {}), bits=bits)
    save_schedule(schedule, tmp_path / "schedule.json")
    assert load_schedule(tmp_path / "schedule.json", table).bits == bits
    bits.save(tmp_path / "best_bits.json")
    assert load_schedule(tmp_path / "best_bits.json", table) == Schedule(bits=bits)
    foreign = LayerBits({"nope": 4})
    save_schedule(foreign, tmp_path / "foreign.json")
    with pytest.raises(UserError, match="'nope'"):
        load_schedule(tmp_path / "foreign.json", table)


def test_schedule_inspect_shows_bits(capsys) -> None:
    import json

    from amc.cli.main import main

    argv = ["schedule", "inspect", str(DATA / "distiller_preact_resnet20_pact.yaml"), "--model", "preact_resnet20"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "bit-widths (quantizers)" in out
    assert any(line.split() == ["layer1.0.conv1", "3", "/", "4"] for line in out.splitlines())
    assert main([*argv, "--json"]) == 0
    bits = json.loads(capsys.readouterr().out)["bits"]
    assert bits["weights"]["layer2.0.conv1"] == 3 and "conv1" not in bits["weights"]
