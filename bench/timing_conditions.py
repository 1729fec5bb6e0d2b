"""Why PyTorch timings keep freed memory and flush denormals: the same networks timed under each condition.

For MobileNetV2 at 224x224 (or --model): the dense network and N random pruned variants, each timed end to end
(batch 1, one thread, interleaved rounds) twice, in a fresh process per condition:
  defaults       glibc's malloc as it comes, denormals computed
  retain         freed memory kept in the process (hwmodel.lut.allocator)
  retain+flush   and denormals flushed to zero while timing (what every amc timing does)
Printed: dense latency, the variants' range, how well the two passes agree (Spearman between them, median
per-network difference), and how much slower the same networks time again after the process has built and timed
32 more ("late vs early", median). The network is untrained (as in bench/lut_fidelity.py). Run on a quiet machine:

    .venv/bin/python bench/timing_conditions.py [--model torchvision:mobilenet_v2] [--variants 12]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import subprocess
import sys

import numpy as np

CONDITIONS = ("defaults", "retain", "retain+flush")


def child(model: str, size: tuple[int, int, int], condition: str, variants: int) -> None:
    import torch
    from scipy.stats import spearmanr

    import hwmodel.lut.backends as backends
    import hwmodel.lut.timing as timing
    from amc.latency_tables import Grid, load_network, random_kept
    from amc.pruning import thin

    torch.set_num_threads(1)
    if condition == "defaults":
        timing.retain_freed_memory = lambda: "system"  # type: ignore[assignment]
    if condition != "retain+flush":
        backends.flushing_denormals = contextlib.nullcontext  # type: ignore[assignment]
    network = load_network(model, size)
    rng = np.random.default_rng(0)
    kept = [{}] + [random_kept(network.table, Grid(), rng) for _ in range(variants)]
    backend = backends.TorchBackend(1, 10, 30)

    def timed(variants: list[dict[int, int]]) -> np.ndarray:
        timers = [backend.network_timer(thin(network.model, network.table, k), (1, *size)) for k in variants]
        return np.array([m.median_ms for m in timing.interleaved(timers, 30, 3)])

    first, second = timed(kept), timed(kept)
    timed([random_kept(network.table, Grid(), rng) for _ in range(32)])  # the process ages: 32 more networks
    late = timed(kept)
    print(json.dumps({
        "dense_ms": [float(first[0]), float(second[0])],
        "variants_ms": [float(first[1:].min()), float(first[1:].max())],
        "spearman": float(spearmanr(first[1:], second[1:])[0]),
        "median_diff_pct": float(np.median(np.abs(second - first) / first) * 100),
        "late_vs_early_pct": float(np.median(late / first - 1) * 100),
    }))  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="torchvision:mobilenet_v2")
    parser.add_argument("--input-size", default="3,224,224")
    parser.add_argument("--variants", type=int, default=12)
    parser.add_argument("--child", choices=CONDITIONS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    size = tuple(int(v) for v in args.input_size.split(","))
    if args.child:
        child(args.model, size, args.child, args.variants)  # type: ignore[arg-type]
        return 0
    from hwmodel.lut.timing import contention_note

    print(contention_note(1) or "machine looks quiet (load average below the free cores)")
    print(f"{args.model} {args.input_size}, dense + {args.variants} random variants, timed twice per condition")
    header = f"{'condition':<14} {'dense ms (pass 1, 2)':>22} {'variants ms':>14} {'pass-to-pass rho':>17}"
    print(f"{header} {'median diff':>12} {'late vs early':>14}")
    for condition in CONDITIONS:
        command = [sys.executable, __file__, "--model", args.model, "--input-size", args.input_size,
                   "--variants", str(args.variants), "--child", condition]  # fmt: skip
        output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
        result = json.loads(output.strip().splitlines()[-1])
        dense = "{:.2f}, {:.2f}".format(*result["dense_ms"])
        spread = "{:.2f}-{:.2f}".format(*result["variants_ms"])
        agreement = f"{result['spearman']:>17.3f} {result['median_diff_pct']:>11.2f}%"
        print(f"{condition:<14} {dense:>22} {spread:>14} {agreement} {result['late_vs_early_pct']:>+13.2f}%")
    return 0


if __name__ == "__main__":
    sys.exit(main())
