"""Which channels of a coupling group to keep: a pluggable score per channel, then a top-k that respects groups.

A `ChannelSelector` scores the output channels of one coupling group (higher = more worth keeping), looking
at the weights of every member layer. `NormSelector` is AMC's and NetAdapt's criterion (L1 or L2 filter norm);
`LeastSquares` ranks the same way and additionally asks `thin` to refit the next layers' weights on sampled
feature maps (AMC's channel reconstruction, amc/pruning/reconstruction.py). `BatchNormScale` is network slimming's
criterion: the |gamma| of the BatchNorm after each member layer.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol, cast, runtime_checkable

import torch
from torch import Tensor, nn

from amc.errors import UserError
from amc.graph import CouplingGroup, LayerTable


@runtime_checkable
class ChannelSelector(Protocol):
    """Scores the `group.channels` output channels of a coupling group; `model` is the unpruned network."""

    def scores(self, group: CouplingGroup, model: nn.Module) -> Tensor: ...


@dataclass(frozen=True)
class NormSelector:
    """Filter norm (p=1: L1, p=2: L2) of every member layer, each normalised by its mean, summed.

    Normalising keeps one member (e.g. the depthwise conv of a group) from drowning the others; for a group
    of one layer the ranking is exactly that layer's filter norm.
    """

    p: int = 1

    def scores(self, group: CouplingGroup, model: nn.Module) -> Tensor:
        total = torch.zeros(group.channels, dtype=torch.float64)
        for name in group.layers:
            weight = cast(Tensor, model.get_submodule(name).weight).detach()
            if weight.shape[0] != group.channels:
                raise UserError(
                    f"layer {name}: {weight.shape[0]} output channels, but its coupling group has {group.channels}.",
                    fix="this layer type cannot be pruned by amc; report the model.",
                )
            norms = weight.flatten(1).double().norm(p=self.p, dim=1).cpu()  # rankings are made on the CPU
            total += norms / norms.mean().clamp_min(1e-12)
        return total


@dataclass(frozen=True)
class LeastSquares:
    """Rank with `ranking`, then refit the weights of the layers reading the pruned channels.

    `points`: sampled output positions per refitted layer; `images`: calibration images used (None: 256 for
    CIFAR-sized inputs, fewer for large ones, see calibration.default_image_count); `ridge`: relative
    Tikhonov weight pulling the refit towards the selected original weights (keeps under-determined layers,
    e.g. a classifier with more inputs than sampled images, well posed).
    """

    ranking: ChannelSelector = field(default_factory=NormSelector)
    points: int = 4096
    images: int | None = None
    ridge: float = 1e-3

    def scores(self, group: CouplingGroup, model: nn.Module) -> Tensor:
        return self.ranking.scores(group, model)


def batchnorm_after(model: nn.Module) -> dict[str, nn.BatchNorm2d]:
    """The BatchNorm2d registered right after each Conv2d (no other conv/linear between, same channel count): how
    CNNs are written (conv, bn[, act]); `check_selection` confirms each against the traced layer table."""
    found: dict[str, nn.BatchNorm2d] = {}
    last: tuple[str, nn.Conv2d] | None = None
    for name, module in model.named_modules():
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            last = (name, module) if isinstance(module, nn.Conv2d) else None
        elif isinstance(module, nn.BatchNorm2d) and last is not None:
            if module.affine and module.num_features == last[1].out_channels:
                found[last[0]] = module
            last = None
    return found


@dataclass(frozen=True)
class BatchNormScale:
    """Network slimming (Liu et al. 2017): |gamma| of the BatchNorm after each member layer, summed over the
    group's members. Training with `train.slimming_l1` drives the gammas of channels the network does not need
    towards zero, so this ranks them last."""

    def scores(self, group: CouplingGroup, model: nn.Module) -> Tensor:
        norms = batchnorm_after(model)
        total = torch.zeros(group.channels, dtype=torch.float64)
        for name in group.layers:
            norm = norms.get(name)
            if norm is None or norm.num_features != group.channels:
                raise UserError(
                    f"search.selection bn_scale: layer {name} has no BatchNorm of its group's {group.channels} "
                    "channels right after it.",
                    fix="use search.selection l1 or lstsq for this model.",
                )
            total += norm.weight.detach().double().abs().cpu()
        return total


def check_selection(selection: str | ChannelSelector, model: nn.Module, table: LayerTable) -> None:
    """Refuse, before any search, a selection the model cannot use: bn_scale needs a BatchNorm right after every
    layer of every prunable group (the one found by module order must be what the traced forward pass runs next)."""
    if not isinstance(get_selector(selection), BatchNormScale):
        return
    norms = batchnorm_after(model)
    for group in table.prunable_groups:
        for name in group.layers:
            if name not in norms or table.layer(name).spec.fused[:1] != ("bn",):
                raise UserError(
                    f"search.selection bn_scale ranks channels by BatchNorm scales, but layer {name} of "
                    f"{table.model_name} is not followed by a BatchNorm.",
                    fix="use search.selection l1 or lstsq (and another search.method than slimming) for this model.",
                )


SELECTORS: dict[str, ChannelSelector] = {
    "l1": NormSelector(1),
    "l2": NormSelector(2),
    "lstsq": LeastSquares(NormSelector(1)),
    "lstsq-l2": LeastSquares(NormSelector(2)),
    "bn_scale": BatchNormScale(),
}


def get_selector(selection: str | ChannelSelector) -> ChannelSelector:
    """A selector by name (l1, l2, lstsq, lstsq-l2, bn_scale) or the selector itself."""
    if isinstance(selection, str):
        if selection not in SELECTORS:
            raise UserError(f"unknown channel selection {selection!r}.", fix=f"use one of {', '.join(SELECTORS)}.")
        return SELECTORS[selection]
    if not isinstance(selection, ChannelSelector):
        raise TypeError(f"selection must be a name or a ChannelSelector, got {type(selection).__name__}")
    return selection


def top_channels(scores: Tensor, keep: int, divisor: int = 1) -> list[int]:
    """Sorted indices of the `keep` best channels.

    With `divisor` > 1 (the group meets a grouped conv with that many groups), the same positions are kept in
    every slice of channels // divisor channels, ranked by their summed score, so each conv group keeps an
    equal, aligned share and the grouped conv stays valid.
    """
    channels = scores.numel()
    if divisor == 1:
        order = torch.argsort(scores, descending=True, stable=True)[:keep]
        return sorted(order.tolist())
    per_slice = channels // divisor
    slice_scores = scores.reshape(divisor, per_slice).sum(0)
    positions = sorted(torch.argsort(slice_scores, descending=True, stable=True)[: keep // divisor].tolist())
    return [part * per_slice + position for part in range(divisor) for position in positions]


def removed_channels(kept: Sequence[int], channels: int) -> list[int]:
    keep = set(kept)
    return [index for index in range(channels) if index not in keep]
