"""Datasets by name, each split into train / search-val / test.

search-val is a fixed, seeded held-out part of the TRAIN set: searches score candidates on it, so the test
set is only ever touched by final reports (AMC holds out 5,000 CIFAR training images the same way).
"""

from __future__ import annotations

import os
import pickle
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset, Subset

from amc.data.batches import TensorImageDataset
from amc.data.idx import find_idx_file, read_idx
from amc.errors import UserError

FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")


@dataclass(frozen=True)
class DataBundle:
    name: str
    train: Dataset
    search_val: Dataset
    test: Dataset
    input_size: tuple[int, int, int]
    num_classes: int

    @property
    def augmentable(self) -> bool:
        """In-memory tensor datasets get batch-level augmentation during training."""
        return isinstance(self.train, TensorImageDataset)


@dataclass(frozen=True)
class DatasetInfo:
    name: str
    description: str
    load: Callable[[Path | None, int], tuple[Dataset, Dataset, int]]
    """(root, image_size) -> (full train set, test set, num_classes)."""


_DATASETS: dict[str, DatasetInfo] = {}


def register_dataset(name: str, description: str) -> Callable:
    def decorator(load: Callable) -> Callable:
        _DATASETS[name] = DatasetInfo(name, description, load)
        return load

    return decorator


def list_datasets() -> list[DatasetInfo]:
    return list(_DATASETS.values())


def _idx_pair(folder: Path, prefix: str) -> tuple[torch.Tensor, torch.Tensor] | None:
    images_path = find_idx_file(folder, f"{prefix}-images-idx3-ubyte")
    labels_path = find_idx_file(folder, f"{prefix}-labels-idx1-ubyte")
    if images_path is None or labels_path is None:
        return None
    images_array, labels_array = read_idx(images_path), read_idx(labels_path)
    if images_array.ndim != 3 or labels_array.ndim != 1 or len(images_array) != len(labels_array):
        raise UserError(
            f"idx files {images_path} (shape {images_array.shape}) and {labels_path} (shape {labels_array.shape}) "
            "do not pair up: expected N images of H x W and N labels.",
            fix="use the matching images and labels files of one split from the dataset's official release.",
        )
    images = torch.from_numpy(images_array.copy()).unsqueeze(1)
    labels = torch.from_numpy(labels_array.astype(np.int64))
    return images, labels


def _load_idx_folder(folder: Path, dataset: str, fix: str) -> tuple[Dataset, Dataset, int]:
    train = _idx_pair(folder, "train")
    test = _idx_pair(folder, "t10k")
    if train is None or test is None:
        raise UserError(
            f"dataset {dataset!r}: no idx files (train-images-idx3-ubyte[.gz], t10k-images-idx3-ubyte[.gz] and "
            f"their labels) in {folder}.",
            fix=fix,
        )
    mean, std = (0.2860,), (0.3530,)
    if dataset == "mnist":
        mean, std = (0.1307,), (0.3081,)
    return TensorImageDataset(*train, mean, std), TensorImageDataset(*test, mean, std), 10


@register_dataset("fashion-mnist", "Fashion-MNIST 60k/10k 28x28 grayscale (Debian dataset-fashion-mnist; default)")
def _fashion_mnist(root: Path | None, image_size: int) -> tuple[Dataset, Dataset, int]:
    folder = root or Path(os.environ.get("AMC_FASHION_MNIST", FASHION_MNIST_DIR))
    return _load_idx_folder(
        folder,
        "fashion-mnist",
        "install it with `apt-get install dataset-fashion-mnist` (puts the files in "
        f"{FASHION_MNIST_DIR}) or point data.root / AMC_FASHION_MNIST at a folder holding the idx files.",
    )


@register_dataset("mnist", "any MNIST-style idx folder (data.root): train-*/t10k-* images and labels")
def _mnist(root: Path | None, image_size: int) -> tuple[Dataset, Dataset, int]:
    if root is None:
        raise UserError("dataset 'mnist' needs data.root.", fix="set data.root to a folder holding the idx files.")
    return _load_idx_folder(root, "mnist", "put the four idx files (optionally .gz) in that folder.")


CIFAR10_FILES = ("data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5", "test_batch")


