"""The `amc` command: one entry point, one module per subcommand, user errors as one paragraph and exit 2."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import textwrap

# OpenMP threads that spin while waiting collapse throughput when another process holds a core (bench/
# thread_policy.py: 2 threads 3-5x slower with one core busy; passive waiting 1.3-1.4x). Set before torch loads.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from amc.errors import UserError  # noqa: E402
from hwmodel.errors import HwModelError  # noqa: E402

DESCRIPTION = """\
amc: hardware-aware automated model compression.

Describe a CNN layer by layer, price pruned variants on a device (measured latency tables, roofline,
systolic-array, bit-serial, sparse-accelerator, size and energy models), search per-layer channel keep ratios,
sparsities or bit-widths under a hard budget (AMC's DDPG agent, NetAdapt, uniform, sensitivity, random,
Bayesian), and deliver a physically thinner (and INT8) network with its evaluation, a Distiller-style schedule and
an ONNX export.

Typical flow:  amc train -> amc lut build -> amc search -> amc evaluate -> amc compare
Also:          amc quantize (INT8), amc size (Deep Compression), amc finetune --schedule (run a schedule)
"""

# Each module defines `register(subparsers)`, which adds its subcommand and sets `func` to its handler.
COMMANDS = {
    "list": "amc.cli.list_cmd",
    "inspect": "amc.cli.inspect_cmd",
    "lut": "amc.cli.lut_cmd",
    "train": "amc.cli.train_cmd",
    "search": "amc.cli.search_cmd",
    "demo": "amc.cli.demo_cmd",
    "prune": "amc.cli.prune_cmd",
    "schedule": "amc.cli.schedule_cmd",
    "evaluate": "amc.cli.evaluate_cmd",
    "finetune": "amc.cli.finetune_cmd",
    "compare": "amc.cli.compare_cmd",
    "quantize": "amc.cli.quantize_cmd",
    "size": "amc.cli.size_cmd",
    "lottery": "amc.cli.lottery_cmd",
    "pareto": "amc.cli.pareto_cmd",
}
COMMAND_MODULES = tuple(COMMANDS.values())


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The `amc` parser: every subcommand, or only `command` (then only its module is imported: a command that
    does not need torch does not wait for it, and `amc search` reads its config before loading anything heavy)."""
    parser = argparse.ArgumentParser(
        prog="amc", description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, module_name in COMMANDS.items():
        if command is None or name == command:
            importlib.import_module(module_name).register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    # `amc` itself takes no option but --help, so a command is the first word or there is none.
    parser = build_parser(argv[0] if argv and argv[0] in COMMANDS else None)
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    try:
        return int(args.func(args) or 0)
    except (UserError, HwModelError) as error:
        print(format_user_error(error), file=sys.stderr)
        return 2
    except BrokenPipeError:  # e.g. `amc list models | head`
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - silence the flush at exit
        return 0
    except KeyboardInterrupt:
        print("amc: interrupted; what was written so far is kept (run again to resume).", file=sys.stderr)
        return 130


def format_user_error(error: UserError | HwModelError) -> str:
    text = f"amc: error: {error.problem}"
    if error.fix:
        text += f" Fix: {error.fix}"
    return textwrap.fill(text, width=100, subsequent_indent="  ", break_on_hyphens=False, break_long_words=False)


if __name__ == "__main__":
    sys.exit(main())
