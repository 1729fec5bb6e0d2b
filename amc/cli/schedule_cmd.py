"""`amc schedule inspect|convert`: read Distiller YAML / amc JSON schedules against a model."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

from amc.cli.args import input_size, positive_int
from amc.cli.common import require_text_file
from amc.graph import LayerTable, build_layer_table
from amc.models import create_model, model_info
from amc.quantize.bits import LayerBits
from amc.schedule import ScheduleSummary, StepSummary, load_schedule, save_schedule, summarize
from amc.schedule.distiller import schedule_to_distiller_yaml
from amc.schedule.distiller_check import DistillerIssue, require_loadable
from amc.schedule.schedule import YAML_SUFFIXES, Schedule


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "schedule",
        help="inspect or convert pruning schedules (Distiller YAML, amc JSON)",
        description=(
            "Schedules are Distiller YAML, read as Distiller runs them (every policy at every epoch it names, "
            "thinning between, AGP ramps, mask-only DropFilter pruners as dense), or amc JSON (strategy, densities "
            "or both). Parameter names may carry DataParallel's 'module.' anywhere. The README's Distiller table "
            "lists the pruner classes and group types amc reads, reports as mask-only, ignores and refuses."
        ),
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    inspect = actions.add_parser(
        "inspect",
        help="per-layer sparsity, dense / ideal MACs and params, and the figures after every Distiller epoch",
        description=(
            "Dense figures: the network with the schedule's channels removed. Ideal figures: each layer's MACs and "
            "weights further times its element-wise weight density (what a zero-skipping accelerator computes). "
            "Params count every parameter (BatchNorm too), as `amc inspect` does; beside them, Distiller's count "
            "(conv and linear weights only) and its NNZ. A Distiller schedule also gets a timeline: the figures "
            "after every epoch that fires a pruner or a thinning step. Notes on what amc reads differently from "
            "Distiller, or does not use, go to stderr."
        ),
    )
    inspect.add_argument("file", type=Path, help="schedule: .yaml/.yml (Distiller) or .json (amc)")
    _model_arguments(inspect)
    inspect.add_argument(
        "--json",
        action="store_true",
        help="one JSON object: dense_macs, ideal_macs, dense_params, ideal_params, distiller_params, "
        "distiller_nnz, layers, timeline, notes",
    )
    inspect.add_argument(
        "--check",
        action="store_true",
        help="also check the Distiller YAML (the file itself, or what amc would write for a JSON) against "
        "Distiller's own asserts; exit 2 when Distiller would refuse it",
    )
    inspect.set_defaults(func=run_inspect)
    convert = actions.add_parser(
        "convert",
        help="rewrite a schedule in another format (by the output's suffix)",
        description=(
            "YAML output is Distiller's one-shot form: the structured pruners and a thinning step at epoch 0, "
            "element-wise sparsities as SparsityLevelParameterPruner levels; it passes Distiller's own checks. "
            "A gradual source schedule is written as its final state."
        ),
    )
    convert.add_argument("file", type=Path, help="input schedule")
    convert.add_argument("out", type=Path, help="output: .yaml/.yml (Distiller) or .json (amc)")
    _model_arguments(convert)
    convert.add_argument("--no-module-prefix", action="store_true", help="YAML parameter names without 'module.'")
    convert.set_defaults(func=run_convert)


def _model_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, help="model the schedule is for (resnet20, torchvision:resnet50)")
    parser.add_argument("--input-size", type=input_size, help="C,H,W (default: the model's own)")
    parser.add_argument("--num-classes", type=positive_int, help="classifier outputs (default: the model's own)")


def _table(args: argparse.Namespace) -> tuple[LayerTable, object]:
    size = args.input_size or model_info(args.model).input_size
    model = create_model(args.model, in_channels=size[0], num_classes=args.num_classes)
    return build_layer_table(model, size, args.model), model


def _warn(notes: tuple[str, ...] | list[str]) -> None:
    for note in notes:
        print(f"amc: warning: {note}", file=sys.stderr)


def run_inspect(args: argparse.Namespace) -> int:
    require_text_file(args.file, "schedule", "pass a schedule: a Distiller YAML or an amc strategy / schedule JSON.")
    table, model = _table(args)
    schedule = load_schedule(args.file, table, warn=False)
    issues = _check(args, schedule, table) if args.check else None
    summary = summarize(schedule, table, model)  # type: ignore[arg-type]
    _warn(summary.notes)
    if args.json:
        bits = schedule.bits.to_dict() if schedule.bits else None
        print(json.dumps({**summary.to_dict(), "bits": bits}))
    else:
        print(format_summary(summary) + (format_bits(schedule.bits, table) if schedule.bits else ""))
    if issues is not None:
        _warn([str(issue) for issue in issues])
        if not args.json:
            print(f"\nDistiller check: loads ({len(issues)} warning(s))" if issues else "\nDistiller check: loads")
    return 0


def _check(args: argparse.Namespace, schedule: Schedule, table: LayerTable) -> list[DistillerIssue]:
    """The file itself when it is Distiller YAML, else the YAML `amc schedule convert` would write for it."""
    if args.file.suffix.lower() in YAML_SUFFIXES:
        return require_loadable(args.file.read_text(), f"schedule {args.file}")
    text = schedule_to_distiller_yaml(schedule, model=args.model, input_size=table.input_size)
    return require_loadable(text, f"the Distiller YAML amc writes for {args.file}")


def run_convert(args: argparse.Namespace) -> int:
    require_text_file(args.file, "schedule", "pass a schedule: a Distiller YAML or an amc strategy / schedule JSON.")
    table, _ = _table(args)
    schedule = load_schedule(args.file, table, warn=False)
    _warn(schedule.notes)
    if len(schedule.timeline) > 1 and args.out.suffix.lower() in YAML_SUFFIXES:
        _warn([f"{args.file} fires over {len(schedule.timeline)} epochs; {args.out} holds its final state, one-shot."])
    prefix = "" if args.no_module_prefix else "module."
    save_schedule(schedule, args.out, prefix=prefix, model=args.model, input_size=table.input_size)
    print(f"wrote {args.out}")
    return 0


def format_bits(bits: LayerBits, table: LayerTable) -> str:
    """The schedule's bit-widths (its `quantizers:` section) per layer, 32 for full precision."""
    lines = ["", "bit-widths (quantizers): weights / activations, 32 = full precision"]
    lines += [
        f"{layer.name:<36.36} {bits.weight_bits(layer.name):>2} / {bits.activation_bits(layer.name):>2}"
        for layer in table.layers
    ]
    return "\n".join(lines)


