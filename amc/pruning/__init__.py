"""Apply a strategy: physically thinner networks, channel selection, adaptive BN, fine-grained masks, export."""

from amc.pruning.adaptive_bn import adaptive_bn_
from amc.pruning.reconstruction import LayerFit, ReconstructionReport
from amc.pruning.selection import ChannelSelector, LeastSquares, NormSelector, get_selector
from amc.pruning.strategy import LayerKeep, Strategy, StrategyMetadata, round_channels
from amc.pruning.thinning import PruningError, ThinResult, thin, thin_with_report

__all__ = [
    "ChannelSelector",
    "LayerFit",
    "LayerKeep",
    "LeastSquares",
    "NormSelector",
    "PruningError",
    "ReconstructionReport",
    "Strategy",
    "StrategyMetadata",
    "ThinResult",
    "adaptive_bn_",
    "get_selector",
    "round_channels",
    "thin",
    "thin_with_report",
]
