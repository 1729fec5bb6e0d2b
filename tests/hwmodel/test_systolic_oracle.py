"""Systolic array: cycle and SRAM counts worked by hand, on square and non-square arrays, all three dataflows.

Every expected number below is computed in its comment from the closed forms of DESIGN.md §3:
    OS = ceil(M/R) * ceil(N/C) * (K + R + C - 2) - 1
    WS = ceil(K/R) * ceil(N/C) * (M + 2R + C - 2) - 1
    IS = ceil(K/R) * ceil(M/C) * (N + 2R + C - 2) - 1
and was cross-checked by running SCALE-Sim 3.0.0 (pip `scalesim`, 100 MB buffers so no stalls) on the same
layers: its "Total Cycles" and SRAM read counts are identical (its OFMAP write count adds R + C per fold).
R = array rows, C = array columns.
"""

from __future__ import annotations

import pytest

from hwmodel.spec import LayerSpec
from hwmodel.systolic import Gemm, SystolicArray, gemm_cycles, gemm_of, gemm_sram, systolic_cost

# Layer A: 6x6x2 input, 5 filters 3x3, stride 1, no padding -> 4x4x5.  M = 16, N = 5, K = 3*3*2 = 18.
LAYER_A = LayerSpec("conv", 2, 5, kernel=3, in_hw=6)
# Layer B: 5x5x4 input, 9 filters 2x2 -> 4x4x9.  M = 16, N = 9, K = 2*2*4 = 16.
LAYER_B = LayerSpec("conv", 4, 9, kernel=2, in_hw=5)
# Layer D: fully connected 64 -> 10, batch 1.  M = 1, N = 10, K = 64.
LAYER_D = LayerSpec("linear", 64, 10)


def array(rows: int, cols: int, dataflow: str, sram_kb: float = 1e6) -> SystolicArray:
    return SystolicArray("test", rows, cols, dataflow, 1000.0, sram_kb, sram_kb, sram_kb, 2)


def test_gemm_shapes():
    assert gemm_of(LAYER_A) == Gemm(m=16, n=5, k=18, repeat=1)
    assert gemm_of(LAYER_B) == Gemm(m=16, n=9, k=16, repeat=1)
    assert gemm_of(LAYER_D) == Gemm(m=1, n=10, k=64, repeat=1)


@pytest.mark.parametrize(
    ("layer", "rows", "cols", "dataflow", "cycles"),
    [
        # Layer A, 4x4: OS ceil(16/4)=4 * ceil(5/4)=2 * (18+4+4-2=24) - 1 = 191
        (LAYER_A, 4, 4, "os", 191),
        # WS ceil(18/4)=5 * ceil(5/4)=2 * (16+8+4-2=26) - 1 = 259
        (LAYER_A, 4, 4, "ws", 259),
        # IS ceil(18/4)=5 * ceil(16/4)=4 * (5+8+4-2=15) - 1 = 299
        (LAYER_A, 4, 4, "is", 299),
        # Layer A, 8 rows x 4 cols: OS ceil(16/8)=2 * 2 * (18+8+4-2=28) - 1 = 111
        (LAYER_A, 8, 4, "os", 111),
        # WS ceil(18/8)=3 * 2 * (16+16+4-2=34) - 1 = 203
        (LAYER_A, 8, 4, "ws", 203),
        # IS 3 * ceil(16/4)=4 * (5+16+4-2=23) - 1 = 275
        (LAYER_A, 8, 4, "is", 275),
        # Layer B, 4x4: OS 4 * ceil(9/4)=3 * (16+6=22) - 1 = 263
        (LAYER_B, 4, 4, "os", 263),
        # WS ceil(16/4)=4 * 3 * (16+8+4-2=26) - 1 = 311
        (LAYER_B, 4, 4, "ws", 311),
        # IS 4 * ceil(16/4)=4 * (9+8+4-2=19) - 1 = 303
        (LAYER_B, 4, 4, "is", 303),
        # Layer B, 8x4: OS 2 * 3 * (16+8+4-2=26) - 1 = 155; WS 2 * 3 * 34 - 1 = 203; IS 2 * 4 * (9+16+4-2=27) - 1 = 215
        (LAYER_B, 8, 4, "os", 155),
        (LAYER_B, 8, 4, "ws", 203),
        (LAYER_B, 8, 4, "is", 215),
        # Layer D, 4x4: OS ceil(1/4)=1 * ceil(10/4)=3 * (64+6=70) - 1 = 209
        (LAYER_D, 4, 4, "os", 209),
        # WS ceil(64/4)=16 * 3 * (1+8+4-2=11) - 1 = 527; IS 16 * ceil(1/4)=1 * (10+8+4-2=20) - 1 = 319
        (LAYER_D, 4, 4, "ws", 527),
        (LAYER_D, 4, 4, "is", 319),
        # Layer D, 8x4: OS 1 * 3 * (64+8+4-2=74) - 1 = 221; WS 8 * 3 * (1+16+4-2=19) - 1 = 455;
        # IS 8 * 1 * (10+16+4-2=28) - 1 = 223
        (LAYER_D, 8, 4, "os", 221),
        (LAYER_D, 8, 4, "ws", 455),
        (LAYER_D, 8, 4, "is", 223),
    ],
)
def test_cycles_worked_by_hand(layer, rows, cols, dataflow, cycles):
    assert systolic_cost(layer, array(rows, cols, dataflow)).cycles == cycles


