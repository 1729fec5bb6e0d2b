"""`amc quantize MODEL_DIR | RUN_DIR | CHECKPOINT`: INT8 post-training quantization, measured beside float32."""

from __future__ import annotations

import argparse
import copy
import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from amc.cli.args import positive_int
from amc.cli.common import add_config_arguments, check_checkpoint, check_output_path, config_from_args
from amc.config import ExperimentConfig
from amc.deliver.sources import SCHEDULE_FILES, refuse_quantized, schedule_source
from amc.errors import UserError

if TYPE_CHECKING:
    from torch import nn

    from amc.data import DataBundle
    from amc.quantize.ptq import PtqSettings, TimingSettings

DEFAULT_IMAGES = 512


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "quantize",
        help="INT8 post-training quantization (ONNX Runtime QDQ): accuracy, size and latency beside float32",
        description=(
            "Export a network to ONNX, calibrate it on training images (never the test set nor search-val) and "
            "quantize it to INT8 in ONNX Runtime's QDQ format (weights signed symmetric; activations unsigned "
            "asymmetric unless --symmetric-activations). SOURCE is a model folder written by `amc prune` or "
            "`amc evaluate` (architecture.json or schedule.json + model.pt; RUN_DIR/evaluate is the fine-tuned "
            "network), a run folder of `amc search` (its best result applied to the base model, masks baked in, "
            "not fine-tuned), or a base checkpoint (.pt from `amc train`, with --model). Reports test top-1/top-5 "
            "in ONNX Runtime, file size and ORT latency at batch 1 and --throughput-batch (fp32 and INT8 timed "
            "interleaved). Writes OUT/model.onnx, OUT/model.int8.onnx, OUT/quantize.json and OUT/quantize.md."
        ),
    )
    parser.add_argument("source", type=Path, help="model folder, run folder, or .pt checkpoint")
    add_config_arguments(parser)
    parser.add_argument("--out", type=Path, help="output folder (default: SOURCE/quantize, or beside a .pt)")
    parser.add_argument("--calibration-images", type=float, default=DEFAULT_IMAGES, metavar="N",
                        help=f"training images that calibrate the ranges (default {DEFAULT_IMAGES})")  # fmt: skip
    parser.add_argument("--method", default="minmax", help="calibration: minmax (default), entropy or percentile")
    parser.add_argument("--per-channel", action="store_true", help="one weight scale per output channel")
    parser.add_argument("--symmetric-activations", action="store_true", help="signed symmetric activations")
    parser.add_argument("--fp32-layers", default="", metavar="NAME,...",
                        help="conv/linear layers (qualified names as `amc inspect` lists) kept in float32")  # fmt: skip
    parser.add_argument("--sensitivity", action="store_true",
                        help="per-layer INT8 sensitivity on search-val (all but one layer / only one layer "
                        "quantized; two quantizations per layer)")  # fmt: skip
    parser.add_argument("--auto-fp32", type=float, metavar="PT",
                        help="keep the most sensitive layers in float32 until INT8 search-val top-1 is at most PT "
                        "points below float32 (implies --sensitivity)")  # fmt: skip
    parser.add_argument("--throughput-batch", type=positive_int, default=64, help="throughput batch (default 64)")
    parser.add_argument("--latency-threads", type=positive_int, default=1, help="ORT threads for latency (1)")
    parser.add_argument("--repeats", type=positive_int, default=30, help="timed calls per latency figure (30)")
    parser.set_defaults(func=run)


@dataclass(frozen=True)
class _Source:
    kind: str
    """'run', 'model' or 'checkpoint'."""
    path: Path
    run_dir: Path | None = None


def run(args: argparse.Namespace) -> int:
    from amc.quantize.calibration import check_calibration_images
    from amc.quantize.ptq import PtqSettings, TimingSettings

    source = _resolve(args.source)
    settings = PtqSettings(
        check_calibration_images(args.calibration_images), args.method, args.per_channel, args.symmetric_activations,
        tuple(name.strip() for name in args.fp32_layers.split(",") if name.strip()),
    )  # fmt: skip
    _check_bound(args.auto_fp32)
    if args.config is None:
        args.config = _default_config(source)
    config = config_from_args(args)
    out = args.out or (source.path.parent / "quantize" if source.kind == "checkpoint" else source.path / "quantize")
    check_output_path(out)  # before anything is exported or calibrated
    timing = TimingSettings(args.latency_threads, args.throughput_batch, args.repeats)
    _quantize(source, config, out, settings, timing, args)
    return 0


def _check_bound(value: float | None) -> None:
    if value is not None and not 0 <= value <= 100:  # NaN fails the comparison too
        raise UserError(
            f"--auto-fp32 {value:g} is not a loss in top-1 points.", fix="use points in [0, 100], e.g. 0.5."
        )


def _resolve(path: Path) -> _Source:
    """What SOURCE is, refusing an INT8 result (quantizing twice) and anything amc did not write."""
    refuse_quantized(path, "amc quantize")
    if path.is_file():
        if path.suffix != ".pt":
            raise UserError(f"{path} is not a .pt checkpoint.", fix="pass a model folder, a run folder or a .pt.")
        return _Source("checkpoint", path)
    if not path.is_dir():
        raise UserError(f"{path} does not exist.", fix="pass a model folder, a run folder or a .pt checkpoint.")
    if (path / "config.yaml").is_file() and any((path / name).is_file() for name in SCHEDULE_FILES):
        return _Source("run", path, path)
    if (path / "architecture.json").is_file() or (path / "schedule.json").is_file():
        if not (path / "model.pt").is_file():
            raise UserError(f"{path} has no model.pt.", fix="pass a folder written by `amc prune` / `amc evaluate`.")
        parent = path.parent if (path.parent / "config.yaml").is_file() else None
        return _Source("model", path, parent)
    raise UserError(
        f"{path} is neither a model folder (architecture.json or schedule.json + model.pt) nor a run folder "
        f"(config.yaml + {' or '.join(SCHEDULE_FILES)}).",
        fix="pass what `amc prune`, `amc evaluate` or `amc search` wrote, or a .pt checkpoint.",
    )


