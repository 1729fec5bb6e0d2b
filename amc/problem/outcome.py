"""What scoring one set of decisions gives back: the result, its cost, accuracy, reward and timings."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Union

import torch

from amc.pruning import LayerDensities, Strategy
from amc.quantize.bits import LayerBits

if TYPE_CHECKING:
    from amc.problem.joint import JointResult

Result = Union[Strategy, LayerDensities, LayerBits, "JointResult"]
"""A channel strategy, per-layer weight densities (element-wise), bit-widths (bits) or both channels and bits
(joint)."""


@dataclass(frozen=True)
class Outcome:
    """One scored variant: everything a run folder row and the best result need."""

    decisions: dict[int, float]
    """Per decision unit (group or layer index): the kept channel count or the weight density."""
    keep_ratios: tuple[float, ...]
    """Per step, in the problem's order: kept share of the channels, or the density."""
    cost: float
    accuracy: float
    reward: float
    result: Result
    timings: dict[str, float]
    """Seconds spent pricing (cost_s), pruning (prune_s), tuning (tune_s, when asked) and scoring (eval_s)."""
    wall_s: float
    weights: dict[str, torch.Tensor] | None = field(default=None, compare=False, repr=False)
    """The scored network's state dict, when asked for (NetAdapt continues from its best candidate)."""