class _CifarUnpickler(pickle.Unpickler):
    """CIFAR-10's python batches are pickles (the official format): load only what they hold (a dict of bytes,
    lists and one numpy array), never arbitrary code."""

    ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("_codecs", "encode"),  # bytes in protocol-2 pickles written by Python 3
    }

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}")
        return super().find_class(module, name)


def read_cifar_batch(path: Path) -> tuple[np.ndarray, list[int]]:
    """(N x 3 x 32 x 32 uint8 images, N labels) of one CIFAR-10 python batch; anything else is a UserError."""
    fix = (
        f"replace {path.name} with the one from the official cifar-10-python.tar.gz (unpack it into data.root; "
        "nothing is downloaded at run time)."
    )
    try:
        with open(path, "rb") as handle:
            entry = _CifarUnpickler(handle, encoding="latin1").load()
    except Exception as error:  # noqa: BLE001 - garbage, truncated or foreign: the same user problem
        text = " ".join(str(error).split())[:200]
        raise UserError(
            f"CIFAR-10 batch {path} is not a CIFAR-10 python batch ({type(error).__name__}: {text}).", fix=fix
        ) from None
    if isinstance(entry, dict):
        entry = {key.decode("latin1") if isinstance(key, bytes) else key: value for key, value in entry.items()}
    data = entry.get("data") if isinstance(entry, dict) else None
    labels = entry.get("labels") if isinstance(entry, dict) else None
    if (
        not isinstance(data, np.ndarray)
        or data.dtype != np.uint8
        or data.ndim != 2
        or data.shape[1] != 3 * 32 * 32
        or not isinstance(labels, list)
        or len(labels) != len(data)
        or not all(isinstance(label, int) and 0 <= label < 10 for label in labels)
    ):
        raise UserError(
            f"CIFAR-10 batch {path} does not hold CIFAR-10 data: expected a dict with 'data' (N x 3072 uint8) and "
            "'labels' (N integers 0-9).",
            fix=fix,
        )
    return data.reshape(-1, 3, 32, 32), labels


@register_dataset("cifar10", "CIFAR-10 from a local folder in its standard python format (data.root)")
def _cifar10(root: Path | None, image_size: int) -> tuple[Dataset, Dataset, int]:
    folder = root or Path(os.environ.get("AMC_CIFAR10", "data/cifar10"))
    if folder.name == "cifar-10-batches-py":
        folder = folder.parent
    batches = folder / "cifar-10-batches-py"
    missing = [name for name in CIFAR10_FILES if not (batches / name).is_file()]
    if missing:
        raise UserError(
            f"dataset 'cifar10': {batches} does not hold the CIFAR-10 python batches (missing {', '.join(missing)}).",
            fix=f"unpack cifar-10-python.tar.gz so that {batches}/data_batch_1 ... test_batch exist "
            "(or set data.root / AMC_CIFAR10 to the folder that holds cifar-10-batches-py). Nothing is downloaded.",
        )
    mean, std = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)
    sets = []
    for names in (CIFAR10_FILES[:-1], CIFAR10_FILES[-1:]):
        parts = [read_cifar_batch(batches / name) for name in names]
        images = torch.from_numpy(np.concatenate([data for data, _ in parts])).contiguous()
        labels = torch.tensor([label for _, part in parts for label in part])
        sets.append(TensorImageDataset(images, labels, mean, std))
    return sets[0], sets[1], 10


