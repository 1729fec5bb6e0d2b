"""Lottery tickets: iterative magnitude pruning with rewinding (imp) and the round loop with its run folder."""

from amc.lottery.imp import Masks, full_masks, prunable, prune_global, random_reinit_, rewind_, sparsity, train_masked
from amc.lottery.rounds import LotteryResult, LotteryRow, LotterySettings, check_settings, run_lottery

__all__ = ["LotteryResult", "LotteryRow", "LotterySettings", "Masks", "check_settings", "full_masks", "prunable",
           "prune_global", "random_reinit_", "rewind_", "run_lottery", "sparsity", "train_masked"]  # fmt: skip