@pytest.mark.parametrize(
    ("rows", "cols", "dataflow", "cycles"),
    [
        # Depthwise 3x3 on 3 channels of 6x6 (no padding) -> 4x4: one GEMM per channel, M = 16, N = 1, K = 9.
        # 4x4 OS per channel: ceil(16/4)=4 * 1 * (9+4+4-2=15) - 1 = 59; three channels: 177
        (4, 4, "os", 3 * 59),
        # 4x4 WS: ceil(9/4)=3 * 1 * (16+8+4-2=26) - 1 = 77 -> 231
        (4, 4, "ws", 3 * 77),
        # 4x4 IS: 3 * ceil(16/4)=4 * (1+8+4-2=11) - 1 = 131 -> 393
        (4, 4, "is", 3 * 131),
        # 8x4 OS: 2 * 1 * (9+8+4-2=19) - 1 = 37; WS: 2 * 1 * (16+16+4-2=34) - 1 = 67;
        # IS: 2 * 4 * (1+16+4-2=19) - 1 = 151
        (8, 4, "os", 3 * 37),
        (8, 4, "ws", 3 * 67),
        (8, 4, "is", 3 * 151),
    ],
)
def test_depthwise_runs_one_layer_per_channel(rows, cols, dataflow, cycles):
    depthwise = LayerSpec("dwconv", 3, 3, kernel=3, groups=3, in_hw=6)
    assert gemm_of(depthwise) == Gemm(m=16, n=1, k=9, repeat=3)
    assert systolic_cost(depthwise, array(rows, cols, dataflow)).cycles == cycles


def test_design_worked_example_on_a_32x32_array():
    # 56x56x64 -> 28x28x256 (3x3, stride 2): M = 784, N = 256, K = 576.
    # OS 32x32: ceil(784/32)=25 * ceil(256/32)=8 * (576+32+32-2=638) - 1 = 127,599 cycles = 0.127599 ms at 1 GHz.
    spec = LayerSpec("conv", 64, 256, kernel=3, stride=2, padding=1, in_hw=56)
    cost = systolic_cost(spec, array(32, 32, "os"))
    assert cost.cycles == 127_599
    assert cost.latency_ms(1000.0) == pytest.approx(0.127599)


@pytest.mark.parametrize(
    ("rows", "cols", "dataflow", "expected"),
    [
        # Layer A (M=16, N=5, K=18). OS: ifmap ceil(N/C)*M*K = 2*16*18 = 576; filter ceil(M/R)*K*N = 4*90 = 360;
        # ofmap M*N = 80.
        (4, 4, "os", (576, 360, 80)),
        # WS: ifmap 2*16*18 = 576; filter K*N = 90 (each weight loaded once); ofmap ceil(K/R)*M*N = 5*80 = 400.
        (4, 4, "ws", (576, 90, 400)),
        # IS: ifmap M*K = 288 (each input loaded once); filter ceil(M/C)*K*N = 4*90 = 360; ofmap 5*80 = 400.
        (4, 4, "is", (288, 360, 400)),
        # 8x4 OS: filter ceil(16/8)=2 * 90 = 180; WS ofmap ceil(18/8)=3 * 80 = 240; IS ofmap 240.
        (8, 4, "os", (576, 180, 80)),
        (8, 4, "ws", (576, 90, 240)),
        (8, 4, "is", (288, 360, 240)),
    ],
)
def test_sram_accesses_worked_by_hand(rows, cols, dataflow, expected):
    assert gemm_sram(gemm_of(LAYER_A), rows, cols, dataflow) == expected


def test_dram_is_compulsory_when_everything_fits():
    # Layer A: unique input 6*6*2 = 72, weights 90, outputs 80.
    cost = systolic_cost(LAYER_A, array(4, 4, "os"))
    assert (cost.dram_reads, cost.dram_writes) == (72 + 90, 80)


def test_dram_refetches_what_does_not_fit():
    # 0.1 KB = 102.4 B buffers, 2-byte words. Layer A input 144 B and weights 180 B do not fit.
    # OS: input re-read once per column fold (ceil(5/4)=2): 144; weights once per row fold (ceil(16/4)=4): 360.
    small_os = systolic_cost(LAYER_A, array(4, 4, "os", sram_kb=0.1))
    assert (small_os.dram_reads, small_os.dram_writes) == (144 + 360, 80)
    # WS: weights loaded once (90); input twice (144); outputs (160 B) spill: ceil(18/4)=5 partial-sum passes ->
    # writes 5*80 = 400, reads back 4*80 = 320.
    small_ws = systolic_cost(LAYER_A, array(4, 4, "ws", sram_kb=0.1))
    assert (small_ws.dram_reads, small_ws.dram_writes) == (144 + 90 + 320, 400)


def test_gemm_cycles_for_a_ragged_fold():
    # M=33 on 32 rows needs two row folds: OS ceil(33/32)=2 * ceil(32/32)=1 * (64+62=126) - 1 = 251.
    assert gemm_cycles(Gemm(33, 32, 64), 32, 32, "os") == 251
