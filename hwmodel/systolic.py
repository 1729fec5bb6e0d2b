"""A systolic-array accelerator (R x C PEs), SCALE-Sim v2 semantics with no memory stalls.

Each layer is a GEMM: M = output pixels (x batch), N = filters, K = kh*kw*C_in (per group). Grouped and
depthwise convs run one GEMM per group (depthwise: one per channel), as SCALE-Sim runs its "DP" layers.
Closed forms (DESIGN.md §3), which SCALE-Sim 3.0.0 reproduces exactly ("Total Cycles", given its M, N, K):

    output stationary  ceil(M/R) * ceil(N/C) * (K + R + C - 2) - 1
    weight stationary  ceil(K/R) * ceil(N/C) * (M + 2R + C - 2) - 1
    input stationary   ceil(K/R) * ceil(M/C) * (N + 2R + C - 2) - 1

SRAM reads/writes count how often each operand is streamed into the array (also what SCALE-Sim reports, except
that for OS we count each output written once). DRAM traffic is our own closed form: every operand is fetched
once if it fits its SRAM buffer, else once per pass of the dataflow over it; spilled partial sums (WS/IS) go to
DRAM and back. Access counts are in elements (words).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from hwmodel.base import CachedCostModel
from hwmodel.errors import HwModelError
from hwmodel.profiles import Profile, find_profile
from hwmodel.spec import LayerSpec

DATAFLOWS = ("os", "ws", "is")
"""Output-, weight- and input-stationary."""


@dataclass(frozen=True)
class SystolicArray:
    """An R x C array with a dataflow, a clock, and one SRAM buffer per operand."""

    name: str
    rows: int
    cols: int
    dataflow: str
    clock_mhz: float
    ifmap_sram_kb: float
    filter_sram_kb: float
    ofmap_sram_kb: float
    word_bytes: int
    description: str = ""

    def __post_init__(self) -> None:
        if self.dataflow not in DATAFLOWS:
            raise HwModelError(
                f"systolic array {self.name!r}: dataflow {self.dataflow!r} is unknown.",
                fix=f"use one of {', '.join(DATAFLOWS)} (output, weight, input stationary).",
            )
        if self.rows < 1 or self.cols < 1:
            raise HwModelError(
                f"systolic array {self.name!r}: {self.rows}x{self.cols} PEs.", fix="use rows, cols >= 1."
            )

    @classmethod
    def from_profile(cls, profile: Profile) -> SystolicArray:
        return cls(
            name=profile.name,
            rows=int(profile.quantity("rows").value),
            cols=int(profile.quantity("cols").value),
            dataflow=profile.text("dataflow", DATAFLOWS),
            clock_mhz=profile.quantity("clock_mhz").value,
            ifmap_sram_kb=profile.quantity("ifmap_sram_kb").value,
            filter_sram_kb=profile.quantity("filter_sram_kb").value,
            ofmap_sram_kb=profile.quantity("ofmap_sram_kb").value,
            word_bytes=int(profile.quantity("word_bytes").value),
            description=profile.description,
        )

    @classmethod
    def named(cls, name: str, dataflow: str | None = None) -> SystolicArray:
        """A preset from configs/devices/, optionally with another dataflow."""
        array = cls.from_profile(find_profile(name, "systolic"))
        return array if dataflow is None else replace(array, dataflow=dataflow)


@dataclass(frozen=True)
class Gemm:
    """One layer as `repeat` independent M x K by K x N products (repeat = groups)."""

    m: int
    n: int
    k: int
    repeat: int = 1


@dataclass(frozen=True)
class SystolicCost:
    """Cycles and access counts (elements) of one layer on one array."""

    cycles: int
    macs: int
    ifmap_sram_reads: int
    filter_sram_reads: int
    ofmap_sram_writes: int
    dram_reads: int
    dram_writes: int

    @property
    def sram_accesses(self) -> int:
        return self.ifmap_sram_reads + self.filter_sram_reads + self.ofmap_sram_writes

    @property
    def dram_accesses(self) -> int:
        return self.dram_reads + self.dram_writes

    def latency_ms(self, clock_mhz: float) -> float:
        return self.cycles / (clock_mhz * 1e3)


def gemm_of(spec: LayerSpec) -> Gemm:
    """The GEMM a conv/linear layer runs: per group, M = batch*H_out*W_out, N = C_out/g, K = kh*kw*C_in/g."""
    out_h, out_w = spec.out_hw
    return Gemm(
        m=spec.batch * out_h * out_w,
        n=spec.out_channels // spec.groups,
        k=spec.kernel[0] * spec.kernel[1] * (spec.in_channels // spec.groups),
        repeat=spec.groups,
    )


def gemm_cycles(gemm: Gemm, rows: int, cols: int, dataflow: str) -> int:
    """SCALE-Sim's stall-free cycle count of one GEMM (closed forms in the module docstring)."""
    m, n, k, r, c = gemm.m, gemm.n, gemm.k, rows, cols
    if dataflow == "os":
        return math.ceil(m / r) * math.ceil(n / c) * (k + r + c - 2) - 1
    if dataflow == "ws":
        return math.ceil(k / r) * math.ceil(n / c) * (m + 2 * r + c - 2) - 1
    return math.ceil(k / r) * math.ceil(m / c) * (n + 2 * r + c - 2) - 1


