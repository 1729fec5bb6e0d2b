"""`amc lut build|calibrate|validate|info|calibrate-roofline|export-units|import`: measured latency tables.

build: measure every layer variant a search can visit (channel counts that are multiples of --round-to, down to
the --lbound keep-ratio floor) and fit the per-network scale and offset; resumable, saved as it goes.
calibrate: (re)fit scale and offset on a few whole-network runs. validate: compare LUT predictions with end-to-end
measurements of random pruned variants and of variants in each budget band (30-60% of dense): MAPE, share within
±10%, Spearman/Kendall, and the same for MACs.
calibrate-roofline: write a roofline profile of this CPU from GEMM / copy / dispatch micro-benchmarks.
export-units: for a device amc cannot run on, write a bundle (every layer unit as ONNX, calibration and validation
networks, a manifest and amc_lut_runner.py, which needs only Python, numpy and onnxruntime or openvino there).
import: turn the bundle's results.json into a LUT (scale and offset fitted, fidelity printed).
--precision int8 (build; onnxruntime or openvino): layer units and whole networks timed as ONNX Runtime QDQ INT8
graphs; calibrate and validate then time the networks as INT8 too (and refuse a LUT of the other precision).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

from amc.cli.args import input_size, positive_int
from amc.cli.common import check_output_path
from amc.costs.latency_tables import Grid, Network, build_lut, calibrate_overhead, load_network, validate_lut
from amc.errors import UserError
from hwmodel.lut import BACKENDS, LatencyTable, LutCostModel, NetworkOverhead
from hwmodel.lut.fingerprint import CUDA_BACKEND, PRECISIONS, check_precision, require_cuda
from hwmodel.lut.model import require_precision
from hwmodel.lut.timing import contention_note


def run_build(args: argparse.Namespace) -> int:
    check_output_path(Path(args.out), kind="file")
    check_precision(args.backend, args.precision)  # before the model is built
    if args.backend == CUDA_BACKEND:
        require_cuda()
    network = _network(args, args.batch or 1)
    grid = Grid(args.round_to, args.lbound)
    start = time.monotonic()
    lut = build_lut(
        network, Path(args.out), args.backend, args.threads, grid, args.warmup, args.repeats, calibrate=0,
        progress=not args.no_progress, save_every_s=args.save_every, rounds=args.rounds,
        cudnn_benchmark=args.cudnn_benchmark == "on", precision=args.precision,
    )  # fmt: skip
    print(f"{args.out} holds {len(lut.table.entries)} entries ({time.monotonic() - start:.1f} s)")
    if args.calibrate:
        overhead = calibrate_overhead(lut, network, args.calibrate, grid, args.seed, not args.no_progress, args.rounds)
        print(_overhead_line(overhead))
    return 0


def run_calibrate(args: argparse.Namespace) -> int:
    lut = LutCostModel.open(args.lut)
    _check_lut_precision(args, lut.table)
    network = _network(args, _lut_batch(args, lut.table))
    overhead = calibrate_overhead(
        lut, network, args.samples, Grid(args.round_to, args.lbound), args.seed, not args.no_progress, args.rounds
    )
    print(_overhead_line(overhead))
    return 0


def run_validate(args: argparse.Namespace) -> int:
    lut = LutCostModel.open(args.lut, allow_foreign=args.allow_foreign_lut)
    _check_lut_precision(args, lut.table)
    network = _network(args, _lut_batch(args, lut.table))
    grid = Grid(args.round_to, args.lbound)
    found = validate_lut(
        lut, network, args.samples, grid, args.seed, not args.no_progress, args.rounds, args.calibrate,
        args.band_samples,
    )  # fmt: skip
    if args.json:
        print(json.dumps(found.to_dict()))
        return 0
    report = found.report
    print(
        f"LUT {args.lut} ({lut.table.runtime}, {lut.table.settings['threads']} thread(s), batch {network.batch}) vs "
        f"{report.n} random pruned variants of {network.name}, each measured end to end"
    )
    where = "fitted alongside" if found.fitted_alongside else "stored in the LUT"
    print(f"  per-network fit       {_overhead_line(found.fit) if found.fit else 'none calibrated'} ({where})")
    print(f"  MAPE                  {report.mape:.2f} %")
    print(f"  within ±10%           {report.within_10pct * 100:.1f} %")
    print(f"  Spearman              {report.spearman:.3f}   (MACs proxy {report.macs_spearman:.3f})")
    print(f"  Kendall               {report.kendall:.3f}   (MACs proxy {report.macs_kendall:.3f})")
    if found.stored:
        stored = found.stored
        print(
            f"  with the stored fit   MAPE {stored.mape:.2f} %, within ±10% {stored.within_10pct * 100:.1f} % (the "
            "machine's speed when the LUT was calibrated vs now)"
        )
    for band in found.bands:
        figures = band.report
        print(
            f"  budget band {band.label:<8} {figures.n} variants: MAPE {figures.mape:.2f} %, within ±10% "
            f"{figures.within_10pct * 100:.1f} %, Spearman {figures.spearman:.3f} (MACs {figures.macs_spearman:.3f})"
        )
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

    check_output_path(Path(args.out), kind="file")
    profile = roofline_profile(calibrate_cpu(args.threads, args.repeats))
    write_profile(profile, Path(args.out))
    for field in ("peak_gflops", "bandwidth_gbs", "layer_overhead_us"):
        print(f"{field:<18} {profile[field]['value']}")  # type: ignore[index]
    print(f"wrote {args.out} (use it as roofline:{Path(args.out).stem})")
    return 0


def _overhead_line(overhead: NetworkOverhead) -> str:
    return (
        f"{overhead.model}: latency = {overhead.scale:.3f} x layer sum {overhead.offset_ms:+.3f} ms, fitted on "
        f"{overhead.samples} whole-network runs (MAPE on them {overhead.mape_before:.1f}% -> "
        f"{overhead.mape_after:.1f}%)"
    )


def _check_lut_precision(args: argparse.Namespace, table: LatencyTable) -> None:
    """A --precision that differs from the LUT's is refused (its networks would be timed at another precision)."""
    if args.precision is not None:
        require_precision(table, args.lut, args.precision)


