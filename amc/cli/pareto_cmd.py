"""`amc pareto`: run an AMC run's learned policy greedily at several budgets (or on another network)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from amc.cli.common import check_checkpoint, check_names, require_text_file
from amc.config import load_config, parse_override
from amc.errors import UserError


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "pareto",
        help="one learned AMC policy at several budgets (and transferred to another network), vs uniform",
        description=(
            "Run the actor an `amc search --method amc` run learned (RUN_DIR/agent/agent.pt) greedily at each of "
            "--budgets, optionally with --refine K exploration episodes around it, keep the best within each "
            "budget (re-scored on the whole search-val split), and compare with uniform pruning at the same "
            "budgets. Writes pareto.csv, one strategy JSON and Distiller schedule per budget, and pareto.png into "
            "--out (default RUN_DIR/pareto). A policy learned with agent.budget_range sees the budget; one learned "
            "without it is run too, with a warning. --model (and --checkpoint) or --to-config apply the policy to "
            "another network (transfer): same outputs."
        ),
    )
    parser.add_argument("run_dir", type=Path, metavar="RUN_DIR", help="an AMC run folder (config.yaml, agent/)")
    parser.add_argument("--budgets", default="0.3,0.4,0.5,0.6,0.7", help="shares of the dense cost, comma-separated")
    parser.add_argument("--refine", type=int, default=0, help="exploration episodes per budget around the policy")
    parser.add_argument("--sigma", type=float, default=0.1, help="their noise, in keep-ratio units (default 0.1)")
    parser.add_argument("--out", type=Path, help="output folder (default RUN_DIR/pareto)")
    parser.add_argument("--model", help="transfer: another network (model.name), e.g. resnet56")
    parser.add_argument("--checkpoint", help="its base weights: a .pt path, auto or none (model.checkpoint)")
    parser.add_argument("--to-config", type=Path, help="transfer: an experiment YAML for the target network")
    parser.add_argument("--threads", type=int, help="torch CPU threads (experiment.threads)")
    parser.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                        help="override a key of the target config (repeatable)")  # fmt: skip
    parser.add_argument("--no-progress", action="store_true", help="no progress bars (logs only)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from amc.search.pareto import PARETO_DIR, parse_budgets

    budgets = parse_budgets(args.budgets)
    if args.refine < 0:
        raise UserError(f"--refine is {args.refine}; it must be 0 or more.", fix="e.g. --refine 8.")
    run_config_path = args.run_dir / "config.yaml"
    if not run_config_path.is_file():
        raise UserError(f"{args.run_dir} holds no config.yaml.", fix="point RUN_DIR at an `amc search` run folder.")
    run_config = load_config(run_config_path)
    policy = args.run_dir / "agent" / "agent.pt"
    if not policy.is_file():
        raise UserError(
            f"{args.run_dir} holds no agent/agent.pt.", fix="point RUN_DIR at an `amc search --method amc` run folder."
        )
    overrides: dict[str, Any] = {"model.name": args.model, "model.checkpoint": args.checkpoint}
    if args.model and not args.checkpoint:
        overrides["model.checkpoint"] = "auto"
    if args.threads:
        overrides["experiment.threads"] = args.threads
    for text in args.set:
        key, value = parse_override(text)
        overrides[key] = value
    if args.to_config:
        require_text_file(str(args.to_config), "--to-config", "pass an experiment YAML.")
    config = load_config(args.to_config or run_config_path, overrides)
    check_names(config)
    check_checkpoint(config)
    from amc.agents import read_policy
    from amc.problem import build_task
    from amc.search.pareto import run_pareto

    read_policy(policy)  # readable, before data and model load
    task = build_task(config, progress=not args.no_progress)
    out = args.out or args.run_dir / PARETO_DIR
    rows = run_pareto(task, policy, run_config.agent, budgets, out, args.refine, args.sigma, not args.no_progress)
    print(f"pareto: {len(rows)} budgets -> {out / 'pareto.csv'}, {out / 'pareto.png'}")
    return 0
