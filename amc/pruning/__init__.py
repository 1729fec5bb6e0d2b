"""Apply a strategy: physically thinner networks, channel selection, adaptive BN, fine-grained masks, export."""

from amc.pruning.adaptive_bn import adaptive_bn_
from amc.pruning.apply import PrunedNetwork, prune_network
from amc.pruning.export import export_onnx, load_thinned, save_thinned
from amc.pruning.finegrained import (
    LayerDensities,
    apply_masks_,
    magnitude_masks,
    mask_densities,
    remove_masks_,
    weight_densities,
)
from amc.pruning.reconstruction import LayerFit, ReconstructionReport
from amc.pruning.selection import ChannelSelector, LeastSquares, NormSelector, get_selector
from amc.pruning.strategy import LayerKeep, Strategy, StrategyMetadata, candidate_counts, round_channels
from amc.pruning.thinning import PruningError, ThinResult, thin, thin_with_report

__all__ = [
    "ChannelSelector",
    "LayerDensities",
    "LayerFit",
    "LayerKeep",
    "LeastSquares",
    "NormSelector",
    "PrunedNetwork",
    "PruningError",
    "ReconstructionReport",
    "Strategy",
    "StrategyMetadata",
    "ThinResult",
    "adaptive_bn_",
    "apply_masks_",
    "candidate_counts",
    "export_onnx",
    "get_selector",
    "load_thinned",
    "magnitude_masks",
    "mask_densities",
    "prune_network",
    "remove_masks_",
    "round_channels",
    "save_thinned",
    "thin",
    "thin_with_report",
    "weight_densities",
]
