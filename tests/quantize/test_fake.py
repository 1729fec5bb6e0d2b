"""Fake quantization by LayerBits: accuracy against float, grid sizes, calibration, straight-through, no mutation."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from amc.errors import UserError
from amc.graph import build_layer_table
from amc.models import create_model
from amc.quantize import LayerBits, calibrate, fake_quantize
from amc.quantize.fake import quantize_activation, quantize_weight

INPUT = (3, 16, 16)


def tiny() -> tuple[nn.Module, list[str], list[torch.Tensor]]:
    torch.manual_seed(0)
    model = create_model("tiny").eval()
    names = [layer.name for layer in build_layer_table(model, INPUT, "tiny").layers]
    return model, names, [torch.randn(16, *INPUT) for _ in range(2)]


def everywhere(names: list[str], bits: int) -> LayerBits:
    return LayerBits(dict.fromkeys(names, bits), dict.fromkeys(names, bits), "tiny")


def relative_error(model: nn.Module, other: nn.Module, images: torch.Tensor) -> float:
    with torch.no_grad():
        reference = model(images)
        return float((other(images) - reference).norm() / reference.norm())


def test_eight_bits_stay_close_to_float_and_two_bits_do_not() -> None:
    model, names, batches = tiny()
    ranges = calibrate(model, names, batches)
    images = torch.randn(32, *INPUT)
    eight = relative_error(model, fake_quantize(model, everywhere(names, 8), ranges), images)
    two = relative_error(model, fake_quantize(model, everywhere(names, 2), ranges), images)
    assert eight < 0.05
    assert two > 0.3 and two > 10 * eight


def test_32_bits_leave_the_layer_untouched() -> None:
    model, names, batches = tiny()
    quantized = fake_quantize(model, everywhere(names, 32), calibrate(model, names, batches))
    assert relative_error(model, quantized, torch.randn(8, *INPUT)) == 0.0


@pytest.mark.parametrize("bits", [2, 3, 4, 8])
def test_quantized_weights_have_at_most_two_to_the_bits_values_per_channel(bits: int) -> None:
    model, names, batches = tiny()
    quantized = fake_quantize(model, everywhere(names, bits), calibrate(model, names, batches))
    modules = dict(quantized.named_modules())
    for name in names:
        weight = modules[name].weight.detach()
        for channel in weight.reshape(weight.shape[0], -1):
            assert len(torch.unique(channel)) <= 2**bits
        # the grid is symmetric per channel: the largest magnitude is kept exactly
        original = dict(model.named_modules())[name].weight.detach().reshape(weight.shape[0], -1)
        assert torch.allclose(weight.reshape(weight.shape[0], -1).abs().amax(1), original.abs().amax(1))


def test_weight_and_activation_grids_by_hand() -> None:
    weight = torch.tensor([[1.0, -0.5, 0.26, 0.0]])
    # 3 bits: levels -3..3 of scale 1/3; 0.26 is 0.78 steps -> 1/3; -0.5 is -1.5 steps, rounded to even -> -2/3
    assert torch.allclose(quantize_weight(weight, 3), torch.tensor([[1.0, -2 / 3, 1 / 3, 0.0]]))
    x = torch.linspace(-1.0, 3.0, 101)
    quantized = quantize_activation(x, 2, -1.0, 3.0)
    assert len(torch.unique(quantized)) <= 4
    assert float(quantize_activation(torch.tensor([0.0]), 2, -1.0, 3.0)) == 0.0  # zero is on the grid
    assert float(quantize_activation(torch.tensor([10.0]), 4, -1.0, 3.0)) == pytest.approx(3.0, abs=0.2)


def test_straight_through_gradients_reach_the_float_weights() -> None:
    model, names, batches = tiny()
    quantized = fake_quantize(model, everywhere(names, 4), calibrate(model, names, batches)).train()
    quantized(torch.randn(4, *INPUT)).sum().backward()
    for name in names:
        layer = dict(quantized.named_modules())[name]
        gradient = layer.parametrizations.weight.original.grad
        assert gradient is not None and gradient.abs().sum() > 0


def test_quantizing_returns_a_copy_and_leaves_the_model_alone() -> None:
    model, names, batches = tiny()
    before = {key: value.clone() for key, value in model.state_dict().items()}
    fake_quantize(model, everywhere(names, 3), calibrate(model, names, batches))
    assert not model.training
    assert before.keys() == model.state_dict().keys()
    assert all(torch.equal(before[key], value) for key, value in model.state_dict().items())
    assert not any(module._forward_pre_hooks for module in model.modules())


def test_minmax_calibration_finds_the_input_extremes_and_percentile_clips_inside() -> None:
    model, names, batches = tiny()
    first = names[0]  # the stem sees the images themselves
    minmax = calibrate(model, names, batches).ranges[first]
    assert minmax == (min(float(b.min()) for b in batches), max(float(b.max()) for b in batches))
    low, high = calibrate(model, names, batches, method="percentile", percentile=99.0).ranges[first]
    assert minmax[0] < low < high < minmax[1]


@pytest.mark.parametrize(
    "kwargs", [{"method": "kl"}, {"percentile": 40.0}, {"percentile": float("nan")}, {"batches": []}]
)
def test_bad_calibration_is_refused(kwargs: dict) -> None:
    model, names, batches = tiny()
    arguments = {"batches": batches, **kwargs}
    with pytest.raises(UserError):
        calibrate(model, names, **arguments)


def test_unknown_layer_is_refused() -> None:
    model, names, batches = tiny()
    ranges = calibrate(model, names, batches)
    with pytest.raises(UserError, match="not conv/linear"):
        fake_quantize(model, LayerBits({"nope": 4}, {}, "tiny"), ranges)
