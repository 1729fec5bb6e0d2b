"""The `amc` command: one entry point, one module per subcommand, user errors as one paragraph and exit 2."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import textwrap

from amc.errors import UserError
from hwmodel.errors import HwModelError

DESCRIPTION = """\
amc: hardware-aware automated model compression.

Describe a CNN layer by layer, price pruned variants on a device (measured latency tables, roofline,
systolic-array, sparse-accelerator and energy models), search per-layer channel keep ratios under a hard
budget (AMC's DDPG agent, NetAdapt, uniform, sensitivity, random, Bayesian), and deliver a physically thinner
network with its evaluation, a Distiller-style schedule and an ONNX export.

Typical flow:  amc train -> amc lut build -> amc search -> amc evaluate -> amc compare
"""

# Each module defines `register(subparsers)`, which adds its subcommand and sets `func` to its handler.
COMMAND_MODULES = (
    "amc.cli.list_cmd",
    "amc.cli.inspect_cmd",
    "amc.cli.lut_cmd",
    "amc.cli.train_cmd",
    "amc.cli.search_cmd",
    "amc.cli.demo_cmd",
    "amc.cli.prune_cmd",
    "amc.cli.schedule_cmd",
    "amc.cli.evaluate_cmd",
    "amc.cli.compare_cmd",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="amc", description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module_name in COMMAND_MODULES:
        importlib.import_module(module_name).register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
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
