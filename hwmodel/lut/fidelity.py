"""How well a LUT predicts whole networks: the numbers `amc lut validate` prints.

MAPE and the share within ±10% say whether a budget in ms means what it says; Spearman and Kendall say whether
the LUT ranks pruned variants the way the device does (what a search needs), next to the same for MACs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
from scipy import stats


@dataclass(frozen=True)
class FidelityReport:
    n: int
    mape: float
    within_10pct: float
    spearman: float
    kendall: float
    macs_spearman: float
    macs_kendall: float

    def to_dict(self) -> dict[str, float | int]:
        return asdict(self)


def fit_offset(predicted: Sequence[float], measured: Sequence[float]) -> float:
    """The per-network overhead (ms): the median of measured - predicted, robust to one noisy run."""
    return float(np.median(np.asarray(measured) - np.asarray(predicted)))


def mape(predicted: Sequence[float], measured: Sequence[float]) -> float:
    """Mean absolute percentage error, in %."""
    truth = np.asarray(measured, dtype=float)
    return float(np.mean(np.abs(np.asarray(predicted, dtype=float) - truth) / truth) * 100)


def fidelity_report(predicted: Sequence[float], measured: Sequence[float], macs: Sequence[float]) -> FidelityReport:
    """Errors of `predicted` against `measured` latencies (ms), and rank agreement of predictions and of MACs."""
    truth = np.asarray(measured, dtype=float)
    guess = np.asarray(predicted, dtype=float)
    if len(truth) < 2 or len(truth) != len(guess) or len(truth) != len(macs):
        raise ValueError("need at least two networks, with one prediction, measurement and MAC count each")
    relative = np.abs(guess - truth) / truth
    return FidelityReport(
        n=len(truth),
        mape=float(relative.mean() * 100),
        within_10pct=float((relative <= 0.10).mean()),
        spearman=float(stats.spearmanr(guess, truth).statistic),
        kendall=float(stats.kendalltau(guess, truth).statistic),
        macs_spearman=float(stats.spearmanr(macs, truth).statistic),
        macs_kendall=float(stats.kendalltau(macs, truth).statistic),
    )
