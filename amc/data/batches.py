"""Fast batching for in-memory image tensors: no worker processes, no per-sample Python transforms.

On 2 CPU cores a DataLoader with PIL transforms costs more than the small CNNs we train; slicing a
uint8 tensor and normalising a whole batch at once does not.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import Tensor
from torch.utils.data import Dataset


class TensorImageDataset(Dataset):
    """Images as a uint8 (N, C, H, W) tensor and int64 labels; items come out normalised float32."""

    def __init__(self, images: Tensor, labels: Tensor, mean: tuple[float, ...], std: tuple[float, ...]) -> None:
        if images.dtype != torch.uint8 or images.dim() != 4:
            raise ValueError("TensorImageDataset wants uint8 images shaped (N, C, H, W)")
        self.images = images
        self.labels = labels.long()
        self.mean = torch.tensor(mean).view(1, -1, 1, 1)
        self.std = torch.tensor(std).view(1, -1, 1, 1)

    def __len__(self) -> int:
        return len(self.labels)

    def normalise(self, images: Tensor) -> Tensor:
        return (images.float().div_(255.0) - self.mean) / self.std

    def batch(self, indices: Tensor) -> tuple[Tensor, Tensor]:
        return self.normalise(self.images[indices]), self.labels[indices]

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor]:
        images, labels = self.batch(torch.tensor([index]))
        return images[0], labels[0]

    def subset(self, indices: Tensor) -> TensorImageDataset:
        return TensorImageDataset(
            self.images[indices],
            self.labels[indices],
            tuple(self.mean.flatten().tolist()),
            tuple(self.std.flatten().tolist()),
        )


def iterate_batches(
    dataset: Dataset, batch_size: int, shuffle: bool = False, seed: int = 0, limit: int | None = None
) -> Iterator[tuple[Tensor, Tensor]]:
    """(images, labels) batches over the first `limit` items (in a seeded order when `shuffle`)."""
    count = len(dataset) if limit is None else min(limit, len(dataset))  # type: ignore[arg-type]
    if shuffle:
        order = torch.randperm(len(dataset), generator=torch.Generator().manual_seed(seed))[:count]  # type: ignore[arg-type]
    else:
        order = torch.arange(count)
    if isinstance(dataset, TensorImageDataset):
        for start in range(0, count, batch_size):
            yield dataset.batch(order[start : start + batch_size])
        return
    loader = torch.utils.data.DataLoader(
        torch.utils.data.Subset(dataset, order.tolist()), batch_size=batch_size, shuffle=False, num_workers=0
    )
    yield from loader


def augment_batch(images: Tensor, generator: torch.Generator, pad: int = 2, flip: bool = True) -> Tensor:
    """Random translation by up to `pad` pixels and random horizontal flip, per image, on a whole batch."""
    n, _, h, w = images.shape
    padded = torch.nn.functional.pad(images, (pad, pad, pad, pad))
    dy = torch.randint(0, 2 * pad + 1, (n,), generator=generator)
    dx = torch.randint(0, 2 * pad + 1, (n,), generator=generator)
    rows = (dy.view(n, 1) + torch.arange(h).view(1, h)).view(n, 1, h, 1)
    cols = (dx.view(n, 1) + torch.arange(w).view(1, w)).view(n, 1, 1, w)
    batch_index = torch.arange(n).view(n, 1, 1, 1)
    channel_index = torch.arange(images.shape[1]).view(1, -1, 1, 1)
    out = padded[batch_index, channel_index, rows, cols]
    if flip:
        flips = torch.rand(n, generator=generator) < 0.5
        out[flips] = out[flips].flip(-1)
    return out
