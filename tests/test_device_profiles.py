"""Device profiles say how the device is deployed (runtime, precision, batch, channel alignment), each with a
source; `search.round_to: auto` follows the device's alignment, and `amc list devices` shows it all."""

from __future__ import annotations

from pathlib import Path

import pytest

from amc.cli.main import main
from amc.config import ExperimentConfig, SearchSection, load_config, resolve_round_to
from amc.errors import UserError
from amc.problem.factory import settings_of
from hwmodel.errors import HwModelError
from hwmodel.profiles import PRECISIONS, device_alignment, find_profile, list_profiles, read_profile

GPU_PROFILES = ("nvidia-a100", "nvidia-h100-sxm", "nvidia-h200", "jetson-orin-nano")
ROOFLINE = """kind: roofline
description: test device
peak_gflops: {value: 10, source: test, derived: true}
bandwidth_gbs: {value: 1, source: test, derived: true}
layer_overhead_us: {value: 1, source: test, derived: true}
"""


def write(tmp_path: Path, extra: str = "", name: str = "mine") -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(ROOFLINE + extra)
    return path


def test_every_shipped_profile_loads_with_its_deployment() -> None:
    profiles = list_profiles()
    assert {profile.name for profile in profiles} >= {"rpi4-a72", "jetson-nano", *GPU_PROFILES}
    for profile in profiles:
        found = profile.deployment()
        assert found.precision.value in PRECISIONS and found.batch.value >= 1 and found.runtime.value


def test_gpu_profiles_align_channels_for_fp16_tensor_cores_with_sources() -> None:
    for name in GPU_PROFILES:
        found = find_profile(name, "roofline").deployment()
        assert found.alignment == 8 and found.precision.value == "fp16" and found.runtime.value == "tensorrt"
        assert found.channel_alignment is not None and "tensor core" in found.channel_alignment.source
        assert not found.channel_alignment.derived


def test_a_profile_without_deployment_fields_gets_the_documented_defaults(tmp_path: Path) -> None:
    found = read_profile(write(tmp_path)).deployment()
    assert (found.runtime.value, found.precision.value, found.batch.value, found.alignment) == (
        "unspecified",
        "fp32",
        1.0,
        None,
    )
    assert found.runtime.derived and "default" in found.runtime.source


@pytest.mark.parametrize(
    ("extra", "named"),
    [
        ("precision: {value: fp12, source: x, derived: false}\n", "precision.value"),
        ("precision: fp16\n", "'precision'"),
        ("channel_alignment: {value: 7.5, source: x, derived: true}\n", "channel_alignment.value"),
        ("channel_alignment: {value: 0, source: x, derived: true}\n", "channel_alignment.value"),
        ("batch: {value: -1, source: x, derived: true}\n", "batch.value"),
        ("runtime: {value: '', source: x, derived: true}\n", "runtime.value"),
    ],
)
def test_a_malformed_deployment_field_names_the_file_and_field(tmp_path: Path, extra: str, named: str) -> None:
    path = write(tmp_path, extra)
    with pytest.raises(HwModelError, match=named) as caught:
        read_profile(path)
    assert str(path) in caught.value.problem


def test_device_alignment_follows_the_cost_model_name() -> None:
    assert device_alignment("roofline:rpi4-a72") == 4
    assert device_alignment("roofline:nvidia-h200") == 8
    assert device_alignment("sparse:roofline:jetson-orin-nano") == 8
    assert device_alignment("systolic:tpu-v1") is None  # the preset does not say
    for name in ("macs", "params", "lut:some.json", "lut:auto", "energy:eyeriss"):
        assert device_alignment(name) is None


def test_round_to_auto_uses_the_device_alignment_else_8() -> None:
    assert load_config(None, {"search.round_to": "auto", "cost.model": "roofline:rpi4-a72"}).search.round_to == 4
    assert load_config(None, {"search.round_to": "auto", "cost.model": "macs"}).search.round_to == 8
    config = load_config(None, {"search.round_to": "auto", "cost.model": "sparse:roofline:nvidia-a100"})
    assert config.search.round_to == 8 and settings_of(config).round_to == 8


def test_round_to_stays_8_unless_auto_is_asked_for() -> None:
    """Existing configs and results do not change: the default is 8 whatever the device."""
    assert load_config(None, {"cost.model": "roofline:rpi4-a72"}).search.round_to == 8
    assert load_config(None, {"search.round_to": 16, "cost.model": "roofline:rpi4-a72"}).search.round_to == 16


def test_a_config_built_in_code_resolves_auto_too() -> None:
    config = ExperimentConfig(search=SearchSection(round_to="auto"))
    assert resolve_round_to(config) == 8
    assert settings_of(config).round_to == 8


@pytest.mark.parametrize("value", ["eight", "8", 0])
def test_round_to_must_be_a_whole_number_or_auto(value: object) -> None:
    with pytest.raises(UserError, match=r"search\.round_to"):
        load_config(None, {"search.round_to": value, "cost.model": "macs"})


def test_list_devices_shows_kind_runtime_precision_batch_and_alignment(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["list", "devices"]) == 0
    lines = capsys.readouterr().out.splitlines()
    header = lines[0].split()
    assert header[:7] == ["name", "kind", "runtime", "precision", "batch", "align", "description"]
    h200 = next(line for line in lines if line.startswith("roofline:nvidia-h200 "))
    assert h200.split()[1:6] == ["roofline", "tensorrt", "fp16", "1", "8"] and "4.8 TB/s" in h200
    rpi = next(line for line in lines if line.startswith("roofline:rpi4-a72 "))
    assert " fp32 " in rpi and " 4 " in rpi
    assert any(line.startswith("macs ") for line in lines)
