"""Which channel counts a search visits, so a LUT can measure them ahead of time.

A search keeps multiples of `step` (the rounding, 8 by default, times any group divisor) between a keep-ratio
floor (`lbound`, AMC's 0.2) and the full width, plus the full width itself. A layer whose input comes from one
group and output from another sees a 2-D grid of (in, out) pairs; the floor bounds it.
"""

from __future__ import annotations

from collections.abc import Iterable

from hwmodel.spec import LayerSpec


def channel_choices(channels: int, step: int, lbound: float) -> tuple[int, ...]:
    """Kept counts of a `channels`-wide group: multiples of `step` from floor(lbound*channels) up, and `channels`."""
    if step < 1 or not 0.0 < lbound <= 1.0:
        raise ValueError(f"step must be >= 1 and 0 < lbound <= 1 (got step={step}, lbound={lbound})")
    lowest = max(step, int(lbound * channels) // step * step)
    return tuple(sorted({*range(lowest, channels + 1, step), channels}))


def nearest_choice(choices: tuple[int, ...], target: float) -> int:
    """The choice closest to `target` channels (ties: the larger)."""
    return min(choices, key=lambda choice: (abs(choice - target), -choice))


def sums(options: Iterable[tuple[int, ...]], fixed: int = 0) -> tuple[int, ...]:
    """Every total `fixed + one choice from each option set` (the width of a concatenation of groups)."""
    totals = {fixed}
    for choices in options:
        totals = {total + choice for total in totals for choice in choices}
    return tuple(sorted(totals))


def layer_grid(spec: LayerSpec, in_choices: tuple[int, ...], out_choices: tuple[int, ...]) -> list[LayerSpec]:
    """Every pruned variant of one layer; a depthwise layer follows its own group (in = out / multiplier)."""
    if spec.op == "dwconv":
        return [spec.with_channels(channels, channels) for channels in out_choices]
    return [spec.with_channels(i, o) for i in in_choices for o in out_choices]
