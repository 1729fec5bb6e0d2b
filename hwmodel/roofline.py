"""Roofline latency: a layer takes at least as long as its arithmetic at peak, or its data at full bandwidth.

latency = max(2 * MACs / peak, bytes / bandwidth) + per-layer overhead (DESIGN.md §3), with bytes = input +
weights + output, each moved once (perfect on-chip reuse). That makes it a lower bound on a real device; the
overhead term stands for kernel launch / framework dispatch, which dominates small layers.
"""

from __future__ import annotations

from dataclasses import dataclass

from hwmodel.base import CachedCostModel
from hwmodel.profiles import Profile, Quantity, find_profile
from hwmodel.spec import LayerSpec


@dataclass(frozen=True)
class RooflineDevice:
    """A device as the roofline sees it. `bytes_per_element` None: use each spec's own dtype."""

    name: str
    description: str
    peak_gflops: Quantity
    bandwidth_gbs: Quantity
    layer_overhead_us: Quantity
    bytes_per_element: Quantity | None = None

    @classmethod
    def from_profile(cls, profile: Profile) -> RooflineDevice:
        element = profile.quantity("bytes_per_element") if "bytes_per_element" in profile.fields else None
        return cls(
            profile.name,
            profile.description,
            profile.quantity("peak_gflops"),
            profile.quantity("bandwidth_gbs"),
            profile.quantity("layer_overhead_us"),
            element,
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
    """Bytes a layer must move at least once: its input, its (dense) weights and bias, its output."""
    return (spec.input_elements + spec.params + spec.output_elements) * bytes_per_element


def roofline_cost(spec: LayerSpec, device: RooflineDevice) -> RooflineCost:
    element = device.bytes_per_element.value if device.bytes_per_element else spec.bytes_per_element
    return RooflineCost(
        compute_ms=2.0 * spec.macs / (device.peak_gflops.value * 1e6),
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
