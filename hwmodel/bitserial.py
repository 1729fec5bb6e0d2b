"""A bit-serial / bit-flexible accelerator in HAQ's style: latency (and energy) that scale with the bits of both
operands.

The layer is its GEMM (hwmodel.systolic.gemm_of: M output pixels, N filters, K = kh*kw*C_in per group) on a
rows x cols array of dot-product units; N is tiled over rows, M over cols. A unit multiplies `brick_bits` x
`brick_bits` slices ("bricks"), `depth` of them per cycle; a w x a MAC needs p = ceil(w/b) * ceil(a/b) bricks.

    temporal (BISMO: 1-bit bricks, one binary matrix product per pair of bit planes)
        cycles = p * ceil(K / depth) * ceil(N / rows) * ceil(M / cols)
    spatial (BitFusion: 2-bit BitBricks fused into floor(depth / p) multipliers per unit)
        cycles = ceil(K / floor(depth / p)) * ceil(N / rows) * ceil(M / cols)

times the number of groups. Latency = max(cycles / clock, bytes / bandwidth), the bytes being each operand moved
once at its bits (hwmodel.roofline.layer_bytes). Energy, where the profile gives per-brick and per-bit energies:
MACs * p * brick energy + bits moved * (buffer + DRAM energy per bit).

Such hardware runs no float: a 32-bit operand is priced at FLOAT_FALLBACK_BITS, the widest width of HAQ's [2, 8]
range and its fixed-precision baseline, so the unquantized network has a price (the search's dense reference)
instead of an error.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from hwmodel.base import CachedCostModel
from hwmodel.errors import HwModelError
from hwmodel.profiles import Profile, find_profile
from hwmodel.roofline import layer_bytes
from hwmodel.spec import FULL_PRECISION_BITS, LayerSpec
from hwmodel.systolic import gemm_of

FUSIONS = ("temporal", "spatial")
"""How a unit combines bricks into a wider MAC: over cycles (bit-serial) or over bricks side by side."""
FLOAT_FALLBACK_BITS = 8
"""The bits a float (32-bit) operand is priced at on hardware that runs only integers."""
WIDEST_BITS = 8
"""The widest operand a quantized LayerSpec has; a spatial unit must fuse a MAC of this width."""
PJ_PER_MJ = 1e9


@dataclass(frozen=True)
class BitSerialEnergy:
    """Per-operation energy of the array, in pJ: one brick product, one bit through the buffer, one from DRAM."""

    brick_pj: float
    buffer_pj_per_bit: float
    dram_pj_per_bit: float


@dataclass(frozen=True)
class BitSerialArray:
    """A rows x cols array of units that take `depth` bricks of brick_bits x brick_bits per cycle."""

    name: str
    rows: int
    cols: int
    depth: int
    brick_bits: int
    fusion: str
    clock_mhz: float
    bandwidth_gbs: float
    energy: BitSerialEnergy | None = None
    description: str = ""

    def __post_init__(self) -> None:
        if self.fusion not in FUSIONS:
            raise HwModelError(
                f"bit-serial array {self.name!r}: fusion {self.fusion!r} is unknown.",
                fix=f"use one of {', '.join(FUSIONS)} (BISMO-style bit-serial, BitFusion-style fused bricks).",
            )
        if min(self.rows, self.cols, self.depth) < 1 or not 1 <= self.brick_bits <= WIDEST_BITS:
            raise HwModelError(
                f"bit-serial array {self.name!r}: {self.rows}x{self.cols} units of depth {self.depth}, "
                f"{self.brick_bits}-bit bricks.",
                fix=f"use rows, cols, depth >= 1 and brick_bits in 1-{WIDEST_BITS}.",
            )
        widest = self.bricks(WIDEST_BITS, WIDEST_BITS)
        if self.fusion == "spatial" and self.depth < widest:
            raise HwModelError(
                f"bit-serial array {self.name!r}: a spatial unit of depth {self.depth} cannot fuse an "
                f"{WIDEST_BITS}x{WIDEST_BITS}-bit MAC ({widest} bricks of {self.brick_bits} bits).",
                fix=f"set depth >= {widest}, or fusion: temporal.",
            )
        if not (0 < self.clock_mhz < math.inf and 0 < self.bandwidth_gbs < math.inf):
            raise HwModelError(
                f"bit-serial array {self.name!r}: clock {self.clock_mhz} MHz, bandwidth {self.bandwidth_gbs} GB/s.",
                fix="use positive finite numbers.",
            )

    def bricks(self, weight_bits: int, activation_bits: int) -> int:
        """Bricks one MAC of these widths needs: ceil(w/b) * ceil(a/b)."""
        return math.ceil(weight_bits / self.brick_bits) * math.ceil(activation_bits / self.brick_bits)

    @classmethod
    def from_profile(cls, profile: Profile) -> BitSerialArray:
        def count(field: str) -> int:
            found = profile.whole(field) or profile.quantity(field)  # absent: quantity() names the field
            return int(found.value)

        energy_fields = ("brick_energy_pj", "buffer_energy_pj_per_bit", "dram_energy_pj_per_bit")
        given = [field for field in energy_fields if field in profile.fields]
        if given and len(given) < len(energy_fields):
            missing = sorted(set(energy_fields) - set(given))
            raise HwModelError(
                f"device profile {profile.path}: has {', '.join(given)} but not {', '.join(missing)}.",
                fix="give all three energy fields, or none (the device then prices latency only).",
            )
        energy = BitSerialEnergy(*(profile.quantity(field).value for field in energy_fields)) if given else None
        return cls(
            name=profile.name,
            rows=count("rows"),
            cols=count("cols"),
            depth=count("depth"),
            brick_bits=count("brick_bits"),
            fusion=profile.text("fusion", FUSIONS),
            clock_mhz=profile.quantity("clock_mhz").value,
            bandwidth_gbs=profile.quantity("bandwidth_gbs").value,
            energy=energy,
            description=profile.description,
        )

    @classmethod
    def named(cls, name: str) -> BitSerialArray:
        return cls.from_profile(find_profile(name, "bitserial"))


@dataclass(frozen=True)
class BitSerialCost:
    """One layer on the array: cycles, bricks per MAC, bytes moved, and the latency terms in ms."""

    cycles: int
    bricks_per_mac: int
    bytes_moved: float
    compute_ms: float
    memory_ms: float

    @property
    def latency_ms(self) -> float:
        return max(self.compute_ms, self.memory_ms)


def integer_bits(spec: LayerSpec) -> LayerSpec:
    """The spec as the array runs it: a float operand at FLOAT_FALLBACK_BITS."""

    def run(bits: int) -> int:
        return FLOAT_FALLBACK_BITS if bits == FULL_PRECISION_BITS else bits

    return spec.with_bits(run(spec.weight_bits), run(spec.activation_bits))


def bitserial_cost(spec: LayerSpec, array: BitSerialArray) -> BitSerialCost:
    """Cycles and latency of one layer (closed forms in the module docstring)."""
    spec = integer_bits(spec)
    gemm = gemm_of(spec)
    bricks = array.bricks(spec.weight_bits, spec.activation_bits)
    tiles = math.ceil(gemm.n / array.rows) * math.ceil(gemm.m / array.cols)
    if array.fusion == "temporal":
        passes = bricks * math.ceil(gemm.k / array.depth)
    else:
        passes = math.ceil(gemm.k / (array.depth // bricks))
    cycles = gemm.repeat * tiles * passes
    moved = layer_bytes(spec, 1.0)  # every operand is integer now: the element size is never used
    return BitSerialCost(
        cycles=cycles,
        bricks_per_mac=bricks,
        bytes_moved=moved,
        compute_ms=cycles / (array.clock_mhz * 1e3),
        memory_ms=moved / (array.bandwidth_gbs * 1e6),
    )


def required_energy(array: BitSerialArray) -> BitSerialEnergy:
    """The array's per-operation energies; a profile without them is refused with the fix."""
    if array.energy is None:
        raise HwModelError(
            f"bit-serial device {array.name!r} gives no per-operation energies, so it prices latency only.",
            fix=f"use bitserial:{array.name} (latency), or add brick_energy_pj, buffer_energy_pj_per_bit and "
            "dram_energy_pj_per_bit to its profile.",
        )
    return array.energy


