"""`amc finetune MODEL_DIR|RUN_DIR --schedule FILE`: train a network while a pruning schedule runs on it."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from amc.cli.common import add_config_arguments, check_checkpoint, check_output_path, config_from_args
from amc.cli.search_cmd import terminate_as_interrupt
from amc.config import ExperimentConfig
from amc.deliver.sources import refuse_quantized
from amc.errors import UserError

if TYPE_CHECKING:
    from torch import nn
    from torch.utils.data import Dataset

    from amc.schedule.runner import ScheduleHooks, Trainer
    from amc.training.loop import TrainSettings

REPORT_FILE = "finetune.json"


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "finetune",
        help="(re)train a network while a Distiller (or amc) pruning schedule runs: AGP ramps, masks, thinning",
        description=(
            "Start from a pruned model folder (`amc prune` / `amc evaluate`: architecture.json + model.pt) or a "
            "run folder of `amc search` (its base model), and train it while the schedule fires: at each epoch a "
            "step names, element-wise magnitude masks at the step's sparsity (AGP ramps at their frequency), "
            "filter / channel / block masks by L1 norm, and, where the schedule thins, channels physically removed "
            "at that epoch (the optimiser is rebuilt). Masked weights stay exactly zero after every optimiser step. "
            "An amc JSON schedule (strategy / densities) is applied at epoch 0. Every epoch is checkpointed in OUT "
            "(locked; running the same command again resumes, changed settings are refused). Writes OUT/model.pt "
            "(+ architecture.json), schedule.json, schedule.yaml, finetune.json and finetune.md (per epoch: what "
            "fired, channels, loss, search-val / test top-1, scheduled vs actual sparsity per layer)."
        ),
        epilog="exit status: 0 done; 2 a user error; 130 interrupted (run again to resume).",
    )
    parser.add_argument("source", type=Path, help="a model folder (architecture.json) or a run folder (config.yaml)")
    parser.add_argument("--schedule", type=Path, required=True, help="Distiller schedule YAML or amc schedule JSON")
    add_config_arguments(parser)
    parser.add_argument("--epochs", type=int, help="training epochs (default: the schedule's last step + 1)")
    parser.add_argument("--lr", type=float, help="peak learning rate (finetune.lr)")
    parser.add_argument("--out", type=Path, help="output folder (default: SOURCE/finetune)")
    parser.add_argument("--max-steps-per-epoch", type=int, metavar="N", help="train on at most N batches per epoch")
    parser.add_argument("--test-images", type=int, metavar="N", help="test images scored after each epoch (all)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    source = Path(args.source)
    refuse_quantized(source, "amc finetune")
    model_dir = source / "architecture.json"
    manifest = source / "thinned.json"  # amc.pruning.exported.MANIFEST_FILE, read here without importing torch
    thinned = model_dir.is_file() or manifest.is_file()
    if not thinned and not (source / "config.yaml").is_file():
        raise UserError(
            f"{source} is neither a model folder (architecture.json or thinned.json) nor a run folder (config.yaml).",
            fix="pass a folder written by `amc prune --out`, `amc evaluate` or `amc search`.",
        )
    if not args.schedule.is_file():
        raise UserError(f"schedule file {args.schedule} does not exist.", fix="check the --schedule path.")
    for flag, value in (("--epochs", args.epochs), ("--max-steps-per-epoch", args.max_steps_per_epoch),
                        ("--test-images", args.test_images)):  # fmt: skip
        if value is not None and value < 1:
            raise UserError(f"{flag} is {value}; it must be 1 or more.", fix=f"drop {flag} or give it 1 or more.")
    if args.lr is not None and not args.lr > 0:
        raise UserError(f"--lr is {args.lr}; it must be a positive number.", fix="use e.g. --lr 0.01.")
    extra = {"finetune.lr": args.lr}
    if args.config is None and (source / "config.yaml").is_file():
        args.config = str(source / "config.yaml")
    if model_dir.is_file():
        extra["model.name"] = json.loads(model_dir.read_text()).get("model")
    elif thinned:
        extra["model.name"] = json.loads(manifest.read_text()).get("model")
    config = config_from_args(args, extra)
    if not thinned:
        check_checkpoint(config)
    out = args.out or source / "finetune"
    check_output_path(out)
    terminate_as_interrupt()
    return _finetune(args, config, source, out)


def _finetune(args: argparse.Namespace, config: ExperimentConfig, source: Path, out: Path) -> int:
    """The heavy part, after every argument is checked: load, train under the schedule, save, report."""
    import torch

    from amc.deliver.export import export, load_thinned_module
    from amc.device import resolve_device, to_device
    from amc.graph import build_layer_table
    from amc.io import atomic_write_json, atomic_write_text
    from amc.schedule import load_schedule
    from amc.schedule.runner import check_epochs, default_epochs, report_markdown, run_schedule, with_timeline
    from amc.training.base_model import load_base_model, load_data
    from amc.training.loop import TrainSettings, accuracy_on

    torch.set_num_threads(config.experiment.threads)
    bundle = load_data(config)
    progress = not args.no_progress
    thinned = (source / "architecture.json").is_file() or (source / "thinned.json").is_file()
    model = load_thinned_module(source) if thinned else load_base_model(config, bundle)
    table = build_layer_table(model, bundle.input_size, config.model.name)
    schedule = with_timeline(load_schedule(args.schedule, table), table)
    epochs = args.epochs or default_epochs(schedule)
    check_epochs(schedule, epochs)
    section = config.finetune
    settings = TrainSettings(epochs=epochs, batch_size=section.batch_size, optimizer=section.optimizer, lr=section.lr,
                             weight_decay=section.weight_decay, augment=False, seed=config.experiment.seed)  # fmt: skip
    device = resolve_device(config.experiment.device)
    to_device(model, device)
    amp, images = config.experiment.amp, args.test_images
    trainer = loop_trainer(bundle.train, bundle.search_val, settings, max_steps_per_epoch=args.max_steps_per_epoch,
                           val_images=section.val_images, progress=progress, amp=amp)  # fmt: skip
    run = run_schedule(model, table, schedule, out, trainer, epochs, job_settings(settings, args.max_steps_per_epoch),
                       score=lambda network: accuracy_on(network, bundle.test, limit=images, amp=amp).top1)  # fmt: skip
    final = accuracy_on(run.model, bundle.test, config.data.batch_size, amp=config.experiment.amp)
    exported = export(run.model, out, schedule, bundle.input_size, config.model.name, onnx=False,
                      extra={"source": str(source), "schedule_file": str(args.schedule)})  # fmt: skip
    title = (f"{config.model.name} on {bundle.name}: {args.schedule} over {epochs} epoch(s) "
             f"({settings.optimizer}, lr {settings.lr}); final test top-1 {100 * final.top1:.2f}% "
             f"({final.images} images), {run.seconds:.0f} s")  # fmt: skip
    report = {"_type": "amc.FinetuneReport", "_version": 1, "source": str(source), "schedule": str(args.schedule),
              "settings": asdict(settings), "test_top1": final.top1, "test_top5": final.top5,
              "test_images": final.images, "seconds": run.seconds,
              "epochs": [asdict(report) for report in run.epochs]}  # fmt: skip
    atomic_write_json(out / REPORT_FILE, report)
    atomic_write_text(out / "finetune.md", report_markdown(run, title))
    print(title)
    print(f"wrote {exported.weights}, {out / REPORT_FILE}, {out / 'finetune.md'}")
    return 0


def job_settings(settings: TrainSettings, max_steps_per_epoch: int | None) -> dict[str, Any]:
    """What a resumed schedule run must share with the run that made its checkpoint."""
    return {**asdict(settings), "max_steps_per_epoch": max_steps_per_epoch}


def loop_trainer(
    train_set: Dataset,
    val_set: Dataset,
    settings: TrainSettings,
    *,
    max_steps_per_epoch: int | None = None,
    val_images: int | None = None,
    progress: bool = True,
    log: Callable[[str], None] = print,
    amp: bool = False,
) -> Trainer:
    """amc's training loop (amc.training.loop.train) as the schedule runner's trainer."""
    from amc.training.loop import TrainHooks, train

    def run(model: nn.Module, state_path: Path, hooks: ScheduleHooks) -> None:
        end = hooks.epoch_end
        loop_hooks = TrainHooks(hooks.epoch_start, hooks.after_step,
                                lambda record, net: end(record.epoch, record.train_loss, record.val_top1, net),
                                max_steps_per_epoch)  # fmt: skip
        train(model, train_set, val_set, settings, state_path=state_path, progress=progress, log=log,
              val_images=val_images, amp=amp, hooks=loop_hooks)  # fmt: skip

    return run