def _lut_batch(args: argparse.Namespace, table: LatencyTable) -> int:
    """The batch to measure the network at: the LUT's (a --batch that differs is refused: no entry would match)."""
    if args.batch is not None and args.batch != table.batch:
        raise UserError(
            f"--batch {args.batch}: LUT {args.lut} was measured at batch {table.batch}, so none of its entries "
            f"prices a batch of {args.batch}.",
            fix=f"leave --batch out (or pass --batch {table.batch}), or build a LUT at batch {args.batch}.",
        )
    return table.batch


def _network(args: argparse.Namespace, batch: int) -> Network:
    note = contention_note(getattr(args, "threads", 1))
    if note:
        print(note, file=sys.stderr)
    return load_network(args.model, args.input_size, args.num_classes, args.dataset, args.data_root, batch)


def _add_network_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, help="model name (see `amc list models`)")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--dataset", help="take the input size and class count from this dataset")
    source.add_argument("--input-size", type=input_size, help="input as C,H,W (default: the model's own)")
    parser.add_argument("--data-root", help="the dataset's folder")
    parser.add_argument(
        "--num-classes", type=positive_int, help="classifier outputs (default: the model's or dataset's)"
    )
    parser.add_argument(
        "--batch",
        type=positive_int,
        help="inputs per call that layers and networks are measured at (build: 1; calibrate, validate: the LUT's); "
        "a GPU's latency is a staircase in the batch, so a LUT prices one batch",
    )