@register_dataset("imagefolder", "ImageNet-style folders: data.root/train/<class>/*.jpg and data.root/val/<class>/")
def _imagefolder(root: Path | None, image_size: int) -> tuple[Dataset, Dataset, int]:
    from torchvision import transforms

    if root is None or not (root / "train").is_dir():
        raise UserError(
            f"dataset 'imagefolder': {root}/train is not a folder.",
            fix="set data.root to a folder with train/<class>/ and val/<class>/ (or test/<class>/) image folders.",
        )
    test_dir = root / "val" if (root / "val").is_dir() else root / "test"
    if not test_dir.is_dir():
        raise UserError(
            f"dataset 'imagefolder': neither {root}/val nor {root}/test exists.",
            fix="add a val/<class>/ folder with held-out images.",
        )
    image_size = image_size or 224
    normalise = transforms.Normalize((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
    transform = transforms.Compose(
        [
            transforms.Resize(int(image_size * 8 / 7)),
            transforms.CenterCrop(image_size),
            transforms.ToTensor(),
            normalise,
        ]
    )
    train, test = (_image_folder(folder, transform) for folder in (root / "train", test_dir))
    if train.classes != test.classes:
        raise UserError(
            f"dataset 'imagefolder': {root / 'train'} and {test_dir} have different classes "
            f"({len(train.classes)} vs {len(test.classes)}).",
            fix="give both the same <class>/ sub-folders.",
        )
    return train, test, len(train.classes)


def _image_folder(folder: Path, transform: Callable) -> Any:
    import torchvision

    try:
        return torchvision.datasets.ImageFolder(str(folder), transform=transform, loader=load_image)
    except FileNotFoundError as error:  # no class folders, or no image file in any of them
        raise UserError(
            f"dataset 'imagefolder': {folder} holds no images ({error}).",
            fix=f"put images (.jpg, .png, ...) in {folder}/<class>/ sub-folders, one per class.",
        ) from None


def load_image(path: str) -> Any:
    """ImageFolder's loader, with an unreadable image a UserError naming it instead of a traceback mid-run."""
    from PIL import Image, UnidentifiedImageError

    try:
        with open(path, "rb") as handle:
            image = Image.open(handle)
            return image.convert("RGB")
    except (OSError, UnidentifiedImageError, ValueError) as error:
        raise UserError(
            f"image {path} cannot be read ({type(error).__name__}: {error}).",
            fix="delete or replace the file (it is not an image PIL can open, or it is truncated).",
        ) from None


@register_dataset("synthetic", "FOR TESTS ONLY: random class prototypes plus noise, 3x16x16; not real data")
def _synthetic(root: Path | None, image_size: int) -> tuple[Dataset, Dataset, int]:
    generator = torch.Generator().manual_seed(1234)
    size = image_size or 16
    # smooth (4x4 upsampled) prototypes, so a few-pixel shift keeps the class recognisable
    coarse = torch.rand(10, 3, 4, 4, generator=generator) * 255
    prototypes = torch.nn.functional.interpolate(coarse, size=(size, size), mode="bilinear", align_corners=False)

    def make(count: int) -> TensorImageDataset:
        labels = torch.randint(0, 10, (count,), generator=generator)
        noise = torch.randn(count, 3, size, size, generator=generator) * 40
        images = (prototypes[labels] + noise).clamp(0, 255).to(torch.uint8)
        return TensorImageDataset(images, labels, (0.5, 0.5, 0.5), (0.25, 0.25, 0.25))

    return make(2048), make(512), 10


def dataset_info(name: str) -> DatasetInfo:
    if name not in _DATASETS:
        raise UserError(
            f"unknown dataset {name!r}.", fix=f"use one of {', '.join(sorted(_DATASETS))} (`amc list datasets`)."
        )
    return _DATASETS[name]


def load_dataset(
    name: str, root: str | Path | None = None, search_val_size: int = 5000, split_seed: int = 0, image_size: int = 0
) -> DataBundle:
    """Load a dataset by name and split its training set into train and a seeded search-val part."""
    full_train, test, num_classes = dataset_info(name).load(Path(root) if root else None, image_size)
    if not 0 < search_val_size < len(full_train):  # type: ignore[arg-type]
        raise UserError(
            f"data.search_val_size={search_val_size} does not fit the {len(full_train)} training images of {name}.",  # type: ignore[arg-type]
            fix="choose a search-val size between 1 and the training-set size minus 1.",
        )
    order = torch.randperm(len(full_train), generator=torch.Generator().manual_seed(split_seed))  # type: ignore[arg-type]
    val_index, train_index = order[:search_val_size].sort().values, order[search_val_size:].sort().values
    train: Dataset
    search_val: Dataset
    if isinstance(full_train, TensorImageDataset):
        train, search_val = full_train.subset(train_index), full_train.subset(val_index)
    else:
        train, search_val = Subset(full_train, train_index.tolist()), Subset(full_train, val_index.tolist())
    sample, _ = test[0]
    input_size = tuple(int(v) for v in sample.shape)
    return DataBundle(name, train, search_val, test, input_size, num_classes)  # type: ignore[arg-type]
