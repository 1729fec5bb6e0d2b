"""`amc lottery`: iterative magnitude pruning with rewinding, winning tickets vs random re-initialisation."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from amc.cli.common import add_config_arguments, check_output_path, config_from_args
from amc.cli.search_cmd import terminate_as_interrupt
from amc.config import ExperimentConfig
from amc.errors import UserError

if TYPE_CHECKING:
    from amc.lottery.rounds import LotterySettings


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "lottery",
        help="lottery tickets: iterative magnitude pruning with rewinding, ticket vs random reinit vs dense",
        description=(
            "Frankle & Carbin's lottery-ticket experiment with Frankle et al.'s rewinding. Round 0 trains the "
            "configured model from its (seeded) random initialisation for --epochs E epochs (model.checkpoint is "
            "not used) and keeps the weights after epoch --rewind-epoch k (0: the initialisation). Each further "
            "round prunes --rate of the surviving conv and linear weights by global magnitude, rewinds the "
            "survivors to the epoch-k weights and retrains epochs k..E-1 of the same LR schedule, masks held "
            "through every optimiser step. --control random-reinit also trains each round's mask from a fresh "
            "random initialisation. Writes OUT/lottery.csv (round, sparsity, test top-1 of ticket, random reinit "
            "and dense; search-val top-1), lottery.png, lottery.json and round_<r>.pt after every round (locked; "
            "--resume continues, changed settings are refused, more --rounds extend a finished run)."
        ),
        epilog="exit status: 0 done; 2 a user error; 130 interrupted (run again with --resume).",
    )
    add_config_arguments(parser)
    parser.add_argument("--rounds", type=int, required=True, help="pruning rounds R after the dense round")
    parser.add_argument("--rate", type=float, default=0.2, help="share p of surviving weights pruned per round (0.2)")
    parser.add_argument("--rewind-epoch", type=int, default=0, help="epoch k the survivors rewind to (0: init)")
    parser.add_argument("--epochs", type=int, help="dense training epochs E (default train.epochs)")
    parser.add_argument("--control", choices=("random-reinit",), help="also train the mask from a random reinit")
    parser.add_argument("--lr", type=float, help="peak learning rate (train.lr)")
    parser.add_argument("--out", type=Path, required=True, help="run folder")
    parser.add_argument("--resume", action="store_true", help="continue the run in --out")
    parser.add_argument("--max-steps-per-epoch", type=int, metavar="N", help="train on at most N batches per epoch")
    parser.add_argument("--test-images", type=int, metavar="N", help="test images scored per network (all)")
    parser.add_argument("--val-images", type=int, metavar="N", help="search-val images scored per network (all)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from amc.lottery.rounds import STATE_FILE, LotterySettings, check_settings

    config = config_from_args(args, {"train.epochs": args.epochs, "train.lr": args.lr})
    settings = LotterySettings(args.rounds, args.rate, args.rewind_epoch, config.train.epochs,
                               args.control == "random-reinit", args.max_steps_per_epoch, args.test_images,
                               args.val_images)  # fmt: skip
    check_settings(settings)
    check_output_path(args.out)
    if (args.out / STATE_FILE).is_file() and not args.resume:
        raise UserError(f"{args.out} already holds a lottery run ({STATE_FILE}).",
                        fix="pass --resume to continue it, or choose another --out folder.")  # fmt: skip
    terminate_as_interrupt()
    return _lottery(args, config, settings)


def _lottery(args: argparse.Namespace, config: ExperimentConfig, settings: LotterySettings) -> int:
    """The heavy part, after every argument is checked: data, the seeded initial model, the rounds."""
    import torch

    from amc.device import resolve_device, to_device
    from amc.lottery.rounds import CSV_FILE, PLOT_FILE, run_lottery
    from amc.training.base_model import build_model, load_data
    from amc.training.loop import TrainSettings

    torch.set_num_threads(config.experiment.threads)
    bundle = load_data(config)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.train.seed)
        model = build_model(config, bundle)
    to_device(model, resolve_device(config.experiment.device), config.experiment.channels_last)
    section = config.train
    train = TrainSettings(settings.epochs, section.batch_size, section.optimizer, section.lr, section.weight_decay,
                          section.label_smoothing, section.augment and bundle.augmentable, section.seed)  # fmt: skip
    print(f"lottery: {config.model.name} on {bundle.name}, {settings.rounds} rounds of {settings.rate:.0%}, "
          f"rewind to epoch {settings.rewind_epoch} of {settings.epochs} -> {args.out}")  # fmt: skip
    result = run_lottery(model, bundle, train, settings, args.out, resume=args.resume)
    print("| round | sparsity | ticket test top-1 | random reinit | dense |")
    print("|---:|---:|---:|---:|---:|")
    for row in result.rows:
        reinit = "" if row.test_top1_reinit is None else f"{100 * row.test_top1_reinit:.2f}%"
        print(f"| {row.round} | {100 * row.sparsity:.2f}% | {100 * row.test_top1_ticket:.2f}% | {reinit} | "
              f"{100 * row.test_top1_dense:.2f}% |")  # fmt: skip
    print(f"wrote {args.out / CSV_FILE}, {args.out / PLOT_FILE}")
    return 0
