"""Energy per layer: MACs and memory accesses, each priced by a published per-operation energy table.

energy = MACs * e_mac + register accesses * e_rf + inter-PE hops * e_array + SRAM accesses * e_sram
         + DRAM accesses * e_dram,
with the access counts of a systolic array (hwmodel.systolic) running the layer. Per MAC the array reads its
stationary operand from a register once and moves two operands one PE onward (both streamed operands in OS,
input and partial sum in WS/IS); SRAM and DRAM counts come from the dataflow's closed forms.

The tables are 32-bit. A quantized layer (both operands 2-8 bits) prices its MAC as an integer multiply, which
grows with the product of the operand widths, plus an add as wide as the wider operand, from Horowitz's 8-bit
integer figures (`int_mac_pj`); every access is priced by the bits it moves (`BitScale`). Access counts stay the
array's element counts (the buffers' fits are not re-checked at the narrower width). A float layer, or one with a
float operand (weight-only quantization computes in float), prices exactly as the table says.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from hwmodel.base import CachedCostModel
from hwmodel.errors import HwModelError, did_you_mean
from hwmodel.spec import FULL_PRECISION_BITS, LayerSpec
from hwmodel.systolic import SystolicArray, SystolicModel

REGISTER_ACCESSES_PER_MAC = 1
ARRAY_HOPS_PER_MAC = 2
PJ_PER_MJ = 1e9
INT8_MULT_PJ = 0.2
"""8-bit integer multiply, 45 nm (Horowitz, ISSCC 2014, published)."""
INT8_ADD_PJ = 0.03
"""8-bit integer add, 45 nm (Horowitz, ISSCC 2014, published)."""
FLOAT_MAC_PJ = 3.7 + 0.9
"""32-bit float multiply + add, 45 nm (Horowitz, ISSCC 2014, published): the MAC every table here is 32-bit at."""


def int_mac_pj(weight_bits: int, activation_bits: int) -> float:
    """One integer MAC in pJ (derived): an array multiplier has w*a partial-product cells, so its energy scales as
    w*a from the 8-bit point; a ripple adder scales with its width, taken as the wider operand's. At 32 x 32 bits
    this gives 3.2 pJ (mult) and 0.12 pJ (add) against Horowitz's published 3.1 and 0.1."""
    return INT8_MULT_PJ * weight_bits * activation_bits / 64 + INT8_ADD_PJ * max(weight_bits, activation_bits) / 8


@dataclass(frozen=True)
class BitScale:
    """Each energy term of a layer relative to its 32-bit price (all 1.0 for a float layer).

    mac: the integer MAC over the float one (both operands quantized, else 1); local: register and inter-PE
    traffic, the two operands of a MAC; weight / activation: SRAM reads of filters / inputs; output: SRAM and DRAM
    writes (requantized outputs at the activation width in OS; WS/IS write 32-bit partial sums); dram_read: DRAM
    reads at the element-weighted width of the layer's inputs and weights (derived: spilled partial sums are
    priced at that width too).
    """

    mac: float = 1.0
    local: float = 1.0
    weight: float = 1.0
    activation: float = 1.0
    output: float = 1.0
    dram_read: float = 1.0

    @classmethod
    def of(cls, spec: LayerSpec, dataflow: str) -> BitScale:
        if not spec.quantized:
            return cls()
        weight, activation = spec.weight_bits, spec.activation_bits
        integer = FULL_PRECISION_BITS not in (weight, activation)
        unique_bits = spec.input_elements * activation + spec.weight_count * weight
        return cls(
            mac=int_mac_pj(weight, activation) / FLOAT_MAC_PJ if integer else 1.0,
            local=(weight + activation) / (2 * FULL_PRECISION_BITS),
            weight=weight / FULL_PRECISION_BITS,
            activation=activation / FULL_PRECISION_BITS,
            output=activation / FULL_PRECISION_BITS if dataflow == "os" else 1.0,
            dram_read=unique_bits / ((spec.input_elements + spec.weight_count) * FULL_PRECISION_BITS),
        )


@dataclass(frozen=True)
class EnergyTable:
    """Energy per operation, in units of `unit_pj` picojoules (1 for tables already in pJ)."""

    name: str
    description: str
    mac: float
    register: float
    array: float
    sram: float
    dram: float
    unit_pj: float
    source: str


