"""`amc schedule inspect|convert`: read Distiller YAML / amc JSON schedules against a model."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from amc.cli.args import input_size
from amc.graph import LayerTable, build_layer_table
from amc.models import create_model, model_info
from amc.schedule import ScheduleSummary, load_schedule, save_schedule, summarize


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "schedule",
        help="inspect or convert pruning schedules (Distiller YAML, amc JSON)",
        description=(
            "Schedules are Distiller YAML (structured L1RankedStructureParameterPruner & co. with group_type "
            "Filters/Channels/Rows, element-wise AutomatedGradualPruner / SparsityLevelParameterPruner) or amc "
            "JSON (strategy, densities or both). Parameter names may carry Distiller's 'module.' prefix."
        ),
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    inspect = actions.add_parser(
        "inspect",
        help="per-layer sparsity and dense / ideal MACs and params of a model under a schedule",
        description=(
            "Dense figures: the network with the schedule's channels removed. Ideal figures: each layer's MACs and "
            "weights further times its element-wise weight density (what a zero-skipping accelerator computes). "
            "Params count every parameter (BatchNorm too), as `amc inspect` does."
        ),
    )
    inspect.add_argument("file", type=Path, help="schedule: .yaml/.yml (Distiller) or .json (amc)")
    _model_arguments(inspect)
    inspect.add_argument(
        "--json",
        action="store_true",
        help="one JSON object: dense_macs, ideal_macs, dense_params, ideal_params, layers",
    )
    inspect.set_defaults(func=run_inspect)
    convert = actions.add_parser("convert", help="rewrite a schedule in another format (by the output's suffix)")
    convert.add_argument("file", type=Path, help="input schedule")
    convert.add_argument("out", type=Path, help="output: .yaml/.yml (Distiller) or .json (amc)")
    _model_arguments(convert)
    convert.add_argument("--no-module-prefix", action="store_true", help="YAML parameter names without 'module.'")
    convert.set_defaults(func=run_convert)


def _model_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, help="model the schedule is for (resnet20, torchvision:resnet50)")
    parser.add_argument("--input-size", type=input_size, help="C,H,W (default: the model's own)")
    parser.add_argument("--num-classes", type=int, help="classifier outputs (default: the model's own)")


def _table(args: argparse.Namespace) -> tuple[LayerTable, object]:
    size = args.input_size or model_info(args.model).input_size
    model = create_model(args.model, in_channels=size[0], num_classes=args.num_classes)
    return build_layer_table(model, size, args.model), model


def run_inspect(args: argparse.Namespace) -> int:
    table, model = _table(args)
    summary = summarize(load_schedule(args.file, table), table, model)  # type: ignore[arg-type]
    print(json.dumps(summary.to_dict()) if args.json else format_summary(summary))
    return 0


def run_convert(args: argparse.Namespace) -> int:
    table, _ = _table(args)
    save_schedule(load_schedule(args.file, table), args.out, prefix="" if args.no_module_prefix else "module.")
    print(f"wrote {args.out}")
    return 0


def format_summary(summary: ScheduleSummary) -> str:
    header = (
        f"{'layer':<36} {'op':<6} {'in':>5} {'out':>5} {'ch.sp':>6} {'w.sp':>6} {'dense MACs':>14} "
        f"{'ideal MACs':>14} {'dense par':>10} {'ideal par':>10}"
    )
    lines = [f"{summary.model} under the schedule", header, "-" * len(header)]
    for layer in summary.layers:
        lines.append(
            f"{layer.name:<36.36} {layer.op:<6} {layer.in_channels:>5} {layer.out_channels:>5} "
            f"{layer.channel_sparsity:>6.1%} {layer.weight_sparsity:>6.1%} {layer.dense_macs:>14,} "
            f"{layer.ideal_macs:>14,.0f} {layer.dense_params:>10,} {layer.ideal_params:>10,.0f}"
        )
    lines += [
        "",
        f"MACs   original {summary.original_macs:,}  dense {summary.dense_macs:,}  ideal {summary.ideal_macs:,.0f} "
        f"({summary.ideal_macs / summary.original_macs:.1%} of original)",
        f"params original {summary.original_params:,}  dense {summary.dense_params:,}  ideal "
        f"{summary.ideal_params:,.0f} ({summary.ideal_params / summary.original_params:.1%} of original)",
    ]
    return "\n".join(lines)
