"""`amc prune MODEL (--strategy FILE | --keep R) --out DIR`: a physically thinner network, saved and exported."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from amc.cli.args import input_size, positive_int
from amc.cli.common import check_output_path, require_text_file
from amc.config import DataSection
from amc.deliver.deployed import time_pair
from amc.deliver.export import export
from amc.deliver.sources import refuse_quantized
from amc.errors import UserError
from amc.graph import LayerTable, build_layer_table
from amc.models import create_model, model_info
from amc.optional import installed, missing
from amc.pruning import Strategy, StrategyMetadata, prune_network
from amc.pruning.calibration import Batches
from amc.pruning.export import check_saveable
from amc.pruning.selection import SELECTORS
from amc.schedule import Schedule, load_schedule
from amc.training.checkpoints import check_state_dict, load_checkpoint
from hwmodel.lut.backends import TorchBackend
from hwmodel.lut.fingerprint import BACKENDS


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "prune",
        help="apply a strategy: write the thinned model, its ONNX export and schedule; compare speed",
        description=(
            "Remove channels for real: coupled layers (residual adds, depthwise convs, concatenations) keep one "
            "shared set of channels, BatchNorms and following layers are sliced to match. Writes the folder "
            "layout amc evaluate and amc.export write: DIR/model.pt, DIR/architecture.json or, for networks it "
            "cannot describe, DIR/model.pt2 (torch.export; DIR/thinned.json says which and why; reload either with "
            "amc.pruning.load_thinned, or amc.load_pruned on the base model), DIR/schedule.json, DIR/schedule.yaml "
            "(Distiller) and DIR/model.onnx (checked against ONNX Runtime), and prints MACs, params and batch-1 "
            "CPU latency before and after, in PyTorch and on --latency-backend (the written model.onnx itself for "
            "ONNX Runtime and OpenVINO)."
        ),
    )
    parser.add_argument("model", help="model name (resnet20, torchvision:resnet50, ...); see `amc list models`")
    how = parser.add_mutually_exclusive_group(required=True)
    how.add_argument("--strategy", type=Path, help="strategy JSON, amc schedule JSON or Distiller schedule YAML")
    how.add_argument("--keep", type=float, help="uniform keep ratio for every prunable group, e.g. 0.5")
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    parser.add_argument("--checkpoint", type=Path, help="weights (.pt from `amc train`, or a state dict)")
    parser.add_argument(
        "--selection",
        default="l1",
        choices=sorted(SELECTORS),
        help="channel ranking: l1 / l2 filter norm, or lstsq (L1 + least-squares refit of the next "
        "layers on calibration images; needs --dataset). Default l1",
    )
    parser.add_argument("--dataset", help="calibration data for lstsq and --adaptive-bn (training split)")
    parser.add_argument("--data-root", help="dataset folder")
    parser.add_argument(
        "--search-val-size",
        type=int,
        default=DataSection.search_val_size,
        help="training images held out as search-val, never used for calibration (default as in experiments)",
    )
    parser.add_argument(
        "--adaptive-bn",
        type=int,
        default=0,
        metavar="N",
        help="re-estimate BatchNorm statistics on N training images after thinning (needs --dataset)",
    )
    parser.add_argument("--round-to", type=int, default=8, help="with --keep: channel counts multiple of this (8)")
    parser.add_argument("--input-size", type=input_size, help="C,H,W (default: the checkpoint's, else the model's)")
    parser.add_argument("--num-classes", type=positive_int, help="classifier outputs (default: the checkpoint's)")
    parser.add_argument("--threads", type=positive_int, default=1, help="torch CPU threads for latency (default 1)")
    parser.add_argument("--repeats", type=positive_int, default=30, help="timed forward passes per latency figure")
    parser.add_argument(
        "--latency-backend",
        default="onnxruntime",
        choices=BACKENDS,
        help="runtime of the second latency row, as a LUT names it (default onnxruntime; openvino needs its extra)",
    )
    parser.add_argument("--no-onnx", action="store_true", help="skip the ONNX export")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    check_output_path(args.out)
    if args.latency_backend == "openvino" and not installed("openvino"):
        raise missing("openvino", "--latency-backend openvino")
    require_text_file(args.strategy, "strategy", "pass a strategy JSON, an amc schedule JSON or a Distiller YAML.")
    torch.set_num_threads(args.threads)
    model, size, meta = _load_model(args)
    table = build_layer_table(model, size, args.model)
    schedule = _schedule(args, table, meta)
    strategy = schedule.strategy or Strategy.uniform(table, 1.0)
    source = _calibration_source(args)
    check_saveable(model, args.model, size)  # a network no format can hold fails here, before the pruning work
    densities = schedule.densities.densities if schedule.densities else None
    result = prune_network(
        model, table, strategy.kept_channels(table), densities, selection=args.selection,
        calibration=source() if source and args.selection.startswith("lstsq") else None,
        bn_images=source() if source and args.adaptive_bn else None, bn_count=args.adaptive_bn,
        pattern=schedule.densities.pattern if schedule.densities else None,
    )  # fmt: skip
    thinned = result.model
    if result.reconstruction and result.reconstruction.layers:
        report = result.reconstruction
        print(
            f"least-squares refit of {len(report.layers)} layers on {report.images} images: "
            f"{report.seconds:.1f} s ({report.seconds_per_layer:.3f} s per layer, "
            f"{report.fit_seconds_per_layer:.3f} s of it sampling and solving)"
        )
    if result.masked_layers:
        print(
            f"element-wise masks applied to {result.masked_layers} layers (zeros kept in the weights; no speed-up "
            "on CPU)"
        )
    if args.adaptive_bn:
        print(f"BatchNorm statistics re-estimated on {args.adaptive_bn} training images")
    files = export(
        thinned, args.out, Schedule(strategy, schedule.densities), size, args.model, onnx=not args.no_onnx,
        extra={"checkpoint": str(args.checkpoint or "")},
    )  # fmt: skip
    written = [files.weights, files.architecture, files.program, files.schedule_json, files.schedule_yaml]
    print("wrote " + ", ".join(str(path) for path in written if path is not None))
    if files.onnx is not None:
        print(f"wrote {files.onnx} (ONNX checker ok; ONNX Runtime vs PyTorch max |diff| {files.onnx_max_abs_diff:.1e})")
    print(_comparison(model, thinned, table, size, args.repeats, args.latency_backend, files.onnx))
    return 0


def _load_model(args: argparse.Namespace) -> tuple[nn.Module, tuple[int, int, int], dict]:
    if args.checkpoint:
        refuse_quantized(args.checkpoint, "amc prune")
    state, meta = load_checkpoint(args.checkpoint) if args.checkpoint else ({}, {})
    if args.checkpoint:
        check_state_dict(state, args.checkpoint)
    size = args.input_size or tuple(meta.get("input_size") or model_info(args.model).input_size)
    num_classes = args.num_classes or meta.get("num_classes")
    model = create_model(args.model, in_channels=size[0], num_classes=num_classes)
    if state:
        state = {key.removeprefix("module."): value for key, value in state.items()}
        try:
            model.load_state_dict(state)
        except RuntimeError as error:
            raise UserError(
                f"checkpoint {args.checkpoint} does not fit {args.model}: {str(error).splitlines()[-1].strip()}",
                fix="pass the model name, --input-size and --num-classes it was trained with.",
            ) from None
    return model.eval(), size, meta  # type: ignore[return-value]


def _schedule(args: argparse.Namespace, table: LayerTable, meta: dict) -> Schedule:
    if args.strategy:
        return load_schedule(args.strategy, table)
    if not 0.0 < args.keep <= 1.0:
        raise UserError(f"--keep {args.keep} is not a keep ratio.", fix="use a value in (0, 1], e.g. 0.5.")
    info = StrategyMetadata(
        model=args.model,
        dataset=meta.get("dataset", args.dataset or ""),
        input_size=table.input_size,
        selection=args.selection,
        notes=f"uniform keep {args.keep}",
    )
    return Schedule(Strategy.uniform(table, args.keep, args.round_to, info))


def _calibration_source(args: argparse.Namespace) -> Callable[[], Batches] | None:
    """Fresh shuffled batches of the training split (never search-val), when lstsq or adaptive BN needs them."""
    if not (args.selection.startswith("lstsq") or args.adaptive_bn):
        return None
    if not args.dataset:
        raise UserError(
            "--selection lstsq and --adaptive-bn need calibration images.",
            fix="add --dataset NAME (its training split is used), e.g. --dataset fashion-mnist.",
        )
    from amc.data import iterate_batches, load_dataset

    bundle = load_dataset(args.dataset, args.data_root, args.search_val_size)
    return lambda: iterate_batches(bundle.train, 64, shuffle=True, seed=0)


def _comparison(
    model: nn.Module,
    thinned: nn.Module,
    table: LayerTable,
    size: tuple[int, int, int],
    repeats: int,
    runtime: str = "torch",
    onnx_file: Path | None = None,
) -> str:
    """MACs, params and batch-1 latency before and after: in PyTorch, and on `runtime` when it is another one (the
    ONNX file written, for a runtime that reads ONNX), each pair timed interleaved."""
    after = build_layer_table(thinned, size, table.model_name)
    threads = torch.get_num_threads()
    backend = TorchBackend(threads, warmup=5, repeats=repeats)
    before_ms, after_ms = (m.median_ms for m in backend.measure_networks([model, thinned], (1, *size)))
    rows = [
        ("MACs", f"{table.total_macs:,}", f"{after.total_macs:,}", table.total_macs / after.total_macs),
        ("params", f"{table.total_params:,}", f"{after.total_params:,}", table.total_params / after.total_params),
        (
            f"latency ms (torch, batch 1, {threads} thr)",
            f"{before_ms:.2f}",
            f"{after_ms:.2f}",
            before_ms / after_ms,
        ),
    ]
    if runtime != "torch":
        before, after_runtime, _ = time_pair(runtime, threads, model, thinned, (1, *size), onnx_file, 5, repeats)
        label = f"latency ms ({runtime}, batch 1, {threads} thr)"
        rows.append((label, f"{before:.2f}", f"{after_runtime:.2f}", before / after_runtime))
    lines = [f"{'':42} {'before':>16} {'after':>16} {'ratio':>7}"]
    lines += [f"{name:42} {b:>16} {a:>16} {r:>6.2f}x" for name, b, a, r in rows]
    return "\n".join(lines)
