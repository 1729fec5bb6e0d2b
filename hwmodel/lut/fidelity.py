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


SCALE_RANGE = (0.5, 2.0)
"""A fitted scale outside this range means the runs were disturbed, not that the network is that different."""


def fit_affine(predicted: Sequence[float], measured: Sequence[float]) -> tuple[float, float]:
    """(scale, offset ms) with measured ≈ scale x predicted + offset: Theil-Sen (the median of pairwise slopes,
    robust to one noisy run), the scale clipped to SCALE_RANGE, then the median offset at that scale.

    The scale is the network's in-context slowdown: inside a network each layer's weights and input come from
    further down the memory hierarchy than when the layer is timed alone, a cost that grows with the layers.
    """
    x, y = np.asarray(predicted, dtype=float), np.asarray(measured, dtype=float)
    slopes = [(y[j] - y[i]) / (x[j] - x[i]) for i in range(len(x)) for j in range(i + 1, len(x)) if x[j] != x[i]]
    scale = float(np.clip(np.median(slopes), *SCALE_RANGE)) if slopes else 1.0
    return scale, float(np.median(y - scale * x))


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