def _add_grid_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--round-to", type=int, default=8, help="kept channel counts are multiples of this (8)")
    parser.add_argument("--lbound", type=float, default=0.2, help="smallest keep ratio a search uses (0.2, as AMC)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random pruned variants")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    parser.add_argument(
        "--rounds",
        type=int,
        default=3,
        help="round-robin passes the repeats are split into, so a slow spell of a shared machine spreads over "
        "every unit timed instead of skewing a few (3; 1: one unit after another)",
    )


def _add_precision_check(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--precision",
        choices=PRECISIONS,
        help="the precision the LUT must have (default: the LUT's own); networks are timed at the LUT's precision",
    )


def _subcommand(sub: argparse._SubParsersAction, name: str, run: Callable, help_text: str) -> argparse.ArgumentParser:
    parser = sub.add_parser(name, help=help_text, description=help_text)
    parser.set_defaults(func=run)
    return parser


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "lut",
        help="build, calibrate, validate and inspect measured latency tables (LUTs), here or via a unit bundle",
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
        help="whole-network runs to fit the per-network scale and offset on (5; 0: none)",
    )
    build.add_argument("--save-every", type=float, default=30.0, metavar="SECONDS", help="save progress this often")
    build.add_argument(
        "--cudnn-benchmark",
        choices=("on", "off"),
        default="on",
        help="torch-cuda only: let cuDNN time its convolution algorithms per shape and keep the fastest, as a "
        "deployment with torch.backends.cudnn.benchmark does (on; recorded in the LUT)",
    )
    build.add_argument(
        "--precision",
        choices=PRECISIONS,
        default="fp32",
        help="what the layers are timed as: fp32, or int8 (QDQ INT8 graphs, onnxruntime or openvino; recorded in "
        "the LUT, whose entries are keyed dtype int8) (fp32)",
    )

    calibrate = _subcommand(sub, "calibrate", run_calibrate, "fit the per-network scale and offset of MODEL on a LUT")
    calibrate.add_argument("--lut", required=True, help="LUT file")
    _add_network_arguments(calibrate)
    _add_grid_arguments(calibrate)
    calibrate.add_argument("--samples", type=int, default=5, help="whole-network runs (unpruned + random) (5)")
    _add_precision_check(calibrate)

    validate = _subcommand(sub, "validate", run_validate, "compare LUT sums with end-to-end runs of pruned variants")
    validate.add_argument("--lut", required=True, help="LUT file")
    _add_network_arguments(validate)
    _add_grid_arguments(validate)
    validate.add_argument("--samples", type=int, default=50, help="random pruned variants to measure (50)")
    validate.add_argument(
        "--band-samples",
        type=int,
        default=10,
        metavar="N",
        help="variants drawn in each budget band (30-40%%, 40-50%%, 50-60%% of the dense latency by the LUT), "
        "reported per band: searches land at this thin end (10; 0: random variants only)",
    )
    validate.add_argument(
        "--json",
        action="store_true",
        help="print one JSON object: mape, within_10pct, spearman, kendall, macs_spearman, n, ...",
    )
    validate.add_argument(
        "--calibrate",
        type=int,
        default=5,
        metavar="N",
        help="fit scale and offset on N whole-network runs timed alongside the variants (5), so a drift of the "
        "machine's speed since the LUT was calibrated is not counted as its error (the stored fit is scored "
        "too); 0: judge the LUT's stored fit",
    )
    _add_precision_check(validate)
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
    register_bundle_commands(sub)


def run_export_units(args: argparse.Namespace) -> int:
    from amc.costs.unit_bundle import RUNNER_NAME, TimingSettings, export_bundle, resolve_network

    out = Path(args.out)
    check_output_path(out)
    timing = TimingSettings(args.threads, args.warmup, args.repeats, args.rounds)
    grid = Grid(args.round_to, args.lbound)
    network, num_classes = resolve_network(args.model, args.input_size, args.num_classes, args.dataset, args.data_root)
    start = time.monotonic()
    summary = export_bundle(
        network, num_classes, out, grid, args.runtime, timing, args.calibrate, args.validate, args.seed,
        progress=not args.no_progress, force=args.force,
    )  # fmt: skip
    print(
        f"wrote {out}: {summary.units} layer units, {summary.round_trips} NCHWc round trips, {summary.networks} "
        f"networks, {summary.files} files, {summary.bytes / 1e6:.1f} MB ({time.monotonic() - start:.1f} s)"
    )
    print(
        f"copy the folder to the device and run `python {RUNNER_NAME}` inside it (needs numpy and "
        f"{args.runtime} only); then `amc lut import {out / 'results.json'} --out lut.json`"
    )
    return 0


