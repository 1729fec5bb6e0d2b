"""Reader for the idx format of MNIST and Fashion-MNIST, gzipped or not.

torchvision's MNIST classes expect their own unpacked folder layout; Debian's `dataset-fashion-mnist`
ships the original .gz files, so we read those directly (a few lines, no copy on disk).
"""

from __future__ import annotations

import gzip
import math
import zlib
from pathlib import Path

import numpy as np

from amc.errors import UserError

_DTYPES: dict[int, np.dtype | str | type] = {
    0x08: np.uint8,
    0x09: np.int8,
    0x0B: ">i2",
    0x0C: ">i4",
    0x0D: ">f4",
    0x0E: ">f8",
}

_FIX = (
    "replace it with the original file (Debian: `apt-get install --reinstall dataset-fashion-mnist`; or copy "
    "train-/t10k- images and labels, .gz or unpacked, from the dataset's official release into data.root)."
)


def read_idx(path: Path) -> np.ndarray:
    """The array in an idx file; a file that is not one (garbage, truncated, a broken .gz) is a UserError."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as handle:
            data = handle.read()
    except (OSError, EOFError, zlib.error) as error:  # gzip.BadGzipFile is an OSError; a cut .gz is an EOFError
        raise UserError(f"idx file {path} cannot be read ({type(error).__name__}: {error}).", fix=_FIX) from None
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _DTYPES:
        raise UserError(f"{path} is not an idx file (bad magic number {data[:4].hex() or 'none'}).", fix=_FIX)
    ndim = data[3]
    header = 4 + 4 * ndim
    if ndim == 0 or len(data) < header:
        raise UserError(f"idx file {path} has a broken header ({ndim} dimensions, {len(data)} bytes).", fix=_FIX)
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    dtype = np.dtype(_DTYPES[data[2]])
    expected = header + math.prod(shape) * dtype.itemsize
    if len(data) != expected:
        raise UserError(
            f"idx file {path} is {'truncated' if len(data) < expected else 'too long'}: its header promises shape "
            f"{shape} ({expected:,} bytes) but it holds {len(data):,} bytes.",
            fix=_FIX,
        )
    array = np.frombuffer(data, dtype=dtype, offset=header)
    return array.reshape(shape)


def find_idx_file(folder: Path, stem: str) -> Path | None:
    """`train-images-idx3-ubyte` with or without .gz."""
    for candidate in (folder / f"{stem}.gz", folder / stem):
        if candidate.is_file():
            return candidate
    return None
