"""`amc lut build|calibrate|validate|info|calibrate-roofline`: measured latency tables on this machine.

build: measure every layer variant a search can visit (channel counts that are multiples of --round-to, down to
the --lbound keep-ratio floor) and fit the per-network overhead; resumable, saved as it goes.
calibrate: (re)fit the overhead on a few whole-network runs. validate: compare LUT sums with end-to-end
measurements of random pruned variants (MAPE, share within ±10%, Spearman/Kendall, and the same for MACs).
calibrate-roofline: write a roofline profile of this CPU from GEMM / copy / dispatch micro-benchmarks.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from torch import nn
from tqdm import tqdm

from amc.cli.args import input_size
from amc.errors import UserError
from amc.graph import LayerTable, build_layer_table
from amc.models import create_model, model_info
from amc.pruning import thin
from hwmodel.errors import HwModelError
from hwmodel.lut import (
    BACKENDS,
    FidelityReport,
    LatencyTable,
    LutCostModel,
    NetworkOverhead,
    channel_choices,
    fidelity_report,
    fit_offset,
    layer_grid,
    mape,
    nearest_choice,
    sums,
)
from hwmodel.lut.timing import contention_note
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
            group.index: channel_choices(group.channels, math.lcm(self.round_to, group.divisor), self.lbound)
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


def measure_variant(lut: LutCostModel, network: Network, kept: Kept) -> float:
    """End-to-end median latency (ms) of the physically thinned variant, on the LUT's backend and threads."""
    thinned = thin(network.model, network.table, kept)
    return lut.backend.measure_network(thinned, (1, *network.input_size)).median_ms


def lut_sum(lut: LutCostModel, specs: list[LayerSpec]) -> float:
    """The LUT's per-layer sum, without any per-network overhead."""
    return math.fsum(lut.layer_cost(spec) for spec in specs)


def _progress(total: int, description: str, enabled: bool) -> tqdm:
    return tqdm(total=total, desc=description, unit="net", disable=not enabled, leave=False)


def calibrate_overhead(
    lut: LutCostModel, network: Network, samples: int, grid: Grid, seed: int = 0, progress: bool = True
) -> NetworkOverhead:
    """Fit measured ≈ LUT sum + offset on the unpruned network and samples - 1 random variants; store it."""
    rng = np.random.default_rng([seed, 0])
    variants = [{}] + [random_kept(network.table, grid, rng) for _ in range(samples - 1)]
    predicted, measured = [], []
    with _progress(len(variants), "calibrating", progress) as bar:
        for kept in variants:
            predicted.append(lut_sum(lut, network.table.specs(kept)))
            measured.append(measure_variant(lut, network, kept))
            bar.update()
    offset = fit_offset(predicted, measured)
    overhead = NetworkOverhead(
        network.name,
        network.input_size,
        offset,
        len(variants),
        mape(predicted, measured),
        mape([p + offset for p in predicted], measured),
    )
    lut.set_overhead(network.table.specs(), overhead)
    lut.flush()
    return overhead


def validate_lut(
    lut: LutCostModel, network: Network, samples: int, grid: Grid, seed: int = 0, progress: bool = True
) -> FidelityReport:
    """LUT prediction (with overhead) vs end-to-end measurement on `samples` random pruned variants."""
    if samples < 2:
        raise UserError(f"--samples {samples} is too few to rank.", fix="use --samples 2 or more (50 for a report).")
    rng = np.random.default_rng([seed, 1])
    predicted, measured, macs = [], [], []
    with _progress(samples, "validating", progress) as bar:
        for _ in range(samples):
            kept = random_kept(network.table, grid, rng)
            specs = network.table.specs(kept)
            predicted.append(lut.network_cost(specs))
            measured.append(measure_variant(lut, network, kept))
            macs.append(sum(spec.macs for spec in specs))
            bar.update()
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


