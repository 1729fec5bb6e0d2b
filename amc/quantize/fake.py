"""Fake quantization of a PyTorch network by `LayerBits`: what a mixed-precision search scores.

Weights are quantized per output channel, symmetrically (narrow range: levels -q..q with q = 2^(b-1) - 1, so a
channel holds at most 2^b - 1 distinct values); the input of each quantized conv/linear is quantized per tensor,
asymmetrically (2^b levels between a calibrated low and high, zero exactly representable). Both are
straight-through: the forward pass sees the quantized values, the backward pass the float ones (clipped to the
range for activations), so a short fine-tune can run on the result. A layer at 32 bits is left untouched.

Activation ranges are calibrated once, on training images (the scorer's BN batches, never search-val or test),
from the float network, and reused for every variant a search visits: a range is per tensor, so it does not
depend on how many channels a thinned variant keeps.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch.nn.utils import parametrize

from amc.errors import UserError
from amc.quantize.bits import LayerBits
from hwmodel.spec import FULL_PRECISION_BITS

CALIBRATIONS = ("minmax", "percentile")
"""How activation ranges are set: the observed min/max, or a central percentile (clips rare outliers)."""


@dataclass(frozen=True)
class ActivationRanges:
    """Per layer (qualified name): the (low, high) range of its input, as calibrated."""

    ranges: Mapping[str, tuple[float, float]]
    method: str = "minmax"


def weight_scale(weight: Tensor, bits: int) -> Tensor:
    """Per-output-channel scale of symmetric `bits` quantization, shaped to broadcast over `weight`."""
    levels = 2 ** (bits - 1) - 1
    peak = weight.detach().abs().reshape(weight.shape[0], -1).amax(dim=1).clamp_min(1e-12)
    return (peak / levels).reshape(-1, *([1] * (weight.dim() - 1)))


def quantize_weight(weight: Tensor, bits: int) -> Tensor:
    """`weight` on the symmetric per-channel grid of `bits`, straight-through for gradients."""
    levels = 2 ** (bits - 1) - 1
    scale = weight_scale(weight, bits)
    quantized = torch.clamp(torch.round(weight / scale), -levels, levels) * scale
    return weight + (quantized - weight).detach()


def quantize_activation(x: Tensor, bits: int, low: float, high: float) -> Tensor:
    """`x` on the asymmetric grid of `bits` over [low, high] (widened to hold 0), straight-through inside it."""
    low, high = min(low, 0.0), max(high, 0.0)
    levels = 2**bits - 1
    scale = max(high - low, 1e-12) / levels
    zero_point = round(-low / scale)
    clipped = torch.clamp(x, low, high)
    quantized = (torch.clamp(torch.round(x / scale) + zero_point, 0, levels) - zero_point) * scale
    return clipped + (quantized - clipped).detach()


class _WeightQuantizer(nn.Module):
    """A parametrization: the weight as the quantized network sees it."""

    def __init__(self, bits: int) -> None:
        super().__init__()
        self.bits = bits

    def forward(self, weight: Tensor) -> Tensor:
        return quantize_weight(weight, self.bits)


class _InputQuantizer:
    """A forward pre-hook quantizing a layer's input to its calibrated range."""

    def __init__(self, bits: int, low: float, high: float) -> None:
        self.bits, self.low, self.high = bits, low, high

    def __call__(self, module: nn.Module, inputs: tuple[Tensor, ...]) -> tuple[Tensor, ...]:
        return (quantize_activation(inputs[0], self.bits, self.low, self.high), *inputs[1:])


def _layers(model: nn.Module, names: Iterable[str]) -> dict[str, nn.Module]:
    modules = dict(model.named_modules())
    missing = [name for name in names if not isinstance(modules.get(name), (nn.Conv2d, nn.Linear))]
    if missing:
        raise UserError(
            f"layers {', '.join(missing)} are not conv/linear layers of the network being quantized.",
            fix="give bit-widths for the layer names `amc inspect` lists.",
        )
    return {name: modules[name] for name in names}


def calibrate(
    model: nn.Module,
    names: Sequence[str],
    batches: Sequence[Tensor],
    method: str = "minmax",
    percentile: float = 99.99,
) -> ActivationRanges:
    """Input ranges of the layers `names` on `batches` (training images). minmax: the extremes over all batches;
    percentile: the mean over batches of the `percentile` and 100 - `percentile` points (one batch at a time, so
    memory stays one batch's activations). The model is left as it was."""
    if method not in CALIBRATIONS:
        raise UserError(f"calibration {method!r} is not known.", fix=f"use one of {', '.join(CALIBRATIONS)}.")
    if not batches:
        raise UserError(
            "fake quantization needs calibration images and got none.",
            fix="set search.bn_images > 0 (training images that set the activation ranges).",
        )
    if not 50.0 < percentile <= 100.0:
        raise UserError(f"calibration percentile {percentile!r} is not in (50, 100].", fix="e.g. 99.99.")
    seen: dict[str, list[tuple[float, float]]] = {name: [] for name in names}

    def observer(name: str) -> Callable[[nn.Module, tuple[Tensor, ...]], None]:
        def hook(module: nn.Module, inputs: tuple[Tensor, ...]) -> None:
            flat = inputs[0].detach().float().reshape(-1)
            if method == "minmax":
                seen[name].append((float(flat.min()), float(flat.max())))
            else:
                k_low = max(1, int(round(flat.numel() * (100.0 - percentile) / 100.0)))
                k_high = min(flat.numel(), max(1, int(round(flat.numel() * percentile / 100.0))))
                seen[name].append((float(flat.kthvalue(k_low).values), float(flat.kthvalue(k_high).values)))

        return hook

    handles = [layer.register_forward_pre_hook(observer(name)) for name, layer in _layers(model, names).items()]
    training = model.training
    try:
        model.eval()
        with torch.no_grad():
            for images in batches:
                model(images)
    finally:
        for handle in handles:
            handle.remove()
        model.train(training)
    if method == "minmax":
        ranges = {name: (min(lo for lo, _ in obs), max(hi for _, hi in obs)) for name, obs in seen.items()}
    else:
        ranges = {name: (sum(lo for lo, _ in obs) / len(obs), sum(hi for _, hi in obs) / len(obs))
                  for name, obs in seen.items()}  # fmt: skip
    return ActivationRanges(ranges, method)


def fake_quantize_(model: nn.Module, bits: LayerBits, ranges: ActivationRanges) -> nn.Module:
    """Quantize `model` in place: each layer of `bits` below 32 gets a weight parametrization and an input hook
    (weight and activation bits apply independently). Returns `model`."""
    names = sorted({*bits.weights, *bits.activations})
    for name, layer in _layers(model, names).items():
        weight_bits, activation_bits = bits.weight_bits(name), bits.activation_bits(name)
        if weight_bits != FULL_PRECISION_BITS:
            parametrize.register_parametrization(layer, "weight", _WeightQuantizer(weight_bits))
        if activation_bits != FULL_PRECISION_BITS:
            if name not in ranges.ranges:
                raise UserError(
                    f"layer {name!r} has no calibrated activation range.", fix="calibrate every quantized layer."
                )
            low, high = ranges.ranges[name]
            layer.register_forward_pre_hook(_InputQuantizer(activation_bits, low, high))
    return model


def fake_quantize(model: nn.Module, bits: LayerBits, ranges: ActivationRanges) -> nn.Module:
    """A fake-quantized copy of `model` (see `fake_quantize_`); `model` is not touched."""
    return fake_quantize_(copy.deepcopy(model), bits, ranges)
