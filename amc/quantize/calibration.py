"""Calibration images for INT8 post-training quantization: a seeded sample of the TRAINING split.

Never the test set (that would tune the ranges on what the accuracy is reported on) and never search-val (the
split sensitivity and `--auto-fp32` choose by): a caller passes `DataBundle.train`, whose search-val part is
already held out.
"""

from __future__ import annotations

import math

import numpy as np
from torch.utils.data import Dataset

from amc.data import iterate_batches
from amc.errors import UserError

CALIBRATION_BATCH = 32
"""Images per calibration batch handed to ONNX Runtime (ranges do not depend on it; memory does)."""


def check_calibration_images(images: object, flag: str = "--calibration-images") -> int:
    """A calibration image count as an int >= 1, or a UserError (bool, float, NaN, zero and negative refused)."""
    if isinstance(images, float) and math.isfinite(images) and images.is_integer():
        images = int(images)
    if isinstance(images, bool) or not isinstance(images, int) or images < 1:
        raise UserError(
            f"{flag} is {images!r}; INT8 calibration needs a whole number of training images >= 1.",
            fix=f"use {flag} N with N >= 1, e.g. 512 (ranges settle after a few hundred images).",
        )
    return images


def calibration_batches(
    train: Dataset, images: int, batch_size: int = CALIBRATION_BATCH, seed: int = 0
) -> list[np.ndarray]:
    """`images` training images (all of them when fewer) in a seeded shuffled order, as NCHW float32 batches."""
    count = check_calibration_images(images)
    return [
        np.ascontiguousarray(batch.numpy(), dtype=np.float32)
        for batch, _ in iterate_batches(train, batch_size, shuffle=True, seed=seed, limit=count)
    ]
