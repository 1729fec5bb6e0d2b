"""Which channels of a coupling group to keep: a pluggable score per channel, then a top-k that respects groups.

A `ChannelSelector` scores the output channels of one coupling group (higher = more worth keeping), looking
at the weights of every member layer. `NormSelector` is AMC's and NetAdapt's criterion (L1 or L2 filter norm);
`LeastSquares` ranks the same way and additionally asks `thin` to refit the next layers' weights on sampled
feature maps (AMC's channel reconstruction, amc/pruning/reconstruction.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol, cast, runtime_checkable

import torch
from torch import Tensor, nn

from amc.errors import UserError
from amc.graph import CouplingGroup


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


SELECTORS: dict[str, ChannelSelector] = {
    "l1": NormSelector(1),
    "l2": NormSelector(2),
    "lstsq": LeastSquares(NormSelector(1)),
    "lstsq-l2": LeastSquares(NormSelector(2)),
}


def get_selector(selection: str | ChannelSelector) -> ChannelSelector:
    """A selector by name (l1, l2, lstsq, lstsq-l2) or the selector itself."""
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
