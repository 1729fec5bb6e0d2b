"""`amc inspect MODEL`: the layer table (one row per conv/linear layer), coupling groups and totals."""

from __future__ import annotations

import argparse
import json

from amc.cli.args import input_size, positive_int
from amc.graph import LayerTable, build_layer_table
from amc.models import create_model, model_info


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "inspect",
        help="describe a model layer by layer: shapes, MACs, params, coupling groups",
        description=(
            "Print one row per conv/linear layer (qualified name, op, channels, kernel, stride, padding, groups, "
            "input/output HxW, MACs, params), the groups of layers whose output channels must be pruned together "
            "(residual adds, depthwise convs, concatenation), and totals. MACs count conv and linear layers; "
            "total params count every parameter (BN included), as published figures do."
        ),
    )
    parser.add_argument("model", help="model name: a zoo name (resnet20) or torchvision:<name>; see `amc list models`")
    parser.add_argument("--input-size", type=input_size, help="input as C,H,W (default: the model's own, e.g. 3,32,32)")
    parser.add_argument(
        "--num-classes", type=positive_int, help="classifier outputs (default: 10 for the zoo, 1000 torchvision)"
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object: layers, groups, total_macs, ...")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    size = args.input_size or model_info(args.model).input_size
    model = create_model(args.model, in_channels=size[0], num_classes=args.num_classes)
    table = build_layer_table(model, size, args.model)
    if args.json:
        print(json.dumps(table.to_dict()))
    else:
        print(format_table(table))
    return 0


def format_table(table: LayerTable) -> str:
    header = f"{'#':>3} {'layer':<36} {'op':<7} {'in':>5} {'out':>5} {'k':>5} {'s':>3} {'p':>3} {'g':>4} "
    header += f"{'in HxW':>9} {'out HxW':>9} {'MACs':>14} {'params':>10} {'group':>5}"
    lines = [f"{table.model_name}  input {'x'.join(map(str, table.input_size))}", header, "-" * len(header)]
    for layer in table.layers:
        spec = layer.spec
        owner = "-" if layer.out_group is None else str(layer.out_group)
        lines.append(
            f"{layer.index:>3} {layer.name:<36.36} {spec.op:<7} {spec.in_channels:>5} {spec.out_channels:>5} "
            f"{spec.kernel[0]}x{spec.kernel[1]:<3} {spec.stride[0]:>3} {spec.padding[0]:>3} {spec.groups:>4} "
            f"{spec.in_hw[0]:>4}x{spec.in_hw[1]:<4} {spec.out_hw[0]:>4}x{spec.out_hw[1]:<4} "
            f"{layer.macs:>14,} {layer.params:>10,} {owner:>5}"
        )
    lines += ["", "coupling groups (output channels pruned together):"]
    for group in table.groups:
        extra = f", multiple of {group.divisor}" if group.divisor > 1 else ""
        fixed = "" if group.prunable else f" [not prunable: {group.reason}]"
        lines.append(
            f"  [{group.index}] {'+'.join(group.kinds)} ({group.channels} ch{extra}){fixed}: {', '.join(group.layers)}"
        )
    lines += [
        "",
        f"total MACs {table.total_macs:,} ({table.total_macs / 1e6:.1f} M)   "
        f"total params {table.total_params:,} ({table.total_params / 1e6:.3f} M)",
    ]
    return "\n".join(lines)
