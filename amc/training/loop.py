"""Training, fine-tuning and evaluation loops for classification CNNs.

One loop serves base-model training and fine-tuning of pruned networks. It checkpoints every epoch
(model, optimiser, schedule and RNG state, atomically), so a killed run resumes where it stopped. Both run on the
device of the model they are given (amc.device): batches are drawn and augmented on the CPU, with the same random
numbers whatever the device, and moved batch by batch.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable
from contextlib import nullcontext
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import Tensor, nn
from torch.utils.data import Dataset
from tqdm.auto import tqdm

from amc.data import augment_batch, iterate_batches
from amc.device import autocast, module_device
from amc.io import atomic_torch_save
from amc.locks import lock_file
from amc.resume import refuse_changed


@dataclass(frozen=True)
class Accuracy:
    top1: float
    """Share of images whose top prediction is right (0..1)."""
    top5: float
    loss: float
    images: int


@dataclass(frozen=True)
class EpochRecord:
    epoch: int
    train_loss: float
    train_top1: float
    val_top1: float
    seconds: float


@dataclass(frozen=True)
class TrainResult:
    epochs: tuple[EpochRecord, ...]
    seconds: float


@dataclass(frozen=True)
class TrainSettings:
    epochs: int
    batch_size: int = 128
    optimizer: str = "sgd"
    lr: float = 0.1
    weight_decay: float = 5e-4
    label_smoothing: float = 0.0
    augment: bool = True
    seed: int = 0
    slimming_l1: float = 0.0
    """Network slimming's L1 on BatchNorm scales (Liu et al. 2017): lambda * sign(gamma) added to each BatchNorm
    weight's gradient after backward (0: off, nothing added)."""


@dataclass(frozen=True)
class TrainHooks:
    """Where a caller changes the network while it trains (amc.schedule.runner: pruning schedules)."""

    epoch_start: Callable[[int, nn.Module], bool] | None = None
    """Called before each epoch (0-based; also the first one after a resume, once the checkpoint is loaded);
    returns True when it replaced the model's parameters (thinning), so the optimiser is rebuilt."""
    after_step: Callable[[nn.Module], None] | None = None
    """Called after every optimiser step (e.g. to re-apply weight masks)."""
    epoch_end: Callable[[EpochRecord, nn.Module], None] | None = None
    """Called after each epoch's validation, before its checkpoint is written."""
    max_steps_per_epoch: int | None = None
    """Train on at most this many batches per epoch (a random subset, new each epoch)."""


def accuracy_on(
    model: nn.Module, dataset: Dataset, batch_size: int = 256, limit: int | None = None, amp: bool = False
) -> Accuracy:
    """Top-1/top-5 accuracy and mean loss on the first `limit` images (all when None), on the model's device
    (`amp`: bfloat16 autocast); the model is left in eval."""
    model.eval()
    device = module_device(model)
    correct1 = correct5 = 0
    loss_sum = 0.0
    count = 0
    with torch.inference_mode():
        for images, labels in iterate_batches(dataset, batch_size, limit=limit):
            images, labels = images.to(device), labels.to(device)
            with autocast(device, amp):
                logits = model(images)
            loss_sum += nn.functional.cross_entropy(logits, labels, reduction="sum").item()
            top = logits.topk(min(5, logits.shape[1]), dim=1).indices
            correct1 += (top[:, 0] == labels).sum().item()
            correct5 += (top == labels.unsqueeze(1)).any(dim=1).sum().item()
            count += len(labels)
    if count == 0:
        raise ValueError("accuracy_on() got an empty dataset")
    return Accuracy(correct1 / count, correct5 / count, loss_sum / count, count)


def make_optimizer(model: nn.Module, settings: TrainSettings) -> torch.optim.Optimizer:
    if settings.optimizer == "sgd":
        return torch.optim.SGD(
            model.parameters(), lr=settings.lr, momentum=0.9, nesterov=True, weight_decay=settings.weight_decay
        )
    if settings.optimizer == "adamw":
        return torch.optim.AdamW(model.parameters(), lr=settings.lr, weight_decay=settings.weight_decay)
    raise ValueError(f"unknown optimizer {settings.optimizer!r}: use sgd or adamw")


def add_bn_l1_subgradient_(model: nn.Module, strength: float) -> None:
    """Add `strength` * sign(gamma) to the gradient of every affine BatchNorm weight: the subgradient of network
    slimming's `strength` * sum |gamma| (Liu et al. 2017), so channels the loss does not need fade towards zero."""
    norms = (module for module in model.modules() if isinstance(module, nn.modules.batchnorm._BatchNorm))
    for weight in (norm.weight for norm in norms if norm.affine):
        if weight.grad is not None:
            weight.grad.add_(torch.sign(weight.detach()), alpha=strength)


def cosine_with_warmup(total_steps: int, warmup_steps: int) -> Callable[[int], float]:
    """LR multiplier: linear warm-up, then cosine decay to zero."""

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))

    return factor


def train(
    model: nn.Module,
    train_set: Dataset,
    val_set: Dataset,
    settings: TrainSettings,
    state_path: Path | None = None,
    progress: bool = True,
    log: Callable[[str], None] = print,
    val_images: int | None = None,
    amp: bool = False,
    hooks: TrainHooks | None = None,
) -> TrainResult:
    """Train `model` in place, on its device (`amp`: bfloat16 autocast); with `state_path`, checkpoint each epoch
    there and resume from it if present (only with the settings it was made with: other settings are a UserError
    naming each; the device is not one of them, a checkpoint holds plain weights). The checkpoint is locked
    (`<state_path>.lock`) while training, so a second run writing it is refused. `hooks` let a caller change the
    network between epochs and after each step."""
    with lock_file(state_path, "training checkpoint") if state_path is not None else nullcontext():
        return _train(model, train_set, val_set, settings, state_path, progress, log, val_images, amp, hooks)


