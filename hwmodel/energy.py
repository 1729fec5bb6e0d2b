"""Energy per layer: MACs and memory accesses, each priced by a published per-operation energy table.

energy = MACs * e_mac + register accesses * e_rf + inter-PE hops * e_array + SRAM accesses * e_sram
         + DRAM accesses * e_dram,
with the access counts of a systolic array (hwmodel.systolic) running the layer. Per MAC the array reads its
stationary operand from a register once and moves two operands one PE onward (both streamed operands in OS,
input and partial sum in WS/IS); SRAM and DRAM counts come from the dataflow's closed forms.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from hwmodel.base import CachedCostModel
from hwmodel.errors import HwModelError, did_you_mean
from hwmodel.spec import LayerSpec
from hwmodel.systolic import SystolicArray, SystolicModel

REGISTER_ACCESSES_PER_MAC = 1
ARRAY_HOPS_PER_MAC = 2
PJ_PER_MJ = 1e9


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
        "inter-PE level: a hop is priced as one register access (derived)."
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
        return EnergyBreakdown(
            mac_mj=counts.macs * self.table.mac * scale,
            register_mj=counts.macs * REGISTER_ACCESSES_PER_MAC * self.table.register * scale,
            array_mj=counts.macs * ARRAY_HOPS_PER_MAC * self.table.array * scale,
            sram_mj=counts.sram_accesses * self.table.sram * scale,
            dram_mj=counts.dram_accesses * self.table.dram * scale,
        )

    def _price(self, spec: LayerSpec) -> float:
        return self.breakdown(spec).total_mj

    def layer_energy_mj(self, spec: LayerSpec) -> float:
        return self.layer_cost(spec)

    def layer_latency_ms(self, spec: LayerSpec) -> float:
        return self.systolic.layer_cost(spec)
