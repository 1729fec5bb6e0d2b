"""`amc evaluate RUN_DIR | STRATEGY`: fine-tune the pruned network, test it, measure it, export it."""

from __future__ import annotations

import argparse
from pathlib import Path

from amc.cli.common import add_config_arguments, check_checkpoint, config_from_args
from amc.cli.search_cmd import terminate_as_interrupt
from amc.deliver.sources import LatencySettings, schedule_source


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "evaluate",
        help="fine-tune a search's strategy, report test accuracy, cost and measured latency, export it",
        description=(
            "Apply a strategy to the base checkpoint (channels really removed, element-wise masks kept while "
            "training), fine-tune it (finetune: section; SGD or AdamW, cosine schedule; checkpointed every epoch, "
            "running the same command again resumes), then report test top-1/top-5, MACs, params, cost by the cost "
            "model (energy where it prices it) and measured latency, dense beside pruned, in PyTorch and ONNX "
            "Runtime at batch 1 and a throughput batch. Writes OUT/model.pt (+ architecture.json), model.onnx, "
            "schedule.json, schedule.yaml (Distiller), evaluation.json and evaluation.md."
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
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    run_dir, schedule_file = schedule_source(args.source)
    if args.config is None and run_dir is not None:
        args.config = str(run_dir / "config.yaml")
    config = config_from_args(args, {"finetune.epochs": args.finetune_epochs})
    check_checkpoint(config)
    out = args.out or (run_dir or schedule_file.parent) / "evaluate"
    terminate_as_interrupt()
    from amc.deliver.evaluate import evaluate_schedule, finetune_settings  # heavy: after the config is checked
    from amc.problem import build_task

    task = build_task(config, progress=not args.no_progress)
    latency = LatencySettings(args.latency_threads, args.throughput_batch)
    evaluate_schedule(task, schedule_file, out, finetune_settings(task), latency, onnx=not args.no_onnx,
                      progress=not args.no_progress)  # fmt: skip
    print(f"evaluation folder: {out}")
    return 0
