"""Datasets: the idx reader, splits, the built-in Fashion-MNIST and clear errors for missing data."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest
import torch

from amc.data import augment_batch, iterate_batches, load_dataset
from amc.data.idx import read_idx
from amc.data.registry import FASHION_MNIST_DIR
from amc.errors import UserError


def _write_idx(path: Path, array: np.ndarray, code: int) -> None:
    header = bytes([0, 0, code, array.ndim]) + b"".join(int(n).to_bytes(4, "big") for n in array.shape)
    with gzip.open(path, "wb") as handle:
        handle.write(header + array.tobytes())


def _mnist_folder(folder: Path, train: int = 40, test: int = 10) -> None:
    rng = np.random.default_rng(0)
    for prefix, count in (("train", train), ("t10k", test)):
        _write_idx(folder / f"{prefix}-images-idx3-ubyte.gz", rng.integers(0, 255, (count, 28, 28), dtype=np.uint8), 8)
        _write_idx(folder / f"{prefix}-labels-idx1-ubyte.gz", rng.integers(0, 10, (count,), dtype=np.uint8), 8)


def test_idx_round_trip(tmp_path: Path) -> None:
    array = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    _write_idx(tmp_path / "x.gz", array, 8)
    assert np.array_equal(read_idx(tmp_path / "x.gz"), array)


def test_mnist_style_folder_and_seeded_split(tmp_path: Path) -> None:
    _mnist_folder(tmp_path)
    first = load_dataset("mnist", tmp_path, search_val_size=8, split_seed=3)
    again = load_dataset("mnist", tmp_path, search_val_size=8, split_seed=3)
    other = load_dataset("mnist", tmp_path, search_val_size=8, split_seed=4)
    assert (len(first.train), len(first.search_val), len(first.test)) == (32, 8, 10)
    assert first.input_size == (1, 28, 28) and first.num_classes == 10
    assert torch.equal(first.search_val.images, again.search_val.images)
    assert not torch.equal(first.search_val.images, other.search_val.images)
    # search-val is carved out of TRAIN and never overlaps the training part
    train_rows = {bytes(image.numpy()) for image in first.train.images}
    assert not any(bytes(image.numpy()) in train_rows for image in first.search_val.images)


@pytest.mark.skipif(not FASHION_MNIST_DIR.is_dir(), reason="apt-get install dataset-fashion-mnist")
def test_builtin_fashion_mnist_is_complete() -> None:
    bundle = load_dataset("fashion-mnist")
    assert (len(bundle.train) + len(bundle.search_val), len(bundle.test)) == (60_000, 10_000)
    assert len(bundle.search_val) == 5000 and bundle.input_size == (1, 28, 28)
    images, labels = next(iterate_batches(bundle.test, 64))
    assert images.shape == (64, 1, 28, 28) and abs(images.mean().item()) < 0.5 and labels.max() <= 9


def test_missing_datasets_say_where_to_put_them(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="cifar-10-batches-py"):
        load_dataset("cifar10", tmp_path)
    with pytest.raises(UserError, match="dataset-fashion-mnist"):
        load_dataset("fashion-mnist", tmp_path)
    with pytest.raises(UserError, match="amc list datasets"):
        load_dataset("imagenet21k")


def test_synthetic_is_marked_for_tests_only(synthetic_bundle) -> None:
    from amc.data import list_datasets

    description = {info.name: info.description for info in list_datasets()}["synthetic"]
    assert "TESTS ONLY" in description
    assert synthetic_bundle.input_size == (3, 16, 16)


def test_augment_shifts_and_flips_within_bounds() -> None:
    images = torch.arange(2 * 1 * 4 * 4, dtype=torch.float32).view(2, 1, 4, 4)
    out = augment_batch(images, torch.Generator().manual_seed(0), pad=1)
    assert out.shape == images.shape
    assert set(out.unique().tolist()) <= set(images.unique().tolist()) | {0.0}
