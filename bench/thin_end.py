"""Does a LUT err where searches land? A search's best strategy and thin budget-band variants, priced by a fresh
LUT and measured end to end in one pool, beside random variants.

    .venv/bin/python bench/thin_end.py --run runs/demo [--model resnet20 --input-size 1,28,28] [--backend onnxruntime]

A fresh LUT (every grid entry timed now, the way `amc lut build` times them) is fitted on the 5 usual calibration
runs timed in the same pool as: the run's best strategy, 8 variants each in the 30-40% and 40-50% bands and 10
random variants. Prints the mean signed error (bias: + means the LUT over-prices) and the MAPE per group, and the
run's own LUT price of its best beside the measured share of dense. If the fresh LUT prices the best right while
the run's LUT under-priced it, the miss came from the run's LUT entries (the search picks what its LUT
under-prices), not from the LUT's structure.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

from amc.costs import latency_tables as lt
from amc.pruning import Strategy
from hwmodel.lut import LatencyTable, LutCostModel, fit_affine
from hwmodel.lut.timing import contention_note


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", type=Path, required=True, help="a finished search's run folder")
    parser.add_argument("--model", default="resnet20")
    parser.add_argument("--input-size", default="1,28,28")
    parser.add_argument("--backend", default="onnxruntime")
    parser.add_argument("--seed", type=int, default=3)
    args = parser.parse_args()
    print(contention_note(1) or "machine looks quiet (load average below the free cores)")
    torch.set_num_threads(1)
    size = tuple(int(value) for value in args.input_size.split(","))
    network = lt.load_network(args.model, size)  # type: ignore[arg-type]
    grid = lt.Grid()
    lut = LutCostModel(LatencyTable.create(args.backend, 1, 10, 30))
    lt._measure_entries(lut, lt.search_grid(network.table, grid), 3, False)
    dense_sum = lt.lut_sum(lut, network.table.specs())

    def share(kept: dict[int, int]) -> float:
        return lt.lut_sum(lut, network.table.specs(kept)) / dense_sum

    rng = np.random.default_rng(args.seed)
    best = Strategy.load(args.run / "best_strategy.json").kept_channels(network.table)
    bands = [lt.band_kept(network.table, grid, share, band, rng) for band in ((0.3, 0.4), (0.4, 0.5)) for _ in range(8)]
    thin = [kept for kept in bands if kept is not None]
    rand = [lt.random_kept(network.table, grid, rng) for _ in range(10)]
    calibration = lt.calibration_variants(network.table, grid, 5, 0)
    variants = calibration + [best] + thin + rand
    measured = lt.measure_variants(lut, network, variants, 3)
    sums = [lt.lut_sum(lut, network.table.specs(kept)) for kept in variants]
    scale, offset = fit_affine(sums[:5], measured[:5])
    predicted = [scale * total + offset for total in sums]
    groups = {"run's best": [5], f"thin (n={len(thin)})": list(range(6, 6 + len(thin))),
              "random (n=10)": list(range(6 + len(thin), len(variants)))}  # fmt: skip
    print(f"fresh {args.backend} LUT fit: latency = {scale:.3f} x layer sum {offset:+.3f} ms (5 calibration runs)")
    for name, chosen in groups.items():
        errors = [100 * (predicted[i] / measured[i] - 1) for i in chosen]
        print(f"  {name:<14} bias {np.mean(errors):+6.1f}%   MAPE {np.mean(np.abs(errors)):5.1f}%")
    summary = json.loads((args.run / "summary.json").read_text())
    print(
        f"run's best: {summary['best_cost'] / summary['budget']['dense_cost']:.3f} of dense by the run's LUT, "
        f"{predicted[5] / predicted[0]:.3f} by the fresh LUT, {measured[5] / measured[0]:.3f} measured now "
        f"({measured[5]:.3f} ms vs dense {measured[0]:.3f} ms)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
