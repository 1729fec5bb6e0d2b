"""The one way decisions become a network: channels removed, then weight masks, then BatchNorm re-estimated.

Every caller — a search scoring a candidate, `amc.apply`, `amc prune`, `amc evaluate`, a search's result —
goes through `prune_network`, so a strategy gives the same network wherever it is applied.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass

from torch import nn

from amc.graph import LayerTable
from amc.pruning.adaptive_bn import adaptive_bn_
from amc.pruning.calibration import Batches
from amc.pruning.finegrained import apply_masks_, magnitude_masks, remove_masks_
from amc.pruning.granularity import MaskPattern
from amc.pruning.reconstruction import ReconstructionReport, ReferenceCache
from amc.pruning.thinning import thin_with_report


@dataclass(frozen=True)
class PrunedNetwork:
    model: nn.Module
    reconstruction: ReconstructionReport | None = None
    """The least-squares refit's report, when channels were selected that way."""
    masked_layers: int = 0


def prune_network(
    model: nn.Module,
    table: LayerTable,
    kept: Mapping[int, int] | None = None,
    densities: Mapping[str, float] | None = None,
    *,
    selection: str = "l1",
    calibration: Batches | None = None,
    bn_images: Batches | None = None,
    bn_count: int | None = None,
    keep_masks: bool = False,
    pattern: MaskPattern | None = None,
    reference: ReferenceCache | None = None,
) -> PrunedNetwork:
    """A new network from `model`: coupling group g keeps kept[g] channels (ranked by `selection`; lstsq refits
    the next layers on `calibration`), layer `name` keeps densities[name] of its weights (smallest magnitudes
    zeroed in the groups of `pattern`, element-wise by default: baked into the weights, or with `keep_masks` left
    attached so they hold while fine-tuning), and,
    with `bn_images`, BatchNorm statistics re-estimated on `bn_count` of them (default: all); `reference` keeps
    what the refit records of `model` on `calibration` from one call to the next (same result, less work)."""
    report = None
    if kept:
        thinned = thin_with_report(
            model, table, kept, selection=selection, calibration=calibration, reference=reference
        )
        network, report = thinned.model, thinned.reconstruction
    else:
        network = copy.deepcopy(model)
    sparsity = {name: 1.0 - density for name, density in (densities or {}).items() if density < 1.0}
    if sparsity:
        apply_masks_(network, magnitude_masks(network, sparsity, pattern=pattern))
        if not keep_masks:
            remove_masks_(network)
    if bn_images is not None:
        count = bn_count if bn_count is not None else sum(len(batch) for batch in bn_images)  # type: ignore[arg-type]
        adaptive_bn_(network, bn_images, num_images=count)
    return PrunedNetwork(network, report, len(sparsity))