def run_build(args: argparse.Namespace) -> int:
    network = _network(args)
    grid = Grid(args.round_to, args.lbound)
    lut = open_for_build(Path(args.out), args.backend, args.threads, args.warmup, args.repeats, args.save_every)
    specs = search_grid(network.table, grid)
    todo = [spec for spec in specs if spec.key() not in lut.table.entries]
    print(
        f"{network.name} {'x'.join(map(str, network.input_size))}: {len(network.table.layers)} layers, "
        f"{len(network.table.groups)} channel groups; channel counts are multiples of {args.round_to} kept down to "
        f"a keep ratio of {args.lbound} -> {len(specs)} distinct layer variants, {len(specs) - len(todo)} already in "
        f"{args.out}, {len(todo)} to measure ({args.backend}, {args.threads} thread(s), {args.repeats} repeats)"
    )
    start = time.monotonic()
    try:
        for spec in tqdm(todo, desc="measuring", unit="layer", disable=args.no_progress):
            lut.measure(spec)
    finally:
        lut.flush()
    seconds = time.monotonic() - start
    print(f"measured {len(todo)} entries in {seconds:.1f} s; {args.out} holds {len(lut.table.entries)} entries")
    if args.calibrate:
        overhead = calibrate_overhead(lut, network, args.calibrate, grid, args.seed, not args.no_progress)
        print(_overhead_line(overhead))
    return 0


def run_calibrate(args: argparse.Namespace) -> int:
    network = _network(args)
    lut = LutCostModel.open(args.lut)
    overhead = calibrate_overhead(
        lut, network, args.samples, Grid(args.round_to, args.lbound), args.seed, not args.no_progress
    )
    print(_overhead_line(overhead))
    return 0


def run_validate(args: argparse.Namespace) -> int:
    network = _network(args)
    lut = LutCostModel.open(args.lut, allow_foreign=args.allow_foreign_lut)
    report = validate_lut(lut, network, args.samples, Grid(args.round_to, args.lbound), args.seed, not args.no_progress)
    if args.json:
        print(json.dumps(report.to_dict()))
        return 0
    overhead = lut.overhead_ms(network.table.specs())
    print(
        f"LUT {args.lut} ({lut.table.backend}, {lut.table.settings['threads']} thread(s)) vs {report.n} random pruned "
        f"variants of {network.name}, each measured end to end"
    )
    print(f"  per-network overhead  {overhead:+.3f} ms" + ("" if overhead else " (none calibrated)"))
    print(f"  MAPE                  {report.mape:.2f} %")
    print(f"  within ±10%           {report.within_10pct * 100:.1f} %")
    print(f"  Spearman              {report.spearman:.3f}   (MACs proxy {report.macs_spearman:.3f})")
    print(f"  Kendall               {report.kendall:.3f}   (MACs proxy {report.macs_kendall:.3f})")
    print(f"  entries measured on demand: {lut.measured_on_demand}")
    return 0


def run_info(args: argparse.Namespace) -> int:
    table = LatencyTable.load(args.lut)
    if args.json:
        summary = {key: value for key, value in table.to_dict().items() if key != "entries"}
        print(json.dumps({**summary, "entries": len(table.entries)}))
        return 0
    print(f"{args.lut}: {len(table.entries)} entries, backend {table.backend}, settings {table.settings}")
    for field, value in sorted(table.fingerprint.items()):
        print(f"  {field:<20} {value}")
    for overhead in table.overheads.values():
        print("  " + _overhead_line(overhead))
    return 0


def run_calibrate_roofline(args: argparse.Namespace) -> int:
    from hwmodel.microbench import calibrate_cpu, roofline_profile, write_profile

    profile = roofline_profile(calibrate_cpu(args.threads, args.repeats))
    write_profile(profile, Path(args.out))
    for field in ("peak_gflops", "bandwidth_gbs", "layer_overhead_us"):
        print(f"{field:<18} {profile[field]['value']}")  # type: ignore[index]
    print(f"wrote {args.out} (use it as roofline:{Path(args.out).stem})")
    return 0


def _overhead_line(overhead: NetworkOverhead) -> str:
    return (
        f"per-network overhead for {overhead.model}: {overhead.offset_ms:+.3f} ms, fitted on {overhead.samples} "
        f"whole-network runs (MAPE on them {overhead.mape_before:.1f}% -> {overhead.mape_after:.1f}%)"
    )


