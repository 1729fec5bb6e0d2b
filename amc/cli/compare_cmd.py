"""`amc compare RUN_DIR... [--out DIR]`: methods side by side, as tables and plots."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from amc.cli.common import check_output_path
from amc.deliver.compare import compare_runs
from amc.errors import UserError


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
    check_output_path(out)
    for run_dir in args.runs:
        check_summary(run_dir)
    compare_runs(args.runs, out)
    print(f"\nwrote {out / 'comparison.md'}, {out / 'comparison.csv'} and {out / 'plots'}/")
    return 0


def check_summary(run_dir: Path) -> None:
    """A run's summary.json, where there is one, is a JSON object (compare_runs reports a missing one)."""
    path = run_dir / "summary.json"
    if not path.is_file():
        return
    fix = f"re-run its search to rewrite it (`amc search --out {run_dir} --resume`), or leave {run_dir} out."
    try:
        summary = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise UserError(f"{path} is not valid JSON ({error}): the file is damaged or truncated.", fix=fix) from None
    if not isinstance(summary, dict):
        raise UserError(
            f"{path} holds a JSON {type(summary).__name__}, not the summary object a search writes.", fix=fix
        )
