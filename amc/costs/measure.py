"""Whole networks timed on this machine, on the runtime the cost model speaks for, so cost and time compare."""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from hwmodel import CostModel
from hwmodel.lut import LutCostModel
from hwmodel.lut.backends import Backend, TorchBackend

LATENCY_THREADS = 1
"""Without a measured LUT, networks are timed in PyTorch eager on one thread (as LUTs are measured)."""


def timing_backend(cost_model: CostModel) -> Backend:
    """The LUT's own backend, threads and precision (an INT8 LUT's networks timed as INT8 graphs) when the cost
    model is a measured LUT, else PyTorch eager."""
    return cost_model.backend if isinstance(cost_model, LutCostModel) else TorchBackend(LATENCY_THREADS)


def backend_description(cost_model: CostModel) -> str:
    if isinstance(cost_model, LutCostModel):
        return f"{cost_model.table.runtime}, {cost_model.table.settings['threads']} thread(s)"
    return f"torch, {LATENCY_THREADS} thread(s)"


def measured_latencies_ms(
    cost_model: CostModel, models: Sequence[nn.Module], input_size: tuple[int, int, int]
) -> list[float]:
    """End-to-end batch-1 latencies, timed side by side (interleaved) on `timing_backend(cost_model)`."""
    return [m.median_ms for m in timing_backend(cost_model).measure_networks(list(models), (1, *input_size))]
