"""`amc compare RUN_DIR... [--out DIR]`: methods side by side, as tables and plots."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from amc.deliver.compare import compare_runs


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "compare",
        help="compare search runs side by side: one table (Markdown + CSV) and plots",
        description=(
            "Read run folders of `amc search` (and their `amc evaluate` results where present) and write one "
            "table of the methods side by side: budget, cost, measured latency, speed-up, MACs, params, search-val "
            "accuracy, fine-tuned test accuracy, search wall time; runs of one method with several seeds give "
            "mean ± sd. Writes OUT/comparison.md, OUT/comparison.csv (one row per run), OUT/plots/pareto.png "
            "(accuracy vs measured latency, dense model marked), OUT/plots/keep_ratios.png (per-layer keep ratios "
            "of each method's best run) and each run's sensitivity curves where it has them."
        ),
    )
    parser.add_argument("runs", nargs="+", type=Path, help="run folders of `amc search`")
    parser.add_argument("--out", type=Path, help="output folder (default: <the runs' common folder>/comparison)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    common = Path(os.path.commonpath([str(path.resolve()) for path in args.runs]))
    if len(args.runs) == 1 or common in {path.resolve() for path in args.runs}:
        common = common.parent
    out = args.out or common / "comparison"
    compare_runs(args.runs, out)
    print(f"\nwrote {out / 'comparison.md'}, {out / 'comparison.csv'} and {out / 'plots'}/")
    return 0
