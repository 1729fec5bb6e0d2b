"""`amc size MODEL_DIR | RUN_DIR`: Deep Compression's stored size of a network, beside its dense float32 size."""

from __future__ import annotations

import argparse
import json
import pickle
import sys
from dataclasses import dataclass
from pathlib import Path

from torch import nn

from amc.deliver.sources import BITS_FILE, SCHEDULE_FILES
from amc.errors import UserError
from amc.quantize.bits import LayerBits, check_bits
from amc.quantize.deep_compression import CompressedSize, check_gap_bits, deep_compression_size

"""A mixed-precision search's result in its run folder: the default bit-widths of `amc size RUN_DIR`."""
DEFAULT_BITS = 8


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "size",
        help="Deep Compression's stored size (prune, k-means weight sharing, Huffman) beside the dense size",
        description=(
            "Bytes of the conv/linear weights (no biases, no BatchNorm) of a network after each stage of Han et "
            "al.'s Deep Compression: dense float32; pruned (the zero weights of a thinned or masked network are not "
            "stored: non-zeros as float32 plus relative indices, 8 bits for conv and 5 for linear layers, padding "
            "zeros where a gap overflows); quantized (k-means weight sharing, 2^bits float32 centroids per layer); "
            "Huffman coded (value indices and gaps, tables included). MODEL_DIR is a folder written by `amc prune "
            "--out` or `amc evaluate` (model.pt + architecture.json); RUN_DIR a run folder of `amc search`, whose "
            "result is applied to its base model as `amc evaluate` does, without fine-tuning."
        ),
    )
    parser.add_argument("source", type=Path, help="a model folder (architecture.json) or a run folder (config.yaml)")
    bits = parser.add_mutually_exclusive_group()
    bits.add_argument(
        "--bits",
        metavar="N",
        help=f"weight bits of every layer, 2-8 (32: no quantization); default: RUN_DIR/{BITS_FILE} if there, "
        f"else {DEFAULT_BITS}",
    )
    bits.add_argument("--bits-file", type=Path, help="per-layer bit-widths (amc LayerBits JSON, e.g. best_bits.json)")
    parser.add_argument("--gap-bits", metavar="N", help="relative-index width for every layer (default 8 conv, 5 fc)")
    parser.add_argument("--json", action="store_true", help="one JSON object: source, bits, layers, total")
    parser.set_defaults(func=run)


@dataclass(frozen=True)
class SizeSource:
    """What `amc size` measures: a saved network, or a run folder's result (schedule and bits files, if any)."""

    folder: Path
    kind: str
    """model (a saved thinned network) or run (a search's run folder)."""
    schedule: Path | None = None
    bits: Path | None = None


def resolve_source(path: Path) -> SizeSource:
    """A model folder (architecture.json) or a run folder (config.yaml), else a UserError."""

    if not path.exists():
        raise UserError(f"{path} does not exist.", fix="pass a model folder or a run folder.")
    if not path.is_dir():
        raise UserError(f"{path} is a file, not a folder.", fix="pass the folder that holds it.")
    if (path / "architecture.json").is_file() or (path / "thinned.json").is_file():  # either thinned format
        return SizeSource(path, "model")
    if (path / "config.yaml").is_file():
        schedule = next((path / name for name in SCHEDULE_FILES if (path / name).is_file()), None)
        bits = path / BITS_FILE if (path / BITS_FILE).is_file() else None
        return SizeSource(path, "run", schedule, bits)
    raise UserError(
        f"{path} is neither a model folder (architecture.json + model.pt) nor a run folder (config.yaml).",
        fix="pass a folder written by `amc prune --out`, `amc evaluate` or `amc search`.",
    )


def parse_bits(args: argparse.Namespace, source: SizeSource) -> tuple[int | LayerBits, str]:
    """The bit-widths to size with, and where they come from."""
    if args.bits is not None:
        return check_bits(_whole(args.bits, "--bits"), "--bits"), f"--bits {args.bits}"
    path = args.bits_file or source.bits
    if path is not None:
        return LayerBits.load(path), str(path)
    return DEFAULT_BITS, f"{DEFAULT_BITS} bits (default)"


def _whole(text: str, flag: str) -> int | str:
    """`text` as an int when it is one, else unchanged (so the check names the bad value)."""
    try:
        return int(text)
    except ValueError:
        return text


def load_network(source: SizeSource) -> nn.Module:
    """The network a source stands for, on the CPU (a run: its base model with the run's result applied)."""
    if source.kind == "model":
        from amc.deliver.export import load_thinned_module

        try:
            return load_thinned_module(source.folder)  # a torch.export program has no layers to size: its modules
        except (OSError, ValueError, RuntimeError, KeyError, TypeError, pickle.UnpicklingError) as error:
            raise UserError(
                f"cannot load the network in {source.folder}: {error}.",
                fix="pass a folder written by `amc prune --out` or `amc evaluate` (model.pt + architecture.json).",
            ) from None
    from amc.cli.common import check_checkpoint, check_names
    from amc.config import load_config
    from amc.deliver.apply import apply
    from amc.problem import build_task

    config = load_config(source.folder / "config.yaml")
    check_names(config)
    if config.model.checkpoint != "none":  # none: random weights, said on stderr
        check_checkpoint(config)
    task = build_task(config, progress=False, log=lambda line: print(line, file=sys.stderr))
    return apply(task, source.schedule) if source.schedule else task.problem.model


def run(args: argparse.Namespace) -> int:
    source = resolve_source(args.source)
    bits, bits_from = parse_bits(args, source)
    gap_bits = check_gap_bits(_whole(args.gap_bits, "--gap-bits")) if args.gap_bits is not None else None
    size = deep_compression_size(load_network(source), bits, gap_bits)
    if args.json:
        print(json.dumps({"source": str(source.folder), "bits": bits_from, **size.to_dict()}))
    else:
        print(format_size(size, f"{source.folder} ({bits_from})"))
    return 0


def format_size(size: CompressedSize, title: str) -> str:
    header = (
        f"{'layer':<32} {'kind':<6} {'weights':>9} {'density':>7} {'bits':>4} {'gap':>3} {'dense B':>11} "
        f"{'pruned B':>11} {'quant. B':>11} {'Huffman B':>11} {'ratio':>6}"
    )
    lines = [f"Deep Compression stored size of {title}", header, "-" * len(header)]
    for layer in size.layers:
        lines.append(
            f"{layer.name:<32.32} {layer.kind:<6} {layer.weights:>9,} {layer.density:>7.1%} {layer.weight_bits:>4} "
            f"{layer.gap_bits or '-':>3} {layer.dense_bytes:>11,} {layer.pruned_bytes:>11,} "
            f"{layer.quantized_bytes:>11,} {layer.huffman_bytes:>11,} {layer.ratio:>5.1f}x"
        )
    density = size.nonzero / size.weights if size.weights else 1.0
    lines.append("-" * len(header))
    lines.append(
        f"{'total':<32} {'':<6} {size.weights:>9,} {density:>7.1%} {'':>4} {'':>3} {size.dense_bytes:>11,} "
        f"{size.pruned_bytes:>11,} {size.quantized_bytes:>11,} {size.huffman_bytes:>11,} {size.ratio:>5.1f}x"
    )
    lines += [
        "",
        f"dense float32 {size.dense_bytes:,} B -> pruned {size.pruned_bytes:,} B -> quantized "
        f"{size.quantized_bytes:,} B -> Huffman {size.huffman_bytes:,} B: {size.ratio:.1f}x smaller "
        "(conv/linear weights; codebooks and Huffman tables included, biases and BatchNorm not counted)",
    ]
    return "\n".join(lines)