def _network(args: argparse.Namespace) -> Network:
    note = contention_note(getattr(args, "threads", 1))
    if note:
        print(note, file=sys.stderr)
    return load_network(args.model, args.input_size, args.num_classes, args.dataset, args.data_root)


def _add_network_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, help="model name (see `amc list models`)")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--dataset", help="take the input size and class count from this dataset")
    source.add_argument("--input-size", type=input_size, help="input as C,H,W (default: the model's own)")
    parser.add_argument("--data-root", help="the dataset's folder")
    parser.add_argument("--num-classes", type=int, help="classifier outputs (default: the model's or dataset's)")


def _add_grid_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--round-to", type=int, default=8, help="kept channel counts are multiples of this (8)")
    parser.add_argument("--lbound", type=float, default=0.2, help="smallest keep ratio a search uses (0.2, as AMC)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random pruned variants")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")


def _subcommand(sub: argparse._SubParsersAction, name: str, run: Callable, help_text: str) -> argparse.ArgumentParser:
    parser = sub.add_parser(name, help=help_text, description=help_text)
    parser.set_defaults(func=run)
    return parser


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "lut",
        help="build, calibrate, validate and inspect measured latency tables (LUTs) on this machine",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="lut_command", metavar="ACTION", required=True)

    build = _subcommand(sub, "build", run_build, "measure every layer variant a search over MODEL can visit")
    _add_network_arguments(build)
    _add_grid_arguments(build)
    build.add_argument("--backend", choices=BACKENDS, default="torch", help="what runs the layers (torch)")
    build.add_argument("--out", required=True, help="LUT file (JSON); an existing one is resumed")
    build.add_argument("--threads", type=int, default=1, help="CPU threads while measuring (1)")
    build.add_argument("--warmup", type=int, default=10, help="untimed calls before timing each layer (10)")
    build.add_argument("--repeats", type=int, default=30, help="timed calls per layer; the median is stored (30)")
    build.add_argument(
        "--calibrate",
        type=int,
        default=5,
        metavar="N",
        help="whole-network runs to fit the per-network overhead on (5; 0: none)",
    )
    build.add_argument("--save-every", type=float, default=30.0, metavar="SECONDS", help="save progress this often")

    calibrate = _subcommand(sub, "calibrate", run_calibrate, "fit the per-network overhead of MODEL on a LUT")
    calibrate.add_argument("--lut", required=True, help="LUT file")
    _add_network_arguments(calibrate)
    _add_grid_arguments(calibrate)
    calibrate.add_argument("--samples", type=int, default=5, help="whole-network runs (unpruned + random) (5)")

    validate = _subcommand(sub, "validate", run_validate, "compare LUT sums with end-to-end runs of pruned variants")
    validate.add_argument("--lut", required=True, help="LUT file")
    _add_network_arguments(validate)
    _add_grid_arguments(validate)
    validate.add_argument("--samples", type=int, default=50, help="random pruned variants to measure (50)")
    validate.add_argument(
        "--json",
        action="store_true",
        help="print one JSON object: mape, within_10pct, spearman, kendall, macs_spearman, n, ...",
    )
    validate.add_argument(
        "--allow-foreign-lut",
        action="store_true",
        help="use a LUT measured on another device (warns; missing entries cannot be measured)",
    )

    info = _subcommand(sub, "info", run_info, "print a LUT's fingerprint, settings, size and overheads")
    info.add_argument("--lut", required=True, help="LUT file")
    info.add_argument("--json", action="store_true", help="print one JSON object")

    roofline = _subcommand(
        sub,
        "calibrate-roofline",
        run_calibrate_roofline,
        "write a roofline profile of this CPU from GEMM / copy / dispatch micro-benchmarks",
    )
    roofline.add_argument("--out", default="configs/devices/local-cpu.yaml", help="profile to write")
    roofline.add_argument("--threads", type=int, default=1, help="CPU threads (1)")
    roofline.add_argument("--repeats", type=int, default=10, help="timed runs of each micro-benchmark (10)")