HOROWITZ_45NM = EnergyTable(
    name="horowitz45",
    description="45 nm, 32-bit float: MAC 4.6 pJ, register 1, SRAM 5, DRAM 640 pJ (Horowitz; Han et al.)",
    mac=3.7 + 0.9,
    register=1.0,
    array=1.0,
    sram=5.0,
    dram=640.0,
    unit_pj=1.0,
    source=(
        "M. Horowitz, 'Computing's energy problem', ISSCC 2014, as tabulated by Han et al. (NIPS 2015): float mult "
        "3.7 pJ + float add 0.9 pJ = one MAC; 32-bit register file 1 pJ, SRAM 5 pJ, DRAM 640 pJ. The table has no "
        "inter-PE level: a hop is priced as one register access (derived). Quantized layers: 8-bit int mult 0.2 pJ "
        "and 8-bit int add 0.03 pJ (Horowitz, published), other widths and all accesses scaled by bits (derived)."
    ),
)

EYERISS = EnergyTable(
    name="eyeriss",
    description="Eyeriss normalised costs: MAC 1, register 1, array 2, buffer 6, DRAM 200 (x 4.6 pJ per MAC)",
    mac=1.0,
    register=1.0,
    array=2.0,
    sram=6.0,
    dram=200.0,
    unit_pj=HOROWITZ_45NM.mac,
    source=(
        "Y.-H. Chen, J. Emer, V. Sze, 'Eyeriss', ISCA 2016: access energy normalised to one MAC (DRAM 200x, global "
        "buffer 6x, inter-PE array 2x, register file 1x). One MAC = 4.6 pJ (the 45 nm float MAC above) is our "
        "anchor (derived); set unit_pj to rescale."
    ),
)

ENERGY_PRESETS = {table.name: table for table in (HOROWITZ_45NM, EYERISS)}
DEFAULT_ARRAY = "scalesim-32x32"
"""The systolic preset whose access counts the energy model prices, unless `array=` names another."""


def energy_table(name: str, unit_pj: float | None = None) -> EnergyTable:
    if name not in ENERGY_PRESETS:
        raise HwModelError(
            f"unknown energy preset {name!r}.{did_you_mean(name, ENERGY_PRESETS)}",
            fix=f"use one of {', '.join(sorted(ENERGY_PRESETS))}, e.g. energy:eyeriss.",
        )
    table = ENERGY_PRESETS[name]
    return table if unit_pj is None else replace(table, unit_pj=float(unit_pj))


@dataclass(frozen=True)
class EnergyBreakdown:
    """One layer's energy by where it is spent, in mJ."""

    mac_mj: float
    register_mj: float
    array_mj: float
    sram_mj: float
    dram_mj: float

    @property
    def total_mj(self) -> float:
        return self.mac_mj + self.register_mj + self.array_mj + self.sram_mj + self.dram_mj


class EnergyModel(CachedCostModel):
    """`energy:<preset>`: energy in mJ on a systolic array; `layer_latency_ms` gives the same array's latency."""

    def __init__(self, table: EnergyTable, array: SystolicArray) -> None:
        super().__init__(f"energy:{table.name}", "energy")
        self.table = table
        self.systolic = SystolicModel(array)

    def breakdown(self, spec: LayerSpec) -> EnergyBreakdown:
        counts = self.systolic.layer_counts(spec)
        scale = self.table.unit_pj / PJ_PER_MJ
        bits = BitScale.of(spec, self.systolic.array.dataflow)
        sram = (
            counts.ifmap_sram_reads * bits.activation
            + counts.filter_sram_reads * bits.weight
            + counts.ofmap_sram_writes * bits.output
        )
        dram = counts.dram_reads * bits.dram_read + counts.dram_writes * bits.output
        return EnergyBreakdown(
            mac_mj=counts.macs * self.table.mac * bits.mac * scale,
            register_mj=counts.macs * REGISTER_ACCESSES_PER_MAC * self.table.register * bits.local * scale,
            array_mj=counts.macs * ARRAY_HOPS_PER_MAC * self.table.array * bits.local * scale,
            sram_mj=sram * self.table.sram * scale,
            dram_mj=dram * self.table.dram * scale,
        )

    def _price(self, spec: LayerSpec) -> float:
        return self.breakdown(spec).total_mj

    def layer_energy_mj(self, spec: LayerSpec) -> float:
        return self.layer_cost(spec)

    def layer_latency_ms(self, spec: LayerSpec) -> float:
        return self.systolic.layer_cost(spec)
