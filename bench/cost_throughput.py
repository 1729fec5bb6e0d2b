"""Cached cost lookups per second, per cost model: the search asks thousands per episode.

Prices every layer of random pruned ResNet-56 variants once (filling each model's cache), then times repeated
lookups of the same specs. Bar: >= 100,000 cached per-layer lookups per second. The LUT model is filled on
demand with 1 repeat per entry (its values do not matter here, only the lookup path).

    .venv/bin/python bench/cost_throughput.py
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from amc.costs.latency_tables import Grid, load_network, random_kept
from hwmodel.base import CostModel
from hwmodel.lut import LatencyTable, LutCostModel
from hwmodel.registry import create_cost_model

ANALYTIC = [
    "macs",
    "params",
    "roofline:rpi4-a72",
    "systolic:scalesim-32x32",
    "energy:eyeriss",
    "sparse:systolic:scalesim-32x32",
]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--variants", type=int, default=100, help="random pruned ResNet-56 variants")
    parser.add_argument("--rounds", type=int, default=20, help="passes over all their specs when timing")
    args = parser.parse_args()
    torch.set_num_threads(1)

    network = load_network("resnet56")
    rng = np.random.default_rng(0)
    variants = [network.table.specs(random_kept(network.table, Grid(), rng)) for _ in range(args.variants)]
    specs = [spec for variant in variants for spec in variant]
    with tempfile.TemporaryDirectory() as folder:
        lut = LutCostModel(LatencyTable.create("torch", 1, 0, 1), Path(folder) / "lut.json")
        models: list[CostModel] = [create_cost_model(name) for name in ANALYTIC] + [lut]
        failed = False
        for model in models:
            for spec in specs:
                model.layer_cost(spec)
            start = time.perf_counter()
            for _ in range(args.rounds):
                for spec in specs:
                    model.layer_cost(spec)
            per_second = args.rounds * len(specs) / (time.perf_counter() - start)
            start = time.perf_counter()
            for variant in variants:
                model.network_cost(variant)
            networks = len(variants) / (time.perf_counter() - start)
            failed |= per_second < 100_000
            print(
                f"{model.name.split('/')[-1]:<32} {per_second:>12,.0f} layer lookups/s  {networks:>9,.0f} "
                f"networks/s ({len(variants[0])} layers)  [{'ok' if per_second >= 100_000 else 'FAIL'}: >= 100,000/s]"
            )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
