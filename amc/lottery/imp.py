"""Iterative magnitude pruning (IMP) with rewinding: the lottery-ticket procedure (Frankle & Carbin 2019; Frankle
et al. 2020, "rewinding" to iteration k).

Element-wise masks over the weights of every Conv2d and Linear layer (biases and BatchNorm are never pruned).
Pruning is global: each round removes the share `rate` of the weights that still survive with the smallest
magnitude across all those layers together. Frankle & Carbin prune small conv/fc networks at hand-set per-layer
rates, but for deep networks (VGG-19, ResNet-18/20) they and Frankle et al. 2020 prune globally, since one rate for
every layer makes the few-weight layers (the stem, the classifier) bottlenecks; global needs no per-layer table.

Masks are held through every optimiser step: the gradients of pruned weights are zeroed before the step (so
momentum and weight decay never move them) and the masks are re-applied after it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch.utils.data import Dataset

from amc.data import augment_batch, iterate_batches
from amc.device import module_device
from amc.training.loop import TrainSettings, cosine_with_warmup, make_optimizer

Masks = dict[str, Tensor]
"""Qualified parameter name (`layer1.0.conv1.weight`) -> bool tensor of its shape, True where the weight lives."""


def prunable(model: nn.Module) -> dict[str, Tensor]:
    """The weights IMP prunes: those of every Conv2d and Linear layer, by qualified parameter name."""
    return {
        f"{name}.weight": module.weight
        for name, module in model.named_modules()
        if isinstance(module, nn.Conv2d | nn.Linear)
    }


def full_masks(model: nn.Module) -> Masks:
    """Masks that keep every weight (round 0, the dense network)."""
    return {name: torch.ones_like(weight, dtype=torch.bool) for name, weight in prunable(model).items()}


def sparsity(masks: Masks) -> float:
    """Share of the prunable weights that are pruned (0..1)."""
    total = sum(mask.numel() for mask in masks.values())
    return 1.0 - sum(int(mask.sum()) for mask in masks.values()) / total


def prune_global(model: nn.Module, masks: Masks, rate: float) -> Masks:
    """New masks with round(rate * surviving) more weights removed: the smallest |w| among the survivors of
    all prunable layers together (ties broken by position, so the count is exact). Leaves `model` untouched."""
    weights = prunable(model)
    scores = torch.cat([weights[name].detach().abs().flatten().cpu()[masks[name].flatten().cpu()] for name in masks])
    cut = round(rate * scores.numel())
    if cut == 0:
        return {name: mask.clone() for name, mask in masks.items()}
    threshold_order = torch.argsort(scores, stable=True)
    removed = torch.zeros(scores.numel(), dtype=torch.bool)
    removed[threshold_order[:cut]] = True
    new: Masks = {}
    start = 0
    for name, mask in masks.items():
        alive = mask.flatten().cpu().clone()
        count = int(alive.sum())
        positions = alive.nonzero().flatten()
        alive[positions[removed[start : start + count]]] = False
        start += count
        new[name] = alive.view(mask.shape).to(mask.device)
    return new


def apply_masks_(model: nn.Module, masks: Masks) -> None:
    """Zero the pruned weights of `model` in place."""
    weights = prunable(model)
    with torch.no_grad():
        for name, mask in masks.items():
            weights[name].mul_(mask.to(weights[name].device))


def rewind_(model: nn.Module, state: dict[str, Tensor], masks: Masks) -> None:
    """Set every parameter and buffer of `model` to `state` (the weights of iteration k), then prune: the
    survivors get exactly their iteration-k values, the pruned weights zero."""
    model.load_state_dict(state)
    apply_masks_(model, masks)


def random_reinit_(model: nn.Module, masks: Masks, seed: int) -> None:
    """Frankle's control: the same mask on a fresh random initialisation (each module's own reset_parameters,
    seeded; the global RNG is left as it was)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for module in model.modules():
            if module is not model and hasattr(module, "reset_parameters"):
                module.reset_parameters()  # type: ignore[operator]
    apply_masks_(model, masks)


@dataclass(frozen=True)
class Segment:
    """Which epochs of one training run to do: the LR schedule spans `total` epochs of `steps_per_epoch` steps,
    and training runs epochs start..end-1 of it (a rewound ticket continues the schedule from epoch k)."""

    start: int
    end: int
    total: int
    steps_per_epoch: int


def steps_per_epoch(train_set: Dataset, batch_size: int, max_steps: int | None) -> int:
    steps = math.ceil(len(train_set) / batch_size)  # type: ignore[arg-type]
    return steps if max_steps is None else min(steps, max_steps)


def train_masked(
    model: nn.Module,
    masks: Masks,
    train_set: Dataset,
    settings: TrainSettings,
    segment: Segment,
    augment: bool,
    epoch_end: Callable[[int, nn.Module], None] | None = None,
) -> float:
    """Train `model` in place over `segment` with its masks held (gradients of pruned weights zeroed before each
    step, masks re-applied after it); a fresh optimiser (as when rewinding), the LR at the segment's place in
    the cosine schedule. Calls `epoch_end(epoch, model)` after each epoch (1-based); returns the mean loss of the
    last epoch."""
    torch.manual_seed(settings.seed)
    apply_masks_(model, masks)
    optimizer = make_optimizer(model, settings)
    total = segment.total * segment.steps_per_epoch
    factor = cosine_with_warmup(total, min(200, total // 10))
    weights = prunable(model)
    device = module_device(model)
    on_device = {name: mask.to(device) for name, mask in masks.items()}
    criterion = nn.CrossEntropyLoss(label_smoothing=settings.label_smoothing)
    mean_loss = float("nan")
    for epoch in range(segment.start, segment.end):
        model.train()
        loss_sum, seen = 0.0, 0
        generator = torch.Generator().manual_seed(settings.seed * 1000 + epoch)
        for step, (images, labels) in enumerate(_batches(train_set, settings, segment, epoch)):
            for group in optimizer.param_groups:
                group["lr"] = settings.lr * factor(epoch * segment.steps_per_epoch + step)
            if augment and images.dim() == 4:
                images = augment_batch(images, generator)
            images, labels = images.to(device), labels.to(device)
            loss = criterion(model(images), labels)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            for name, mask in on_device.items():
                grad = weights[name].grad
                if grad is not None:
                    grad.mul_(mask)
            optimizer.step()
            apply_masks_(model, on_device)
            loss_sum += loss.item() * len(labels)
            seen += len(labels)
        mean_loss = loss_sum / max(1, seen)
        if epoch_end is not None:
            epoch_end(epoch + 1, model)
    return mean_loss


def _batches(
    train_set: Dataset, settings: TrainSettings, segment: Segment, epoch: int
) -> Iterator[tuple[Tensor, Tensor]]:
    limit = segment.steps_per_epoch * settings.batch_size
    return iterate_batches(train_set, settings.batch_size, shuffle=True, seed=settings.seed * 1000 + epoch, limit=limit)
