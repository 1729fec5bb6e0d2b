"""Calibration images: the few hundred training images that adaptive BN and reconstruction look at.

Callers hand in whatever their loader yields, batches of images or (images, labels) pairs; this module takes
just the images, up to a count, so neither user has to know the data pipeline.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import torch
from torch import Tensor

Batches = Iterable[Tensor] | Iterable[tuple[Tensor, Any]] | Iterable[list[Any]]
"""Batches of images: tensors (N, C, H, W) or (images, labels) pairs, as a DataLoader yields them."""


def iter_images(batches: Batches, limit: int) -> Iterator[Tensor]:
    """The image tensors of `batches`, cut so that exactly `limit` images (or all there are) come out."""
    if limit < 1:
        raise ValueError(f"number of calibration images must be >= 1, got {limit}")
    seen = 0
    for batch in batches:
        images = batch[0] if isinstance(batch, (tuple, list)) else batch
        if not isinstance(images, Tensor):
            raise TypeError(f"calibration batches must be tensors or (images, labels) pairs, got {type(images)}")
        take = min(limit - seen, images.shape[0])
        yield images[:take]
        seen += take
        if seen >= limit:
            return


def stack_images(batches: Batches, limit: int) -> Tensor:
    """Up to `limit` images of `batches` as one tensor."""
    chunks = list(iter_images(batches, limit))
    if not chunks:
        raise ValueError("calibration data yielded no images")
    return torch.cat(chunks)


def default_image_count(input_size: tuple[int, int, int], cap: int = 256) -> int:
    """How many images one calibration batch holds: `cap` for CIFAR-sized inputs, fewer for ImageNet-sized
    ones (about 2 M input pixels, e.g. 41 at 224x224), so every feature map of the batch fits in memory."""
    _, height, width = input_size
    return max(16, min(cap, (1 << 21) // (height * width)))
