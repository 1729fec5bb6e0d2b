"""How much one network's timing moves on this machine from one measurement to the next.

    .venv/bin/python bench/timing_noise.py [--model resnet20 --input-size 1,28,28] [--samples 40]

One ONNX Runtime session of the dense network (1 thread, the LUT backend's settings), timed `--samples` times as
30-repeat medians (and minima) 0.2 s apart: unpinned, then pinned to each core in turn. On a quiet dedicated machine
the spread is a few per cent; a larger one means the host's speed moves under the timings (the load average does
not show that), and no LUT can be judged against the ±10% bars there.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import torch

from amc.costs.latency_tables import load_network
from hwmodel.lut.backends import OrtBackend


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="resnet20")
    parser.add_argument("--input-size", default="1,28,28")
    parser.add_argument("--samples", type=int, default=40)
    args = parser.parse_args()
    torch.set_num_threads(1)
    size = tuple(int(value) for value in args.input_size.split(","))
    network = load_network(args.model, size)  # type: ignore[arg-type]
    timer = OrtBackend(1).network_timer(network.model, (1, *size))
    print(f"{args.model} {args.input_size}, onnxruntime 1 thread, load average {os.getloadavg()[0]:.2f}")
    everywhere = sorted(os.sched_getaffinity(0))
    for cores in [everywhere] + [[core] for core in everywhere]:
        os.sched_setaffinity(0, cores)
        medians, minima = [], []
        for _ in range(args.samples):
            found = timer(30)
            medians.append(found.median_ms)
            minima.append(found.min_ms)
            time.sleep(0.2)
        where = "unpinned" if cores == everywhere else f"core {cores[0]}"
        for name, values in (("median", medians), ("min", minima)):
            spread = max(values) / min(values)
            print(f"  {where:<9} {name:<6} {min(values):.3f}-{max(values):.3f} ms, max/min {spread:.2f}")
    os.sched_setaffinity(0, everywhere)
    return 0


if __name__ == "__main__":
    sys.exit(main())