def _runs(steps: tuple[StepSummary, ...]) -> list[tuple[StepSummary, StepSummary]]:
    """Consecutive epochs that do the same thing to the same figures (a mask-only pruner's), as one row."""
    runs: list[tuple[StepSummary, StepSummary]] = []
    for step in steps:
        if runs and dataclasses.replace(runs[-1][1], epoch=step.epoch) == step:
            runs[-1] = (runs[-1][0], step)
        else:
            runs.append((step, step))
    return runs


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
    if summary.timeline:
        lines += ["", "Distiller timeline: the network after each epoch that fires something", ""]
        step_header = (
            f"{'epoch':>7} {'dense MACs':>14} {'ideal MACs':>14} {'weights':>11} {'NNZ':>11} {'w.sp':>6}  what"
        )
        lines += [step_header, "-" * len(step_header)]
        for first, last in _runs(summary.timeline):
            epochs = str(first.epoch) if first is last else f"{first.epoch}-{last.epoch}"
            lines.append(
                f"{epochs:>7} {last.dense_macs:>14,} {last.ideal_macs:>14,.0f} {last.distiller_params:>11,} "
                f"{last.distiller_nnz:>11,} {last.weight_sparsity:>6.1%}  {'; '.join(last.actions)}"
            )
    original = summary.original_distiller_params or 1
    lines += [
        "",
        f"MACs   original {summary.original_macs:,}  dense {summary.dense_macs:,}  ideal {summary.ideal_macs:,.0f} "
        f"({summary.ideal_macs / summary.original_macs:.1%} of original)",
        f"params original {summary.original_params:,}  dense {summary.dense_params:,}  ideal "
        f"{summary.ideal_params:,.0f} ({summary.ideal_params / summary.original_params:.1%} of original; every "
        "parameter, BatchNorm and biases included)",
        f"Distiller's count (conv + linear weights, no BN, no biases): original {summary.original_distiller_params:,}"
        f"  dense {summary.distiller_params:,}  NNZ {summary.distiller_nnz:,} ({summary.distiller_nnz / original:.1%} "
        "of original)",
    ]
    return "\n".join(lines)
