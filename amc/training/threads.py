"""How many torch threads a run uses: a number, or `auto`."""

from __future__ import annotations

import os

import torch

from amc.errors import UserError


def apply_thread_setting(setting: int | str) -> int:
    """Set torch's intra-op threads and return how many: `setting` threads, or for "auto" one per core."""
    if setting == "auto":
        threads = os.cpu_count() or 1
    else:
        try:
            threads = int(setting)
        except ValueError:
            raise UserError(f"threads {setting!r} is not a number.", fix="use a whole number >= 1, or auto.") from None
    torch.set_num_threads(threads)
    return threads
