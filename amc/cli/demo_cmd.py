"""`amc demo`: a real AMC search on built-in defaults, sized to finish in minutes on a 2-core CPU.

ResNet-20 on Fashion-MNIST (trained and cached on first use), priced by this machine's measured latency table
(built on first use), at half the dense model's latency. Ends with the dense-vs-best table.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from amc.cli.common import add_config_arguments, check_output_path, config_from_args
from amc.cli.search_cmd import terminate_as_interrupt
from amc.optional import check_config

DEMO_SETTINGS = {
    "experiment.name": "demo",
    "search.episodes": 120,
    "agent.warmup_episodes": 40,
    "search.eval_images": 500,
    "search.bn_images": 128,
}
"""Fewer episodes than AMC's 400+, and half the scoring and calibration images of `amc search`'s defaults, so
the demo ends within minutes on a 2-core CPU, shared or not; `amc search` runs the full default."""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="run a real AMC search on built-in defaults (resnet20, Fashion-MNIST, 50%% latency budget)",
        description=(
            "A real AMC search on built-in defaults: ResNet-20 on Fashion-MNIST (trained and cached on first use, "
            "about 3 epochs), priced by this machine's measured latency LUT (built on first use), at 50% of the dense "
            f"model's latency, {DEMO_SETTINGS['search.episodes']} episodes ({DEMO_SETTINGS['agent.warmup_episodes']} "
            "of them random warm-up). Writes runs/demo and ends with a dense-vs-best table. Any config flag overrides."
        ),
    )
    add_config_arguments(parser)
    parser.add_argument("--out", type=Path, default=Path("runs/demo"), help="run folder (runs/demo)")
    parser.add_argument("--resume", action="store_true", help="continue an interrupted demo")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    config = config_from_args(args, {key: value for key, value in DEMO_SETTINGS.items()})
    check_config(config)  # an extra a --config file asks for (optuna, ray) is installed
    check_output_path(args.out)
    # torch, stable-baselines3 and the search code load only now, after the config has been checked.
    from amc.problem import build_task
    from amc.search.methods import run_search

    if args.out.joinpath("episodes.csv").exists() and not args.resume:
        print(f"{args.out} holds an earlier demo: continuing it (delete the folder to start over)")
        args.resume = True
    terminate_as_interrupt()
    task = build_task(config, progress=not args.no_progress)
    result = run_search(task, args.out, resume=args.resume, progress=not args.no_progress)
    print(
        f"\nrun folder {result.run_dir}: best_strategy.json, best_schedule.yaml, plots/. "
        f"Next: amc evaluate {result.run_dir}  (fine-tune and test the pruned network)"
    )
    return 0