def _train(
    model: nn.Module,
    train_set: Dataset,
    val_set: Dataset,
    settings: TrainSettings,
    state_path: Path | None,
    progress: bool,
    log: Callable[[str], None],
    val_images: int | None,
    amp: bool,
    hooks: TrainHooks | None = None,
) -> TrainResult:
    torch.manual_seed(settings.seed)
    hooks = hooks or TrainHooks()
    optimizer = make_optimizer(model, settings)
    steps_per_epoch = math.ceil(len(train_set) / settings.batch_size)  # type: ignore[arg-type]
    if hooks.max_steps_per_epoch is not None:
        steps_per_epoch = min(steps_per_epoch, hooks.max_steps_per_epoch)
    total = steps_per_epoch * settings.epochs
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, cosine_with_warmup(total, min(200, total // 10)))
    records: list[EpochRecord] = []
    start_epoch = 0
    if state_path is not None and Path(state_path).is_file():
        state = torch.load(state_path, map_location="cpu", weights_only=True)
        if "settings" in state:  # checkpoints written before settings were stored resume as before
            # A finished run may be extended by more epochs; an unfinished one must keep its LR schedule's length.
            finished = int(state["epoch"]) >= int(state["settings"].get("epochs", 0))
            refuse_changed(
                f"training checkpoint {state_path}", state["settings"], asdict(settings),
                fix=f"resume with the old values, or delete {state_path} to train from scratch with the new ones.",
                ignore=("epochs",) if finished else (),
            )  # fmt: skip
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        records = [EpochRecord(**record) for record in state["records"]]
        start_epoch = int(state["epoch"])
        log(f"resuming from {state_path} after epoch {start_epoch}")
    begin = time.perf_counter()
    criterion = nn.CrossEntropyLoss(label_smoothing=settings.label_smoothing)
    for epoch in range(start_epoch, settings.epochs):
        generator = torch.Generator().manual_seed(settings.seed * 1000 + epoch)
        tick = time.perf_counter()
        if hooks.epoch_start is not None and hooks.epoch_start(epoch, model):
            optimizer, scheduler = _rebuild_optimizer(model, settings, scheduler)
        model.train()
        limit = steps_per_epoch * settings.batch_size if hooks.max_steps_per_epoch is not None else None
        batches = iterate_batches(
            train_set, settings.batch_size, shuffle=True, seed=settings.seed * 1000 + epoch, limit=limit
        )
        loss_sum, correct, seen = _run_epoch(
            model,
            batches,
            optimizer,
            scheduler,
            criterion,
            settings,
            generator,
            amp,
            hooks.after_step,
            tqdm(total=steps_per_epoch, desc=f"epoch {epoch + 1}/{settings.epochs}", disable=not progress, leave=False),
        )
        val = accuracy_on(model, val_set, limit=val_images, amp=amp)
        record = EpochRecord(epoch + 1, loss_sum / seen, correct / seen, val.top1, time.perf_counter() - tick)
        records.append(record)
        if hooks.epoch_end is not None:
            hooks.epoch_end(record, model)
        log(
            f"epoch {record.epoch}/{settings.epochs}: train loss {record.train_loss:.4f}  train acc "
            f"{100 * record.train_top1:.2f}%  val acc {100 * record.val_top1:.2f}%  ({record.seconds:.0f} s)"
        )
        if state_path is not None:
            atomic_torch_save(
                state_path,
                {
                    "model": model.state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict(),
                    "epoch": epoch + 1,
                    "records": [record.__dict__ for record in records],
                    "settings": asdict(settings),
                },
            )
    return TrainResult(tuple(records), time.perf_counter() - begin)


def _rebuild_optimizer(
    model: nn.Module, settings: TrainSettings, scheduler: torch.optim.lr_scheduler.LambdaLR
) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LambdaLR]:
    """A fresh optimiser over the model's new parameters, its LR schedule continuing where `scheduler` was
    (momentum starts again: the old buffers have the old shapes)."""
    optimizer = make_optimizer(model, settings)
    fresh = torch.optim.lr_scheduler.LambdaLR(optimizer, scheduler.lr_lambdas[0])
    fresh.load_state_dict(scheduler.state_dict())
    for group, lr in zip(optimizer.param_groups, fresh.get_last_lr()):
        group["lr"] = lr
    return optimizer, fresh


def _run_epoch(
    model: nn.Module,
    batches: Iterable[tuple[Tensor, Tensor]],
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    criterion: nn.Module,
    settings: TrainSettings,
    generator: torch.Generator,
    amp: bool,
    after_step: Callable[[nn.Module], None] | None,
    bar: tqdm,
) -> tuple[float, int, int]:
    loss_sum, correct, seen = 0.0, 0, 0
    device = module_device(model)
    with bar:
        for images, labels in batches:
            if settings.augment and images.dim() == 4:
                images = augment_batch(images, generator)
            images, labels = images.to(device), labels.to(device)
            with autocast(device, amp):
                logits = model(images)
                loss = criterion(logits, labels)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if settings.slimming_l1:
                add_bn_l1_subgradient_(model, settings.slimming_l1)
            optimizer.step()
            if after_step is not None:
                after_step(model)
            scheduler.step()
            loss_sum += loss.item() * len(labels)
            correct += (logits.argmax(1) == labels).sum().item()
            seen += len(labels)
            bar.update(1)
            bar.set_postfix(loss=f"{loss_sum / seen:.3f}", acc=f"{100 * correct / seen:.1f}%")
    return loss_sum, correct, seen
