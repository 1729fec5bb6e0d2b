"""LUT build time for everything a ResNet-56 search can visit (round_to 8, keep ratio >= 0.2), both backends.

Runs `amc lut build` (full grid + the 5-run overhead fit) into a temporary folder and prints the wall time.
Bar: minutes, not hours. Run on a quiet machine:

    .venv/bin/python bench/lut_build_time.py
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from amc.cli.main import main as amc
from hwmodel.lut import LatencyTable
from hwmodel.lut.timing import contention_note


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="resnet56")
    parser.add_argument("--backends", nargs="+", default=["torch", "onnxruntime"])
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--calibrate", type=int, default=5)
    args = parser.parse_args()
    print(contention_note(getattr(args, "threads", 1)) or "machine looks quiet (load average below the free cores)")
    with tempfile.TemporaryDirectory() as folder:
        for backend in args.backends:
            out = Path(folder) / f"{backend}.json"
            start = time.monotonic()
            command = ["lut", "build", "--model", args.model, "--backend", backend, "--out", str(out)]
            status = amc(
                [*command, "--repeats", str(args.repeats), "--calibrate", str(args.calibrate), "--no-progress"]
            )
            seconds = time.monotonic() - start
            if status:
                return status
            entries = len(LatencyTable.load(out).entries)
            print(
                f"== {args.model} {backend}: {entries} entries + overhead fit in {seconds:.1f} s "
                f"({seconds / 60:.1f} min) [{'ok' if seconds < 3600 else 'FAIL'}: minutes, not hours]"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
