"""Search-time scoring of a pruned network: optional BN re-estimation, then top-1 on a fixed search-val slice.

The slice and the BN images are drawn once (seeded) and kept as ready tensors, so every candidate of every
episode is scored on exactly the same images and no time goes to re-batching.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch.utils.data import Dataset

from amc.data import iterate_batches
from amc.pruning import adaptive_bn_


@dataclass
class SearchEvaluator:
    """`evaluator(model) -> top-1 accuracy in [0, 1]`; re-estimates BN statistics first when `adaptive_bn`."""

    val_batches: list[tuple[Tensor, Tensor]]
    bn_batches: list[Tensor]
    adaptive_bn: bool = True

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
    ) -> SearchEvaluator:
        val = list(iterate_batches(search_val, batch_size, limit=eval_images))
        bn = [images for images, _ in iterate_batches(train, 128, shuffle=True, seed=seed, limit=bn_images)]
        return cls(val, bn, adaptive_bn)

    @property
    def images(self) -> int:
        return sum(len(labels) for _, labels in self.val_batches)

    def __call__(self, model: nn.Module) -> float:
        if self.adaptive_bn:
            adaptive_bn_(model, self.bn_batches, num_images=sum(len(batch) for batch in self.bn_batches))
        model.eval()
        correct = 0
        with torch.inference_mode():
            for images, labels in self.val_batches:
                correct += (model(images).argmax(1) == labels).sum().item()
        return correct / self.images
