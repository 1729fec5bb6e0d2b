"""LUT repeatability: build the same LUT twice on this machine (as `amc lut build` does) and compare entries.

Bar: the two builds agree within 5% per entry (median of |a - b| / a over all entries). Also prints the 90th
percentile, the worst entry and the share of entries within 5%. Run on a quiet machine:

    .venv/bin/python bench/lut_repeatability.py --model resnet20 --backends torch onnxruntime
"""

from __future__ import annotations

import argparse
import random
import sys

import numpy as np
import torch

from amc.costs.latency_tables import Grid, load_network, search_grid
from hwmodel.lut import LatencyTable, LutCostModel
from hwmodel.lut.timing import contention_note


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="resnet20")
    parser.add_argument("--input-size", type=lambda text: tuple(int(v) for v in text.split(",")))
    parser.add_argument("--backends", nargs="+", default=["torch", "onnxruntime"])
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=3, help="interleaved passes, as `amc lut build` (3)")
    parser.add_argument("--limit", type=int, default=0, help="compare a random subset of this many entries (0: all)")
    args = parser.parse_args()
    print(contention_note(getattr(args, "threads", 1)) or "machine looks quiet (load average below the free cores)")
    torch.set_num_threads(args.threads)

    network = load_network(args.model, args.input_size)
    specs = search_grid(network.table, Grid())
    if args.limit:
        specs = random.Random(0).sample(specs, min(args.limit, len(specs)))
    failed = False
    for backend_name in args.backends:
        builds = []
        for _ in range(2):
            lut = LutCostModel(LatencyTable.create(backend_name, args.threads, 10, args.repeats))
            lut.measure_many(specs, args.rounds)
            builds.append(np.array([lut.table.entries[spec.key()].median_ms for spec in specs]))
        first, second = builds
        relative = np.abs(second - first) / first
        median = float(np.median(relative))
        failed |= median > 0.05
        print(
            f"{args.model} {backend_name}: {len(specs)} entries built twice; per-entry |difference| median "
            f"{median * 100:.2f}%, p90 {np.percentile(relative, 90) * 100:.2f}%, worst {relative.max() * 100:.1f}%, "
            f"within 5%: {(relative <= 0.05).mean() * 100:.1f}%  [{'ok' if median <= 0.05 else 'FAIL'}: median <= 5%]"
        )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