def _default_config(source: _Source) -> str | None:
    return str(source.run_dir / "config.yaml") if source.run_dir else None


def _quantize(
    source: _Source,
    config: ExperimentConfig,
    out: Path,
    settings: PtqSettings,
    timing: TimingSettings,
    args: argparse.Namespace,
) -> None:
    import onnx
    import torch

    from amc.io import atomic_write_json, atomic_write_text
    from amc.quantize.calibration import calibration_batches
    from amc.quantize.ptq import QUANTIZE_FILE, QuantizeReport, layer_names, layer_nodes, quantize_network
    from amc.quantize.sensitivity import auto_fp32, layer_sensitivity, sensitivity_table

    torch.set_num_threads(config.experiment.threads)
    model, input_size, data = _network(source, config, not args.no_progress)
    val_images = config.search.eval_images
    comparison = quantize_network(model, input_size, data, out, settings, timing, val_images)
    report = QuantizeReport(_model_name(source, config), str(source.path), data.name, settings, comparison)
    if args.sensitivity or args.auto_fp32 is not None:
        float_path = Path(comparison.float_path)
        nodes = layer_nodes(onnx.load(str(float_path)), layer_names(model))
        batches = calibration_batches(data.train, settings.calibration_images, seed=settings.seed)
        sensitivity = layer_sensitivity(float_path, nodes, batches, settings, data.search_val, val_images,
                                        comparison.fp32_nodes)  # fmt: skip
        print(sensitivity_table(sensitivity))
        report = replace(report, sensitivity=sensitivity.to_dict())
        if args.auto_fp32 is not None:
            chosen = auto_fp32(float_path, nodes, sensitivity, batches, settings, data.search_val, args.auto_fp32,
                               val_images)  # fmt: skip
            final = replace(settings, fp32_layers=chosen.fp32_layers)
            comparison = quantize_network(model, input_size, data, out, final, timing, val_images)
            report = replace(report, settings=final, comparison=comparison, auto_fp32=chosen.to_dict())
            state = "met" if chosen.met else "NOT met (every layer tried)"
            print(f"--auto-fp32 {args.auto_fp32:g} pt: {state} with {len(chosen.fp32_layers)} layer(s) in float32: "
                  f"{', '.join(chosen.fp32_layers) or 'none'}")  # fmt: skip
    atomic_write_json(out / QUANTIZE_FILE, report.to_dict())
    atomic_write_text(out / "quantize.md", report.table() + "\n")
    print(report.table())
    print(f"wrote {comparison.float_path}, {comparison.int8_path}, {out / QUANTIZE_FILE}, {out / 'quantize.md'}")


def _network(
    source: _Source, config: ExperimentConfig, progress: bool
) -> tuple[nn.Module, tuple[int, int, int], DataBundle]:
    """The float network SOURCE names (masks baked in, on the CPU), its input size and the configured data."""
    if source.kind == "run":
        from amc.deliver.apply import apply
        from amc.problem import build_task
        from amc.pruning import remove_masks_

        check_checkpoint(config)
        task = build_task(config, progress=progress)
        assert task.data is not None  # build_task always loads the configured data
        _, schedule_file = schedule_source(source.path)
        return remove_masks_(copy.deepcopy(apply(task, schedule_file))).cpu().eval(), task.input_size, task.data
    from amc.deliver.export import load_pruned, load_thinned_module
    from amc.training.base_model import build_model, load_data
    from amc.training.checkpoints import load_weights

    data = load_data(config)
    if source.kind == "checkpoint":
        model = build_model(config, data)
        load_weights(model, source.path)
    elif (source.path / "architecture.json").is_file() or (source.path / "thinned.json").is_file():
        _check_input_size(source.path, data.input_size, data.name)
        model = load_thinned_module(source.path)  # either format, as modules (per-layer quantization needs them)
    else:
        model = load_pruned(build_model(config, data), source.path, data.input_size)
    return model.cpu().eval(), data.input_size, data


def _model_name(source: _Source, config: ExperimentConfig) -> str:
    """The zoo name a model folder records (architecture.json or thinned.json), else the configured one."""
    for name in ("architecture.json", "thinned.json"):
        if source.kind == "model" and (source.path / name).is_file():
            return str(json.loads((source.path / name).read_text()).get("model") or config.model.name)
    return config.model.name


def _check_input_size(folder: Path, size: tuple[int, int, int], dataset: str) -> None:
    recorded_in = folder / "architecture.json"
    recorded_in = recorded_in if recorded_in.is_file() else folder / "thinned.json"
    recorded = json.loads(recorded_in.read_text()).get("input_size")
    if recorded is not None and tuple(recorded) != tuple(size):
        raise UserError(
            f"{folder} holds a network for inputs {tuple(recorded)}, but {dataset} gives {tuple(size)}.",
            fix="pass the --dataset (and --config) the network was trained on.",
        )
