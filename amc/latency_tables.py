"""Measured latency tables of whole networks: what a search can visit, built, calibrated and validated.

The layer-level machinery (timing backends, the JSON table, fingerprints) is in `hwmodel.lut`; this module
knows networks: which layer variants a search over a model's coupling groups can reach (the same channel
counts the search itself uses), how a per-network overhead is fitted on whole-network runs, and how LUT sums
compare with end-to-end measurements.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from torch import nn
from tqdm.auto import tqdm

from amc.errors import UserError
from amc.graph import LayerTable, build_layer_table
from amc.models import create_model, model_info
from amc.pruning import thin
from amc.search.accounting import candidate_counts
from hwmodel.errors import HwModelError
from hwmodel.lut import (
    FidelityReport,
    LatencyTable,
    LutCostModel,
    NetworkOverhead,
    fidelity_report,
    fit_affine,
    layer_grid,
    mape,
    nearest_choice,
    structure_key,
    sums,
)
from hwmodel.lut.model import CHUNK
from hwmodel.lut.timing import interleaved
from hwmodel.spec import LayerSpec

Kept = dict[int, int]


@dataclass(frozen=True)
class Network:
    """A model to price and measure: its name, the (unpruned) module, its layer table, one input's C,H,W."""

    name: str
    model: nn.Module
    table: LayerTable
    input_size: tuple[int, int, int]


@dataclass(frozen=True)
class Grid:
    """How a search's channel counts are discretised: multiples of round_to (x group divisor), >= lbound."""

    round_to: int = 8
    lbound: float = 0.2

    def choices(self, table: LayerTable) -> dict[int, tuple[int, ...]]:
        """Kept counts per group; a group that cannot be pruned keeps all its channels."""
        return {
            group.index: tuple(candidate_counts(group, self.round_to, self.lbound, 1.0))
            if group.prunable
            else (group.channels,)
            for group in table.groups
        }


def load_network(
    model: str,
    size: tuple[int, int, int] | None = None,
    num_classes: int | None = None,
    dataset: str | None = None,
    data_root: str | None = None,
) -> Network:
    """Build `model` for an input of C,H,W: given, or the dataset's, or the model's own."""
    if dataset and not size:
        from amc.data import load_dataset

        bundle = load_dataset(dataset, data_root, search_val_size=1)
        size, num_classes = bundle.input_size, num_classes or bundle.num_classes
    size = size or model_info(model).input_size
    module = create_model(model, in_channels=size[0], num_classes=num_classes)
    return Network(model, module, build_layer_table(module, size, model), size)


def search_grid(table: LayerTable, grid: Grid) -> list[LayerSpec]:
    """Every distinct layer variant a search over `grid` can visit (2-D (in, out) grids bounded by lbound)."""
    choices = grid.choices(table)
    found: dict[str, LayerSpec] = {}
    for layer in table.layers:
        if layer.out_group is None and layer.spec.op == "dwconv":
            variants = [layer.spec]
        else:
            outs = choices[layer.out_group] if layer.out_group is not None else (layer.spec.out_channels,)
            ins = sums((tuple(m * c for c in choices[g]) for g, m in layer.in_sources), layer.in_fixed)
            variants = layer_grid(layer.spec, ins, outs)
        for spec in variants:
            found.setdefault(spec.key(), spec)
    return list(found.values())


def random_kept(table: LayerTable, grid: Grid, rng: np.random.Generator) -> Kept:
    """A random pruned variant: every group keeps a uniform random ratio in [lbound, 1], rounded to the grid."""
    return {
        index: nearest_choice(options, rng.uniform(grid.lbound, 1.0) * table.groups[index].channels)
        for index, options in grid.choices(table).items()
        if len(options) > 1
    }


def measure_variants(
    lut: LutCostModel,
    network: Network,
    variants: list[Kept],
    rounds: int = 3,
    done: Callable[[int], object] | None = None,
) -> list[float]:
    """End-to-end median latency (ms) of each physically thinned variant, on the LUT's backend and threads,
    interleaved in `rounds` passes (see `hwmodel.lut.timing.interleaved`) over CHUNK variants at a time;
    `done(n)` after each chunk."""
    latencies: list[float] = []
    shape = (1, *network.input_size)
    for start in range(0, len(variants), CHUNK):
        chunk = variants[start : start + CHUNK]
        timers = [lut.backend.network_timer(thin(network.model, network.table, kept), shape) for kept in chunk]
        latencies += [m.median_ms for m in interleaved(timers, lut.repeats, rounds)]
        if done:
            done(len(chunk))
    return latencies


def lut_sum(lut: LutCostModel, specs: list[LayerSpec]) -> float:
    """The sum of the layers' entries as timed alone: no per-network scale or offset."""
    return math.fsum(lut.entry_ms(spec) for spec in specs)


def _progress(total: int, description: str, enabled: bool) -> tqdm:
    return tqdm(total=total, desc=description, unit="net", disable=not enabled, leave=False)


def _measure_entries(lut: LutCostModel, specs: list[LayerSpec], rounds: int, progress: bool) -> None:
    """Measure, interleaved, every layer entry in `specs` that the LUT lacks (before any network run)."""
    missing = {spec.key() for spec in specs} - set(lut.table.entries)
    if missing:
        with tqdm(total=len(missing), desc="LUT entries", unit="layer", disable=not progress, leave=False) as bar:
            lut.measure_many(specs, rounds, bar.update)


