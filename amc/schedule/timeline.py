"""A Distiller schedule as it unfolds: what fires at each epoch, the channels left and the masks on the weights.

Distiller keeps one mask per weight tensor (a later pruner replaces an earlier mask) and removes structures only
when a thinning extension runs. A `Step` is the state after one epoch's events: the physical channel count of
every coupling group (`kept`) and the mask on every masked layer (`masks`). Counts are Distiller's: a pruner
removes `floor(sparsity * n)` filters/channels (distiller/norms.py, num_structs_to_prune) and masks
`int(sparsity * numel)` elements (distiller/pruning/__init__.py, create_mask_level_criterion).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from hwmodel.spec import LayerSpec

ELEMENTS = "elements"
"""Element-wise mask: `int(sparsity * numel)` of the layer's weights are zero."""
BLOCKS = "blocks"
"""Block mask: `int(sparsity * blocks)` blocks of `block` weights each are zero."""
FILTERS = "filters"
"""`count` output filters (of the layer's group) are zero, waiting for a thinning that removes filters."""
CHANNELS = "channels"
"""`count` input channels (conv) or input columns (linear) are zero, waiting for a thinning that removes them."""


@dataclass(frozen=True)
class Mask:
    """The mask a pruner left on one layer's weights (Distiller keeps one per weight tensor)."""

    kind: str
    pruner: str
    epoch: int
    sparsity: float = 0.0
    count: int = 0
    group: int | None = None
    block: int = 1

    def zeros(self, spec: LayerSpec) -> int:
        """Zero weights of a layer shaped `spec` under this mask, counted as Distiller counts them."""
        numel = spec.weight_count
        if self.kind == ELEMENTS:
            return int(self.sparsity * numel)
        if self.kind == BLOCKS:
            return int(self.sparsity * (numel // self.block)) * self.block
        if self.kind == FILTERS:
            return min(self.count, spec.out_channels - 1) * (numel // spec.out_channels)
        inputs = spec.in_channels // spec.groups
        return min(self.count, inputs - 1) * (numel // inputs)

    def density(self, spec: LayerSpec) -> float:
        """Share of non-zero weights, from the schedule's own figures (its sparsity, or the structures masked)."""
        if self.kind in (ELEMENTS, BLOCKS):
            return 1.0 - self.sparsity
        return 1.0 - self.zeros(spec) / spec.weight_count


@dataclass(frozen=True)
class Action:
    """One thing that happened at an epoch: a pruner firing, a thinning, a mask-only pruner training."""

    name: str
    cls: str
    text: str
    sparsity: float | None = None


@dataclass(frozen=True)
class Step:
    """The state after every event of one epoch."""

    epoch: int
    actions: tuple[Action, ...]
    kept: Mapping[int, int] = field(default_factory=dict)
    masks: Mapping[str, Mask] = field(default_factory=dict)


def agp_sparsity(initial: float, final: float, epoch: int, start: int, end: int, frequency: int) -> float:
    """AGP's target at `epoch`, computed exactly as Distiller's AgpPruningRate.step does (same float operations)."""
    span = ((end - start - 1) // frequency) * frequency
    return final + (initial - final) * (1.0 - ((epoch - start) / span)) ** 3
