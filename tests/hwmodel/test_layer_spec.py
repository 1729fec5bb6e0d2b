"""LayerSpec: the counting formulas against DESIGN.md's worked example, and keys that stay stable."""

from __future__ import annotations

import pytest

from hwmodel.spec import SPEC_KEY_VERSION, LayerSpec


def test_worked_example_first_layer():
    # 56x56x64 input, 256 filters 3x3x64, stride 2, pad 1 -> 28x28x256.
    # params = 256 * 64 * 3 * 3 = 147,456; MACs = 28 * 28 * 147,456 = 115,605,504 (115.6 M).
    spec = LayerSpec("conv", 64, 256, kernel=3, stride=2, padding=1, in_hw=56)
    assert spec.out_hw == (28, 28)
    assert spec.params == 147_456
    assert spec.macs == 115_605_504


def test_worked_example_second_layer():
    # 28x28x256 -> 14x14x256 with 3x3x256 filters, stride 2: params = 256*256*9 = 589,824;
    # MACs = 14 * 14 * 589,824 = 115,605,504 (115.6 M again: a quarter of the pixels, four times the filters).
    spec = LayerSpec("conv", 256, 256, kernel=3, stride=2, padding=1, in_hw=28)
    assert spec.out_hw == (14, 14)
    assert spec.params == 589_824
    assert spec.macs == 115_605_504


def test_depthwise_and_linear_counts():
    depthwise = LayerSpec("dwconv", 32, 32, kernel=3, padding=1, groups=32, in_hw=112)
    assert depthwise.params == 32 * 9
    assert depthwise.macs == 112 * 112 * 32 * 9
    linear = LayerSpec("linear", 1280, 1000, bias=True)
    assert linear.params == 1_281_000
    assert linear.macs == 1_280_000


def test_ideal_macs_follow_weight_density():
    spec = LayerSpec("conv", 16, 16, kernel=3, padding=1, in_hw=8).with_density(0.25)
    assert spec.sparsity_pattern == "element"
    assert spec.ideal_macs == spec.macs * 0.25
    assert spec.with_density(1.0).sparsity_pattern == "dense"


def test_key_is_stable_text():
    spec = LayerSpec("conv", 64, 256, kernel=3, stride=2, padding=1, in_hw=56, fused=("bn", "relu"))
    assert spec.key() == (
        f"v{SPEC_KEY_VERSION}|conv|i64|o256|k3x3|s2x2|p1x1|d1x1|g1|hw56x56|b1|bias0|float32|f:bn+relu|dense:1"
    )


@pytest.mark.parametrize(
    "change",
    [
        {"in_channels": 32},
        {"out_channels": 128},
        {"kernel": 1},
        {"stride": 1},
        {"padding": 0},
        {"in_hw": 28},
        {"batch": 2},
        {"bias": True},
        {"fused": ("bn",)},
        {"dtype": "float16"},
    ],
)
def test_everything_that_changes_runtime_changes_the_key(change):
    base = dict(
        op="conv", in_channels=64, out_channels=256, kernel=3, stride=2, padding=1, in_hw=56, fused=("bn", "relu")
    )
    assert LayerSpec(**base).key() != LayerSpec(**{**base, **change}).key()


def test_with_channels_keeps_depthwise_depthwise():
    spec = LayerSpec("dwconv", 96, 96, kernel=3, padding=1, groups=96, in_hw=56)
    thinner = spec.with_channels(40, 40)
    assert (thinner.in_channels, thinner.out_channels, thinner.groups) == (40, 40, 40)


def test_dict_round_trip_and_hash():
    spec = LayerSpec("gconv", 64, 128, kernel=3, padding=1, groups=4, in_hw=14, fused=("bn", "relu6"), bias=True)
    again = LayerSpec.from_dict(spec.to_dict())
    assert again == spec and hash(again) == hash(spec) and again.key() == spec.key()