def _measure_all(
    lut: LutCostModel, network: Network, variants: list[Kept], rounds: int, progress: bool, description: str
) -> tuple[list[list[LayerSpec]], list[float], list[float]]:
    """(layer specs, LUT sum without scale or offset, measured end-to-end ms) of every variant."""
    specs = [network.table.specs(kept) for kept in variants]
    _measure_entries(lut, [spec for variant in specs for spec in variant], rounds, progress)
    sums_ms = [lut_sum(lut, variant) for variant in specs]
    with _progress(len(variants), description, progress) as bar:
        measured = measure_variants(lut, network, variants, rounds, bar.update)
    return specs, sums_ms, measured


def calibrate_overhead(
    lut: LutCostModel,
    network: Network,
    samples: int,
    grid: Grid,
    seed: int = 0,
    progress: bool = True,
    rounds: int = 3,
) -> NetworkOverhead:
    """Fit measured ≈ scale x LUT sum + offset on the unpruned network, its smallest variant (every group at
    lbound: the two ends give the scale its leverage) and samples - 2 random variants; store it, bind to it."""
    rng = np.random.default_rng([seed, 0])
    smallest = {index: options[0] for index, options in grid.choices(network.table).items() if len(options) > 1}
    variants: list[Kept] = [{}, smallest][:samples]
    variants += [random_kept(network.table, grid, rng) for _ in range(samples - len(variants))]
    _, predicted, measured = _measure_all(lut, network, variants, rounds, progress, "calibrating")
    scale, offset = fit_affine(predicted, measured)
    overhead = NetworkOverhead(
        network.name,
        network.input_size,
        offset,
        len(variants),
        mape(predicted, measured),
        mape([scale * p + offset for p in predicted], measured),
        scale,
    )
    lut.set_overhead(network.table.specs(), overhead)
    lut.bind(network.table.specs())
    lut.flush()
    return overhead


def validate_lut(
    lut: LutCostModel,
    network: Network,
    samples: int,
    grid: Grid,
    seed: int = 0,
    progress: bool = True,
    rounds: int = 3,
) -> FidelityReport:
    """LUT prediction (with overhead) vs end-to-end measurement on `samples` random pruned variants."""
    if samples < 2:
        raise UserError(f"--samples {samples} is too few to rank.", fix="use --samples 2 or more (50 for a report).")
    rng = np.random.default_rng([seed, 1])
    variants = [random_kept(network.table, grid, rng) for _ in range(samples)]
    specs, _, measured = _measure_all(lut, network, variants, rounds, progress, "validating")
    lut.bind(network.table.specs())
    predicted = [lut.network_cost(variant) for variant in specs]
    macs = [sum(spec.macs for spec in variant) for variant in specs]
    lut.flush()
    return fidelity_report(predicted, measured, macs)


def open_for_build(
    path: Path, backend: str, threads: int, warmup: int, repeats: int, save_every_s: float
) -> LutCostModel:
    """Resume the LUT at `path` if it exists (same device and settings), else start an empty one."""
    if not path.exists():
        return LutCostModel(LatencyTable.create(backend, threads, warmup, repeats), path, save_every_s=save_every_s)
    lut = LutCostModel.open(path, save_every_s=save_every_s)
    wanted = {"backend": backend, "threads": threads, "warmup": warmup, "repeats": repeats}
    found = {"backend": lut.table.backend, **lut.table.settings}
    differing = [f"{key} {found[key]!r} (asked {value!r})" for key, value in wanted.items() if found[key] != value]
    if differing:
        raise HwModelError(
            f"LUT file {path} exists with other settings: {', '.join(differing)}.",
            fix="repeat the flags it was built with to resume it, or write to another --out.",
        )
    return lut


def build_lut(
    network: Network,
    path: Path,
    backend: str = "torch",
    threads: int = 1,
    grid: Grid | None = None,
    warmup: int = 10,
    repeats: int = 30,
    calibrate: int = 5,
    progress: bool = True,
    log: Callable[[str], None] = print,
    save_every_s: float = 30.0,
    rounds: int = 3,
) -> LutCostModel:
    """Open the LUT at `path` (resuming it), measure every variant missing for `grid` (interleaved in `rounds`
    passes), fit the overhead once; the LUT comes back bound to the network."""
    grid = grid or Grid()
    lut = open_for_build(path, backend, threads, warmup, repeats, save_every_s)
    specs = search_grid(network.table, grid)
    todo = [spec for spec in specs if spec.key() not in lut.table.entries]
    log(
        f"{network.name} {'x'.join(map(str, network.input_size))}: {len(network.table.layers)} layers, "
        f"{len(network.table.groups)} channel groups; channel counts are multiples of {grid.round_to} down to a "
        f"keep ratio of {grid.lbound} -> {len(specs)} layer variants, {len(specs) - len(todo)} already in {path}; "
        f"measuring {len(todo)} on this machine ({backend}, {threads} thread(s), {repeats} repeats)"
    )
    if todo:
        try:
            with tqdm(total=len(todo), desc="LUT", unit="layer", disable=not progress, leave=False) as bar:
                lut.measure_many(todo, rounds, bar.update)
        finally:
            lut.flush()
    if calibrate and structure_key(network.table.specs()) not in lut.table.overheads:
        calibrate_overhead(lut, network, calibrate, grid, progress=progress, rounds=rounds)
    return lut.bind(network.table.specs())
