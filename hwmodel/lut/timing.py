"""Timing one callable the way every LUT entry and every end-to-end check is timed: warm up, repeat, median."""

from __future__ import annotations

import gc
import math
import os
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from hwmodel.lut.allocator import retain_freed_memory


@dataclass(frozen=True)
class Measurement:
    """Median and spread (interquartile range) of `repeats` timed calls, in ms."""

    median_ms: float
    iqr_ms: float
    min_ms: float
    repeats: int

    def to_dict(self) -> dict[str, float | int]:
        return {"median_ms": self.median_ms, "iqr_ms": self.iqr_ms, "min_ms": self.min_ms, "repeats": self.repeats}


def time_callable(run: Callable[[], object], warmup: int, repeats: int) -> Measurement:
    """Call `run` `warmup` times untimed (caches, allocator, kernel selection), then time `repeats` calls.

    The garbage collector is paused while timing so a collection does not land inside one repeat, and freed
    memory stays in the process (see `allocator`) so no repeat pays for page faults.
    """
    if repeats < 1:
        raise ValueError("repeats must be >= 1")
    retain_freed_memory()
    for _ in range(warmup):
        run()
    samples = []
    collecting = gc.isenabled()
    gc.disable()
    try:
        for _ in range(repeats):
            start = time.perf_counter_ns()
            run()
            samples.append((time.perf_counter_ns() - start) / 1e6)
    finally:
        if collecting:
            gc.enable()
    if repeats >= 2:
        quartiles = statistics.quantiles(samples, n=4)
        iqr = quartiles[2] - quartiles[0]
    else:
        iqr = 0.0
    return Measurement(statistics.median(samples), iqr, min(samples), repeats)


def contention_note(threads: int) -> str:
    """A warning when other processes already keep the cores busy (timings then run long and noisy), else ""."""
    load = os.getloadavg()[0]
    cores = os.cpu_count() or 1
    if load + threads <= cores + 0.5:
        return ""
    return (
        f"note: load average {load:.1f} on {cores} cores: other processes compete for the CPU, so timings will be "
        "noisy and whole networks will look slower than their layers; measure on a quiet machine."
    )


def interleaved(timers: Sequence[Callable[[int], Measurement]], repeats: int, rounds: int) -> list[Measurement]:
    """Time every unit in `rounds` round-robin passes of repeats/rounds calls each; keep each unit's calmest pass.

    A shared machine drifts: a neighbour's burst or a slow spell lasting seconds makes whatever is timed then look
    slow. Timed one after another, units measured in such a spell come out wrong relative to the rest.
    Round-robin passes spread each unit's calls over the whole measurement, and interference only ever adds
    time, so per unit the fastest pass's median is the one least disturbed. Also kept: the median of the passes'
    spreads, the overall minimum, the total repeats.
    """
    if rounds < 1:
        raise ValueError("rounds must be >= 1")
    per_round = max(1, math.ceil(repeats / rounds))
    results: list[list[Measurement]] = [[] for _ in timers]
    for _ in range(rounds):
        for timer, found in zip(timers, results):
            found.append(timer(per_round))
    return [
        Measurement(
            min(m.median_ms for m in found),
            statistics.median(m.iqr_ms for m in found),
            min(m.min_ms for m in found),
            sum(m.repeats for m in found),
        )
        for found in results
    ]