def bitserial_energy_mj(spec: LayerSpec, array: BitSerialArray) -> float:
    """Energy of one layer in mJ; the profile must give the energies."""
    energy = required_energy(array)
    cost = bitserial_cost(spec, array)
    compute = spec.macs * cost.bricks_per_mac * energy.brick_pj
    memory = cost.bytes_moved * 8 * (energy.buffer_pj_per_bit + energy.dram_pj_per_bit)
    return (compute + memory) / PJ_PER_MJ


class BitSerialModel(CachedCostModel):
    """`bitserial:<device>`: latency in ms (`bitserial-energy:<device>` prices the same array's energy)."""

    def __init__(self, array: BitSerialArray) -> None:
        super().__init__(f"bitserial:{array.name}", "latency")
        self.array = array

    def _price(self, spec: LayerSpec) -> float:
        return bitserial_cost(spec, self.array).latency_ms

    def breakdown(self, spec: LayerSpec) -> BitSerialCost:
        """Cycles, bytes moved, and which term bounds the layer."""
        return bitserial_cost(spec, self.array)


class BitSerialEnergyModel(CachedCostModel):
    """`bitserial-energy:<device>`: energy in mJ (a profile with energies); `layer_latency_ms` the same array's."""

    def __init__(self, array: BitSerialArray) -> None:
        required_energy(array)
        super().__init__(f"bitserial-energy:{array.name}", "energy")
        self.latency = BitSerialModel(array)

    def _price(self, spec: LayerSpec) -> float:
        return bitserial_energy_mj(spec, self.latency.array)

    def layer_energy_mj(self, spec: LayerSpec) -> float:
        return self.layer_cost(spec)

    def layer_latency_ms(self, spec: LayerSpec) -> float:
        return self.latency.layer_cost(spec)
