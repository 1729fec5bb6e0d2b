"""Reader for the idx format of MNIST and Fashion-MNIST, gzipped or not.

torchvision's MNIST classes expect their own unpacked folder layout; Debian's `dataset-fashion-mnist`
ships the original .gz files, so we read those directly (a few lines, no copy on disk).
"""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np

_DTYPES: dict[int, np.dtype | str | type] = {
    0x08: np.uint8,
    0x09: np.int8,
    0x0B: ">i2",
    0x0C: ">i4",
    0x0D: ">f4",
    0x0E: ">f8",
}


def read_idx(path: Path) -> np.ndarray:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as handle:
        data = handle.read()
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _DTYPES:
        raise ValueError(f"{path} is not an idx file (bad magic number)")
    ndim = data[3]
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    array = np.frombuffer(data, dtype=np.dtype(_DTYPES[data[2]]), offset=4 + 4 * ndim)
    return array.reshape(shape)


def find_idx_file(folder: Path, stem: str) -> Path | None:
    """`train-images-idx3-ubyte` with or without .gz."""
    for candidate in (folder / f"{stem}.gz", folder / stem):
        if candidate.is_file():
            return candidate
    return None
