"""End-to-end CPU latency of a whole network, to show that removed channels are real speed.

Warm up, then time `repeats` single forward passes under inference mode; report the median and spread (the
median resists the noise of a shared machine). Per-layer latency tables live in hwmodel; this is the check.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class Latency:
    median_ms: float
    p10_ms: float
    p90_ms: float
    repeats: int
    batch: int
    threads: int


def measure_latency(
    model: nn.Module, input_size: tuple[int, int, int], batch: int = 1, repeats: int = 30, warmup: int = 5
) -> Latency:
    model = model.eval()
    example = torch.randn(batch, *input_size, device=next(model.parameters()).device)
    times = []
    with torch.inference_mode():
        for _ in range(warmup):
            model(example)
        for _ in range(repeats):
            start = time.perf_counter()
            model(example)
            times.append((time.perf_counter() - start) * 1e3)
    deciles = statistics.quantiles(times, n=10)
    return Latency(statistics.median(times), deciles[0], deciles[-1], repeats, batch, torch.get_num_threads())