def gemm_sram(gemm: Gemm, rows: int, cols: int, dataflow: str) -> tuple[int, int, int]:
    """(ifmap reads, filter reads, ofmap writes) of one GEMM: each operand times the folds that re-stream it."""
    m, n, k, r, c = gemm.m, gemm.n, gemm.k, rows, cols
    if dataflow == "os":
        return math.ceil(n / c) * m * k, math.ceil(m / r) * k * n, m * n
    if dataflow == "ws":
        return math.ceil(n / c) * m * k, k * n, math.ceil(k / r) * m * n
    return m * k, math.ceil(m / c) * k * n, math.ceil(k / r) * m * n


def _dram(spec: LayerSpec, gemm: Gemm, array: SystolicArray) -> tuple[int, int]:
    """(reads, writes) of one group's GEMM: unique operands once if they fit their SRAM, else once per pass."""
    m, n, k, r, c = gemm.m, gemm.n, gemm.k, array.rows, array.cols
    ifmap = spec.batch * (spec.in_channels // spec.groups) * spec.in_hw[0] * spec.in_hw[1]
    weights = k * n
    outputs = m * n

    def fits(elements: int, kb: float) -> bool:
        return elements * array.word_bytes <= kb * 1024

    ifmap_passes = {"os": math.ceil(n / c), "ws": math.ceil(n / c), "is": 1}[array.dataflow]
    filter_passes = {"os": math.ceil(m / r), "ws": 1, "is": math.ceil(m / c)}[array.dataflow]
    psum_passes = 1 if array.dataflow == "os" or fits(outputs, array.ofmap_sram_kb) else math.ceil(k / r)
    reads = ifmap * (1 if fits(ifmap, array.ifmap_sram_kb) else ifmap_passes)
    reads += weights * (1 if fits(weights, array.filter_sram_kb) else filter_passes)
    reads += outputs * (psum_passes - 1)
    return reads, outputs * psum_passes


def systolic_cost(spec: LayerSpec, array: SystolicArray) -> SystolicCost:
    """Cycles and accesses of one layer: its per-group GEMM, times the number of groups."""
    gemm = gemm_of(spec)
    ifmap_reads, filter_reads, ofmap_writes = gemm_sram(gemm, array.rows, array.cols, array.dataflow)
    dram_reads, dram_writes = _dram(spec, gemm, array)
    times = gemm.repeat
    return SystolicCost(
        cycles=times * gemm_cycles(gemm, array.rows, array.cols, array.dataflow),
        macs=spec.macs,
        ifmap_sram_reads=times * ifmap_reads,
        filter_sram_reads=times * filter_reads,
        ofmap_sram_writes=times * ofmap_writes,
        dram_reads=times * dram_reads,
        dram_writes=times * dram_writes,
    )


class SystolicModel(CachedCostModel):
    """`systolic:<preset>`: latency (ms) = cycles / clock; `layer_counts` gives cycles and access counts."""

    def __init__(self, array: SystolicArray) -> None:
        super().__init__(f"systolic:{array.name}", "latency")
        self.array = array
        self._counts: dict[LayerSpec, SystolicCost] = {}

    def layer_counts(self, spec: LayerSpec) -> SystolicCost:
        counts = self._counts.get(spec)
        if counts is None:
            counts = self._counts[spec] = systolic_cost(spec, self.array)
        return counts

    def _price(self, spec: LayerSpec) -> float:
        return self.layer_counts(spec).latency_ms(self.array.clock_mhz)
