"""What moves a PyTorch-eager timing: the clock (the shared machine's speed drifts) or the copy (where a network's
memory lands, how long the process has worked)? And do the allocator and denormal settings matter?

For MobileNetV2 at 224x224 (or --model), in a fresh process per setting: fresh copies A of the dense network and
N random pruned variants are timed (batch 1, one thread, interleaved rounds); the process then builds and times
32 more networks; then fresh copies B of the same networks are built, and A and B are timed together in one
interleaved pool. Printed:
  A later vs A       the same copies about a minute later: the machine's drift (the clock)
  B vs A, together   copies built late in an aged process vs early ones, timed side by side (the copy):
                     the median difference, and the median absolute one
  rho B~A, together  whether the two copies rank the variants alike when timed side by side
  rho A later~A      whether the same copies rank alike a minute apart
Settings: defaults (glibc's malloc as it comes, denormals computed), retain (freed memory kept in the process,
hwmodel.lut.allocator), retain+flush (and denormals flushed to zero while timing: what every amc timing does).
The network is untrained (as in bench/lut_fidelity.py). Run on a quiet machine:

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
    from amc.costs.latency_tables import Grid, load_network, random_kept
    from amc.pruning import thin

    torch.set_num_threads(1)
    if condition == "defaults":
        timing.retain_freed_memory = lambda: "system"  # type: ignore[assignment]
    if condition != "retain+flush":
        backends.flushing_denormals = contextlib.nullcontext  # type: ignore[assignment]
    network = load_network(model, size)
    rng = np.random.default_rng(0)
    kept: list[dict[int, int]] = [{}] + [random_kept(network.table, Grid(), rng) for _ in range(variants)]
    backend = backends.TorchBackend(1, 10, 30)

    def copies(variants: list[dict[int, int]]) -> list[backends.Timer]:
        return [backend.network_timer(thin(network.model, network.table, k), (1, *size)) for k in variants]

    def timed(timers: list[backends.Timer]) -> np.ndarray:
        return np.array([m.median_ms for m in timing.interleaved(timers, 30, 3)])

    early = copies(kept)
    first = timed(early)
    timed(copies([random_kept(network.table, Grid(), rng) for _ in range(32)]))  # the process ages
    together = timed(early + copies(kept))
    later, fresh = together[: len(kept)], together[len(kept) :]
    print(json.dumps({
        "dense_ms": float(first[0]),
        "variants_ms": [float(first[1:].min()), float(first[1:].max())],
        "drift_pct": float(np.median(later / first - 1) * 100),
        "copy_pct": float(np.median(fresh / later - 1) * 100),
        "copy_abs_pct": float(np.median(np.abs(fresh / later - 1)) * 100),
        "copy_spearman": float(spearmanr(later[1:], fresh[1:])[0]),
        "drift_spearman": float(spearmanr(first[1:], later[1:])[0]),
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
    print(f"{args.model} {args.input_size}, dense + {args.variants} random variants, per setting")
    header = f"{'condition':<14} {'dense ms':>9} {'variants ms':>12} {'A later vs A':>13} {'B vs A, together':>20}"
    print(f"{header} {'rho B~A, together':>18} {'rho A later~A':>14}")
    for condition in CONDITIONS:
        command = [sys.executable, __file__, "--model", args.model, "--input-size", args.input_size,
                   "--variants", str(args.variants), "--child", condition]  # fmt: skip
        output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
        r = json.loads(output.strip().splitlines()[-1])
        spread = "{:.2f}-{:.2f}".format(*r["variants_ms"])
        copy = f"{r['copy_pct']:+.2f}% (|{r['copy_abs_pct']:.2f}%|)"
        print(
            f"{condition:<14} {r['dense_ms']:>9.2f} {spread:>12} {r['drift_pct']:>+12.2f}% {copy:>20} "
            f"{r['copy_spearman']:>18.3f} {r['drift_spearman']:>14.3f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