def run_import(args: argparse.Namespace) -> int:
    from amc.costs.unit_bundle import import_results
    from amc.errors import UserError

    out = Path(args.out)
    check_output_path(out, kind="file")
    if out.exists() and not args.force:
        raise UserError(f"--out {out} exists.", fix="pass --force to replace it, or another --out.")
    imported = import_results(Path(args.results), Path(args.bundle) if args.bundle else None)
    imported.table.save(out)
    table = imported.table
    print(
        f"wrote {out}: {len(table.entries)} entries measured with {table.backend} on {table.fingerprint['cpu_model']}"
        f" ({table.settings['threads']} thread(s)); use it as cost.model: lut:{out} with cost.allow_foreign_lut: true"
    )
    print("  " + _overhead_line(imported.overhead))
    print(
        f"  covers searches with search.round_to {imported.grid.round_to} and search.lbound {imported.grid.lbound} "
        "(other values visit layer variants this LUT lacks, and a foreign LUT cannot measure them here)"
    )
    report = imported.report
    if report is None:
        print("  no validation networks in the bundle: fidelity not measured")
        return 0
    print(f"  validation on {report.n} random pruned variants of {imported.network}, each timed end to end:")
    print(f"  MAPE                  {report.mape:.2f} %")
    print(f"  within ±10%           {report.within_10pct * 100:.1f} %")
    print(f"  Spearman              {report.spearman:.3f}   (MACs proxy {report.macs_spearman:.3f})")
    print(f"  Kendall               {report.kendall:.3f}   (MACs proxy {report.macs_kendall:.3f})")
    return 0


def register_bundle_commands(sub: argparse._SubParsersAction) -> None:
    """`amc lut export-units` and `amc lut import`: LUTs for devices amc does not run on."""
    export = _subcommand(
        sub,
        "export-units",
        run_export_units,
        "write a unit bundle (ONNX layer units, calibration/validation networks and a standalone runner) to time "
        "a LUT on a device amc cannot run on",
    )
    _add_network_arguments(export)
    _add_grid_arguments(export)
    export.add_argument("--out", required=True, help="bundle folder to write")
    export.add_argument(
        "--runtime", choices=("onnxruntime", "openvino"), default="onnxruntime", help="what times it (onnxruntime)"
    )
    export.add_argument("--threads", type=int, default=1, help="CPU threads the runner times with (1)")
    export.add_argument("--warmup", type=int, default=10, help="untimed calls before timing each unit (10)")
    export.add_argument("--repeats", type=int, default=30, help="timed calls per unit and network (30)")
    export.add_argument("--calibrate", type=int, default=5, metavar="N", help="networks to fit scale and offset on (5)")
    export.add_argument("--validate", type=int, default=50, metavar="N", help="random variants to judge it on (50)")
    export.add_argument("--force", action="store_true", help="replace a bundle already in --out")

    imports = _subcommand(
        sub, "import", run_import, "turn a unit bundle's results.json (timed on the device) into a LUT"
    )
    imports.add_argument("results", help="results.json written by amc_lut_runner.py")
    imports.add_argument(
        "--bundle", help="the bundle folder it was timed from (default: the folder results.json is in)"
    )
    imports.add_argument("--out", required=True, help="LUT file (JSON) to write")
    imports.add_argument("--force", action="store_true", help="replace --out if it exists")
