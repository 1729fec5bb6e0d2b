"""Measured latency tables for a whole network: build (resumable) what a search over it can visit.

TODO(lead): the helpers below still live in amc.cli.lut_cmd; they move here once that module settles.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from tqdm.auto import tqdm

from amc.cli.lut_cmd import Grid, Network, calibrate_overhead, open_for_build, search_grid
from hwmodel.lut import LutCostModel

__all__ = ["Network", "build_lut"]


def build_lut(
    network: Network,
    path: Path,
    backend: str = "torch",
    threads: int = 1,
    round_to: int = 8,
    lbound: float = 0.2,
    warmup: int = 10,
    repeats: int = 30,
    calibrate: int = 5,
    progress: bool = True,
    log: Callable[[str], None] = print,
) -> LutCostModel:
    """Open the LUT at `path` (resuming it), measure every missing variant, fit the overhead once; return it."""
    grid = Grid(round_to, lbound)
    lut = open_for_build(path, backend, threads, warmup, repeats, save_every_s=30.0)
    todo = [spec for spec in search_grid(network.table, grid) if spec.key() not in lut.table.entries]
    if todo:
        log(f"measuring {len(todo)} layer variants of {network.name} on this machine ({backend}, {threads} thread) "
            f"-> {path}")
        try:
            for spec in tqdm(todo, desc="LUT", unit="layer", disable=not progress, leave=False):
                lut.measure(spec)
        finally:
            lut.flush()
    if calibrate and lut.overhead_ms(network.table.specs()) == 0.0:
        calibrate_overhead(lut, network, calibrate, grid, progress=progress)
    return lut
