"""Roofline latency: a layer takes at least as long as its arithmetic at peak, or its data at full bandwidth.

latency = max(2 * MACs / peak, bytes / bandwidth) + per-layer overhead (DESIGN.md §3), with bytes = input +
weights + output, each moved once (perfect on-chip reuse). That makes it a lower bound on a real device; the
overhead term stands for kernel launch / framework dispatch, which dominates small layers.

A quantized layer moves its weights at `weight_bits` (bias as int32) and its input and output at
`activation_bits` (the next layer is taken to read the same width), and computes at the profile's
`peak_int8_gops` / `peak_int4_gops` where it gives one and both operands fit; a float operand keeps the
element size and the float peak. Float layers price exactly as before bits existed.
"""

from __future__ import annotations

from dataclasses import dataclass

from hwmodel.base import CachedCostModel
from hwmodel.profiles import Profile, Quantity, find_profile
from hwmodel.spec import FULL_PRECISION_BITS, LayerSpec

BIAS_BYTES = 4
"""A quantized layer's bias stays 32-bit (int32 in ONNX QDQ and TFLite integer kernels)."""


@dataclass(frozen=True)
class RooflineDevice:
    """A device as the roofline sees it. `bytes_per_element` None: use each spec's own dtype; `peak_int8_gops` /
    `peak_int4_gops` None: the device has no faster integer path (quantized layers compute at `peak_gflops`)."""

    name: str
    description: str
    peak_gflops: Quantity
    bandwidth_gbs: Quantity
    layer_overhead_us: Quantity
    bytes_per_element: Quantity | None = None
    peak_int8_gops: Quantity | None = None
    peak_int4_gops: Quantity | None = None

    @classmethod
    def from_profile(cls, profile: Profile) -> RooflineDevice:
        def optional(field: str) -> Quantity | None:
            return profile.quantity(field) if field in profile.fields else None

        return cls(
            profile.name,
            profile.description,
            profile.quantity("peak_gflops"),
            profile.quantity("bandwidth_gbs"),
            profile.quantity("layer_overhead_us"),
            optional("bytes_per_element"),
            optional("peak_int8_gops"),
            optional("peak_int4_gops"),
        )

    @classmethod
    def named(cls, name: str) -> RooflineDevice:
        return cls.from_profile(find_profile(name, "roofline"))


@dataclass(frozen=True)
class RooflineCost:
    """The three terms of one layer's roofline latency, in ms."""

    compute_ms: float
    memory_ms: float
    overhead_ms: float

    @property
    def latency_ms(self) -> float:
        return max(self.compute_ms, self.memory_ms) + self.overhead_ms

    @property
    def bound(self) -> str:
        return "compute" if self.compute_ms >= self.memory_ms else "memory"


def layer_bytes(spec: LayerSpec, bytes_per_element: float) -> float:
    """Bytes a layer must move at least once: its input, its (dense) weights and bias, its output; a quantized
    operand at its bits, a float one at `bytes_per_element`."""
    if not spec.quantized:
        return (spec.input_elements + spec.params + spec.output_elements) * bytes_per_element

    def width(bits: int) -> float:
        return bytes_per_element if bits == FULL_PRECISION_BITS else bits / 8

    bias = spec.out_channels * BIAS_BYTES if spec.bias else 0
    activations = (spec.input_elements + spec.output_elements) * width(spec.activation_bits)
    return activations + spec.weight_count * width(spec.weight_bits) + bias


def peak_gops(spec: LayerSpec, device: RooflineDevice) -> float:
    """The peak the layer computes at: INT4 if both operands fit 4 bits and the device has it, else INT8 if they
    fit 8, else the float peak."""
    widest = max(spec.weight_bits, spec.activation_bits)
    if widest <= 4 and device.peak_int4_gops:
        return device.peak_int4_gops.value
    if widest <= 8 and device.peak_int8_gops:
        return device.peak_int8_gops.value
    return device.peak_gflops.value


def roofline_cost(spec: LayerSpec, device: RooflineDevice) -> RooflineCost:
    element = device.bytes_per_element.value if device.bytes_per_element else spec.bytes_per_element
    return RooflineCost(
        compute_ms=2.0 * spec.macs / (peak_gops(spec, device) * 1e6),
        memory_ms=layer_bytes(spec, element) / (device.bandwidth_gbs.value * 1e6),
        overhead_ms=device.layer_overhead_us.value / 1e3,
    )


class RooflineModel(CachedCostModel):
    """`roofline:<device>`: latency in ms from a device profile in configs/devices/."""

    def __init__(self, device: RooflineDevice) -> None:
        super().__init__(f"roofline:{device.name}", "latency")
        self.device = device

    def _price(self, spec: LayerSpec) -> float:
        return roofline_cost(spec, self.device).latency_ms

    def breakdown(self, spec: LayerSpec) -> RooflineCost:
        """Which term bounds the layer, and by how much."""
        return roofline_cost(spec, self.device)
