"""Search-time scoring of a pruned network: optional BN re-estimation, then accuracy on held-out images.

Every candidate of every search is scored by the same `Scorer`: the configured search-val slice
(`SearchValScorer`, images drawn once, seeded, kept as ready tensors), or the Python API user's own function
(`CallbackScorer`). Both re-estimate BatchNorm statistics first on `bn_batches` (training images), which also
feed least-squares channel selection. Those images are tensors on the search's device, moved there once when the
scorer is built (amc.device), so no episode copies data.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import torch
from torch import Tensor, nn
from torch.utils.data import Dataset

from amc.data import iterate_batches
from amc.device import autocast, module_device
from amc.pruning import adaptive_bn_


class Scorer(Protocol):
    """`scorer(model) -> accuracy in [0, 1]` of a pruned copy; `bn_batches` are its calibration images."""

    bn_batches: list[Tensor]
    adaptive_bn: bool

    def __call__(self, model: nn.Module) -> float: ...


def _reestimate_bn(model: nn.Module, scorer: Scorer) -> None:
    if scorer.adaptive_bn and scorer.bn_batches:
        adaptive_bn_(model, scorer.bn_batches, num_images=sum(len(batch) for batch in scorer.bn_batches))


@dataclass
class SearchValScorer:
    """Top-1 on a fixed search-val slice; re-estimates BN statistics first when `adaptive_bn`; `amp` scores under
    bfloat16 autocast (BN statistics are re-estimated in float32)."""

    val_batches: list[tuple[Tensor, Tensor]]
    bn_batches: list[Tensor]
    adaptive_bn: bool = True
    amp: bool = False

    @classmethod
    def from_datasets(
        cls,
        train: Dataset,
        search_val: Dataset,
        eval_images: int = 1000,
        bn_images: int = 512,
        adaptive_bn: bool = True,
        batch_size: int = 256,
        seed: int = 0,
        device: torch.device | None = None,
        amp: bool = False,
    ) -> SearchValScorer:
        """The images drawn once (seeded) and held on `device` (default: the CPU) for the whole search."""
        where = device or torch.device("cpu")
        val = [(images.to(where), labels.to(where))
               for images, labels in iterate_batches(search_val, batch_size, limit=eval_images)]  # fmt: skip
        bn = [images.to(where)
              for images, _ in iterate_batches(train, 128, shuffle=True, seed=seed, limit=bn_images)]  # fmt: skip
        return cls(val, bn, adaptive_bn, amp)

    @property
    def images(self) -> int:
        return sum(len(labels) for _, labels in self.val_batches)

    def on_whole(self, search_val: Dataset, batch_size: int = 256) -> SearchValScorer:
        """The same scorer (same BN images) over every image of `search_val`: for re-ranking a search's few best
        candidates, whose scores on the slice are noisy and, being maxima, biased upward."""
        where = self.val_batches[0][0].device if self.val_batches else torch.device("cpu")
        val = [(images.to(where), labels.to(where)) for images, labels in iterate_batches(search_val, batch_size)]
        return SearchValScorer(val, self.bn_batches, self.adaptive_bn, self.amp)

    def __call__(self, model: nn.Module) -> float:
        _reestimate_bn(model, self)
        model.eval()
        correct = 0
        with torch.inference_mode(), autocast(module_device(model), self.amp):
            for images, labels in self.val_batches:
                correct += (model(images).argmax(1) == labels).sum().item()
        return correct / self.images


@dataclass
class CallbackScorer:
    """A user's `score(model) -> accuracy in [0, 1]`, with BN re-estimation on `bn_batches` first."""

    score: Callable[[nn.Module], float]
    bn_batches: list[Tensor]
    adaptive_bn: bool = True

    def __call__(self, model: nn.Module) -> float:
        _reestimate_bn(model, self)
        model.eval()
        return float(self.score(model))
