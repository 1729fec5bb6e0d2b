"""`amc search`: find per-layer keep ratios under a hard budget and write a run folder."""

from __future__ import annotations

import argparse
import signal
from pathlib import Path

from amc.cli.common import add_config_arguments, check_checkpoint, check_output_path, config_from_args
from amc.config import EXECUTORS, ExperimentConfig
from amc.errors import UserError
from amc.optional import check_config


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "search",
        help="search per-layer pruning ratios under a budget (AMC agent or a baseline)",
        description=(
            "Search per-layer channel keep ratios that meet a hard budget (budget.ratio of the dense cost, or "
            "budget.value in the cost model's unit) and score best on search-val. Writes a run folder: config.yaml, "
            "episodes.csv, best_strategy.json, best_schedule.yaml (Distiller), summary.json, plots/, and for AMC the "
            "agent checkpoint and TensorBoard logs (with the tensorboard extra). Ctrl-C or kill loses at most the "
            "episode in flight; --resume continues. The config is checked before anything is loaded, trained or "
            "measured."
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
        add_help=False,
    )
    parser.add_argument("-h", "--help", action=HelpWithMethods, help="show this help message and exit")
    add_config_arguments(parser)
    parser.add_argument("--method", help="search method (search.method; default amc)")
    parser.add_argument("--out", type=Path, help="run folder (default runs/<experiment.name>-<method>)")
    parser.add_argument("--resume", action="store_true", help="continue the search in --out from its checkpoint")
    parser.add_argument("--episodes", type=int, help="episodes / trials in all (search.episodes)")
    parser.add_argument("--budget", type=float, help="budget as a share of the dense cost (budget.ratio)")
    parser.add_argument("--cost-model", help="cost model (cost.model), e.g. lut:auto, macs, roofline:rpi4-a72")
    parser.add_argument("--policy", help="a trained agent checkpoint (agent.pt) to run greedily (agent.policy)")
    parser.add_argument("--workers", type=int, help="score independent candidates on N workers (search.workers)")
    parser.add_argument("--executor", help=f"where candidates are scored: {' or '.join(EXECUTORS)} (search.executor)")
    parser.add_argument("--ray-address", help="a Ray cluster to join, e.g. ray://head:10001 (search.ray_address)")
    parser.set_defaults(func=run)


class HelpWithMethods(argparse.Action):
    """--help that ends with the search methods and what each does: their descriptions live with the search code
    (torch, stable-baselines3), loaded only when help is asked for, so a search reads its config first."""

    def __init__(self, option_strings: list[str], dest: str = argparse.SUPPRESS, help: str | None = None) -> None:
        super().__init__(option_strings, dest=dest, default=argparse.SUPPRESS, nargs=0, help=help)

    def __call__(
        self, parser: argparse.ArgumentParser, namespace: object, values: object, option: str | None = None
    ) -> None:
        from amc.search.methods import METHODS

        parser.epilog = "methods:\n" + "\n".join(f"  {name:<12} {text}" for name, (_, text) in METHODS.items())
        parser.print_help()
        parser.exit()


def terminate_as_interrupt() -> None:
    """`kill` (SIGTERM) stops a search the way Ctrl-C does: checkpoints stay consistent."""

    def handler(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, handler)


def run(args: argparse.Namespace) -> int:
    config = config_from_args(args, {
        "search.method": args.method, "search.episodes": args.episodes, "budget.ratio": args.budget,
        "cost.model": args.cost_model, "agent.policy": args.policy, "search.workers": args.workers,
        "search.executor": args.executor, "search.ray_address": args.ray_address,
    })  # fmt: skip
    check_config(config)  # an extra the config asks for (optuna, ray) is installed
    check_checkpoint(config)
    out = args.out or Path("runs") / f"{config.experiment.name}-{config.search.method}"
    check_output_path(out)
    check_study_storage(config)
    # torch, stable-baselines3 and the search code load only now, after the config has been checked.
    from amc.problem import build_task
    from amc.search.methods import run_search

    if config.agent.policy:
        from amc.agents import read_policy

        read_policy(Path(config.agent.policy))  # a readable agent checkpoint, before data and model load
    terminate_as_interrupt()
    task = build_task(config, progress=not args.no_progress)
    result = run_search(task, out, resume=args.resume, progress=not args.no_progress)
    print(f"run folder: {result.run_dir} ({result.episodes} episodes, {result.wall_s:.0f} s)")
    return 0


def check_study_storage(config: ExperimentConfig) -> None:
    """A configured Optuna storage (search.bayes.storage) opens, before any data, model or LUT is loaded."""
    storage = config.search.bayes.storage
    if config.search.method != "bayes" or not storage:
        return
    fix = "set search.bayes.storage to a database you can reach, e.g. sqlite:///runs/study.db, or leave it unset."
    if storage.startswith("sqlite:///"):
        folder = Path(storage.removeprefix("sqlite:///")).parent
        if not folder.is_dir():
            raise UserError(f"search.bayes.storage {storage}: the folder {folder} does not exist.", fix=fix)
    try:
        import sqlalchemy

        engine = sqlalchemy.create_engine(storage)
        with engine.connect():
            pass
        engine.dispose()
    except Exception as error:  # noqa: BLE001 - a missing driver, a bad URL or a refused connection: one problem
        text = " ".join(str(error).split())[:300]
        raise UserError(
            f"search.bayes.storage {storage} cannot be opened: {type(error).__name__}: {text}.", fix=fix
        ) from None
