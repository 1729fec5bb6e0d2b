"""`amc evaluate RUN_DIR | STRATEGY`: fine-tune the pruned network, test it, measure it, export it."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from amc.cli.common import add_config_arguments, check_checkpoint, config_from_args
from amc.cli.search_cmd import terminate_as_interrupt
from amc.config import MEASURED_TOLERANCE
from amc.deliver.sources import LatencySettings, schedule_source, stage_input

if TYPE_CHECKING:
    from torch import nn

    from amc.data import DataBundle
    from amc.deliver.evaluate import Int8Measure

BUDGET_MISSED = 3
"""Exit status of `amc evaluate --require-budget` when the deployed network misses the budget."""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "evaluate",
        help="fine-tune a search's strategy, report test accuracy, cost and measured latency, export it",
        description=(
            "Apply a strategy to the base checkpoint (channels really removed, element-wise masks kept while "
            "training), fine-tune it (finetune: section; SGD or AdamW, cosine schedule; checkpointed every epoch, "
            "running the same command again resumes), then report test top-1/top-5, MACs, params, cost by the cost "
            "model (energy where it prices it) and measured latency, dense beside pruned, in PyTorch and ONNX "
            "Runtime (and OpenVINO where installed) at batch 1 and a throughput batch. Writes OUT/model.pt "
            "(+ architecture.json), model.onnx, "
            "schedule.json, schedule.yaml (Distiller), evaluation.json and evaluation.md. When the run's cost model "
            "is a measured LUT, the exported model.onnx (the thinned module for a PyTorch LUT) is also timed on "
            "the LUT's runtime, threads and batch, beside the LUT's prediction, and one line says whether it "
            "meets the search's latency budget."
        ),
        epilog=(
            f"exit status: 0 done; 2 a user error; {BUDGET_MISSED} with --require-budget when the deployed network "
            "misses the budget (everything is written first: evaluation.json records the check, evaluation.md its "
            "line); 130 interrupted (run again to resume)."
        ),
    )
    parser.add_argument("source", type=Path, help="a run folder of `amc search`, or a strategy / schedule file")
    add_config_arguments(parser)
    parser.add_argument("--out", type=Path, help="output folder (default: RUN_DIR/evaluate)")
    parser.add_argument("--finetune-epochs", type=int, help="fine-tuning epochs (finetune.epochs); 0 to skip")
    parser.add_argument("--throughput-batch", type=int, default=LatencySettings.batch,
                        help=f"batch of the throughput measurement (default {LatencySettings.batch})")  # fmt: skip
    parser.add_argument("--latency-threads", type=int, default=LatencySettings.threads,
                        help=f"threads for the latency measurements (default {LatencySettings.threads})")  # fmt: skip
    parser.add_argument("--no-onnx", action="store_true", help="skip the ONNX export")
    parser.add_argument("--int8", action="store_true",
                        help="also quantize the dense and the pruned network to INT8 (ONNX Runtime QDQ, MinMax, "
                        "calibrated on training images; see `amc quantize`) and report INT8 top-1/top-5, file "
                        "size and ORT latency at batch 1 and the throughput batch, in OUT/int8")  # fmt: skip
    parser.add_argument("--calibration-images", type=float, default=512, metavar="N",
                        help="with --int8: training images that calibrate the INT8 ranges (default 512)")  # fmt: skip
    parser.add_argument("--require-budget", action="store_true",
                        help=f"exit with status {BUDGET_MISSED} when the deployed network misses the search's "
                        "budget: its measured latency by more than --budget-tolerance (a LUT budget), or its cost "
                        "by the cost model (any other budget); a CI gate")  # fmt: skip
    parser.add_argument("--budget-tolerance", type=float, default=100 * MEASURED_TOLERANCE, metavar="PCT",
                        help="per cent over the budget a measured latency may be and still meet it "
                        f"(default {100 * MEASURED_TOLERANCE:g})")  # fmt: skip
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    latency = LatencySettings(args.latency_threads, args.throughput_batch, tolerance=args.budget_tolerance / 100)
    run_dir, schedule_file = schedule_source(args.source)
    if args.config is None and run_dir is not None:
        args.config = str(run_dir / "config.yaml")
    config = config_from_args(args, {"finetune.epochs": args.finetune_epochs})
    check_checkpoint(config)
    out = args.out or (run_dir or schedule_file.parent) / "evaluate"
    terminate_as_interrupt()
    from amc.deliver.evaluate import evaluate_schedule, finetune_settings  # heavy: after the config is checked
    from amc.problem import build_task

    int8 = _int8_measure(args.calibration_images, latency, config.search.eval_images) if args.int8 else None
    task = build_task(config, progress=not args.no_progress)
    if run_dir is not None and (base := stage_input(run_dir)) is not None:  # a stage of a staged search
        from amc.pruning.export import load_thinned
        from amc.search.stages import task_on_network

        task = task_on_network(task, load_thinned(base))
    evaluation = evaluate_schedule(task, schedule_file, out, finetune_settings(task), latency,
                                   onnx=not args.no_onnx, progress=not args.no_progress, int8=int8)  # fmt: skip
    print(f"evaluation folder: {out}")
    check = evaluation.budget_check
    if args.require_budget and check is not None and not check.meets:
        print(f"amc: --require-budget: {check.line()}", file=sys.stderr)
        return BUDGET_MISSED
    return 0


def _int8_measure(images: float, latency: LatencySettings, val_images: int) -> Int8Measure:
    """`amc evaluate --int8`'s measurement: each network through `amc.quantize` (settings checked now, before
    the task is built)."""
    import copy

    from amc.deliver.evaluate import Int8Row
    from amc.quantize.calibration import check_calibration_images
    from amc.quantize.ptq import PtqSettings, TimingSettings, quantize_network

    settings = PtqSettings(check_calibration_images(images))
    timing = TimingSettings(latency.threads, latency.batch, latency.repeats)

    def measure(networks: Mapping[str, nn.Module], data: DataBundle, folder: Path) -> tuple[Int8Row, ...]:
        rows = []
        for name, model in networks.items():
            cpu = copy.deepcopy(model).cpu().eval()
            c = quantize_network(cpu, data.input_size, data, folder, settings, timing, val_images, stem=name)
            rows.append(Int8Row(
                name, c.fp32.test_top1, c.fp32.test_top5, c.int8.test_top1, c.int8.test_top5, c.fp32.size_bytes,
                c.int8.size_bytes, c.fp32.batch1_ms, c.int8.batch1_ms, c.fp32.batch_ms, c.int8.batch_ms,
                timing.batch, timing.threads,
            ))  # fmt: skip
        return tuple(rows)

    return measure
