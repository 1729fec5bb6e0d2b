"""Argument types shared by subcommands: each turns bad text into a UserError that names the flag and the fix."""

from __future__ import annotations

import argparse


def input_size(text: str) -> tuple[int, int, int]:
    """Parse `C,H,W` (e.g. `3,224,224`)."""
    parts = text.replace("x", ",").split(",")
    try:
        values = tuple(int(part) for part in parts)
    except ValueError:
        values = ()
    if len(values) != 3 or min(values) < 1:
        raise argparse.ArgumentTypeError(
            f"bad input size {text!r}: expected three positive integers C,H,W such as 3,224,224 or 1,28,28"
        )
    return values  # type: ignore[return-value]


def positive_int(text: str) -> int:
    """A whole number >= 1 (a count: classes, threads, repeats)."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number >= 1")
    return value
