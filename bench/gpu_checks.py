"""Every GPU check in one run (about 8 minutes on one data-center GPU): torch-cuda LUT fidelity and search speed.

1. LUT fidelity on the GPU: for resnet20 (3x32x32) and torchvision:mobilenet_v2 (3x224x224), at batch 1 and 32,
   a torch-cuda LUT is built (`build_lut`: every layer variant of the grid, then the per-network scale and
   offset on 5 whole-network runs) and judged as `amc lut validate` judges it (`validate_lut`: random pruned
   variants and variants in each budget band, timed in one interleaved pool with 5 calibration runs). Bars as in
   bench/lut_fidelity.py: MAPE <= 10%, >= 90% within ±10%, Spearman >= 0.95, better ranks than the MACs proxy.
   mobilenet_v2 uses a coarser channel grid by default (--mobilenet-round-to 32) so that its LUT fits the time.
2. Search speed: seconds per AMC episode of `amc search --config configs/smoke.yaml` with `--device cuda` and
   `--device cpu` (and the same search on resnet20), read from each run's episodes.csv.

Prints one table per check and writes everything it measured (fingerprint, per-case JSON, the searches' output)
to --log. Without CUDA it prints one line and exits 2. On the GPU machine:

    .venv/bin/python bench/gpu_checks.py --log bench/logs/bench_gpu_checks.log
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import TextIO

import torch

ROOT = Path(__file__).resolve().parent.parent
FIDELITY_CASES = {
    "resnet20@3x32x32": ("resnet20", (3, 32, 32)),
    "mobilenet_v2@3x224x224": ("torchvision:mobilenet_v2", (3, 224, 224)),
}
SEARCH_CASES = {
    "smoke (tiny)": [],
    "resnet20": ["--model", "resnet20", "--set", "search.round_to=8", "--set", "search.eval_images=512"],
}


class Log:
    """Prints to stdout and appends the same lines, plus raw records, to the log file."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.stream: TextIO = path.open("w")

    def __call__(self, line: str = "") -> None:
        print(line, flush=True)
        self.stream.write(line + "\n")
        self.stream.flush()

    def raw(self, kind: str, record: object) -> None:
        """A machine-readable record, in the log only."""
        self.stream.write(f"RAW {kind} {json.dumps(record, default=str)}\n")
        self.stream.flush()


def fidelity(args: argparse.Namespace, log: Log, deadline: float) -> list[str]:
    """Build and validate a torch-cuda LUT per case and batch; the table's rows."""
    from amc.costs.latency_tables import Grid, build_lut, load_network, validate_lut

    rows = []
    for case, (model, size) in FIDELITY_CASES.items():
        round_to = args.mobilenet_round_to if "mobilenet" in model else 8
        for batch in args.batches:
            if time.monotonic() > deadline:
                rows.append(f"{case:<24} {batch:>5}  skipped: the time budget (--budget-s) is spent")
                continue
            network = load_network(model, size, batch=batch)
            path = args.out_dir / f"{case.replace(':', '_')}_b{batch}_torch-cuda.json"
            path.unlink(missing_ok=True)
            grid = Grid(round_to)
            start = time.monotonic()
            lut = build_lut(
                network, path, "torch-cuda", 1, grid, args.warmup, args.repeats, calibrate=args.calibrate,
                progress=False, log=log, rounds=args.rounds,
            )  # fmt: skip
            built = time.monotonic() - start
            found = validate_lut(
                lut, network, args.samples, grid, 0, False, args.rounds, args.calibrate, args.band_samples
            )
            seconds = time.monotonic() - start
            log.raw("fidelity", {"case": case, "batch": batch, "round_to": round_to, "entries": len(lut.table.entries),
                                 "build_s": built, "total_s": seconds, **found.to_dict()})  # fmt: skip
            fit = found.fit
            scale, offset = (fit.scale, fit.offset_ms) if fit else (1.0, 0.0)
            reports = [("random", found.report)] + [(band.label, band.report) for band in found.bands]
            for label, r in reports:
                bars = {
                    "MAPE<=10": r.mape <= 10,
                    "within>=90%": r.within_10pct >= 0.9,
                    "rho>=0.95": r.spearman >= 0.95,
                    "beats MACs": r.spearman > r.macs_spearman and r.kendall > r.macs_kendall,
                }
                verdict = " ".join(f"{name}:{'ok' if ok else 'FAIL'}" for name, ok in bars.items())
                rows.append(
                    f"{case:<24} {batch:>5} {round_to:>5} {len(lut.table.entries):>7} {label:<8} {r.n:>3} "
                    f"{r.mape:>6.2f} {r.within_10pct * 100:>5.1f}% {r.spearman:>6.3f} {r.macs_spearman:>8.3f} "
                    f"{scale:>6.3f} {offset:>+8.3f} {built:>6.0f} {seconds:>6.0f}  {verdict}"
                )
    return rows


def search_speed(args: argparse.Namespace, log: Log, deadline: float) -> list[str]:
    """Seconds per AMC episode on cuda and on cpu, per case, through the CLI's --device flag."""
    rows = []
    env = {**os.environ, "AMC_CACHE": str(args.out_dir / "cache")}
    for case, extra in SEARCH_CASES.items():
        for device in ("cuda", "cpu"):  # cuda first: it trains the shared base model checkpoint faster
            left = deadline - time.monotonic()
            if left < 20:
                rows.append(f"{case:<14} {device:<5}  skipped: the time budget (--budget-s) is spent")
                continue
            out = args.out_dir / f"search-{case.split()[0]}-{device}"
            command = [
                sys.executable, "-m", "amc.cli.main", "search", "--config", "configs/smoke.yaml", "--device", device,
                "--out", str(out), "--no-progress", "--set", f"search.episodes={args.episodes}",
                "--set", "experiment.name=gpu-checks", *extra,
            ]  # fmt: skip
            if out.exists():
                subprocess.run(["rm", "-rf", str(out)], check=False)
            start = time.monotonic()
            try:
                done = subprocess.run(
                    command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=min(left, args.search_timeout_s)
                )
            except subprocess.TimeoutExpired:
                rows.append(f"{case:<14} {device:<5}  timed out after {min(left, args.search_timeout_s):.0f} s")
                continue
            wall = time.monotonic() - start
            record = {"case": case, "device": device, "command": command, "rc": done.returncode, "wall_s": wall}
            log.raw("search", {**record, "stdout": done.stdout[-4000:], "stderr": done.stderr[-4000:]})
            if done.returncode != 0:
                tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["(no output)"]
                rows.append(f"{case:<14} {device:<5}  failed (rc {done.returncode}): {tail[0][:90]}")
                continue
            with (out / "episodes.csv").open() as stream:
                episodes = list(csv.DictReader(stream))
            later = episodes[1:] or episodes  # the first episode pays for CUDA start-up and caches
            per = {key: statistics.median(float(row[key] or 0) for row in later) for key in ("wall_s", "eval_s")}
            rows.append(
                f"{case:<14} {device:<5} {len(episodes):>8} {per['wall_s']:>10.3f} {per['eval_s']:>8.3f} {wall:>8.1f}"
            )
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 32])
    parser.add_argument("--samples", type=int, default=20, help="random pruned variants per LUT (20)")
    parser.add_argument("--band-samples", type=int, default=5, help="variants per budget band (5)")
    parser.add_argument("--calibrate", type=int, default=5, help="whole-network runs per scale/offset fit (5)")
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--mobilenet-round-to", type=int, default=32, help="mobilenet_v2's channel grid (32)")
    parser.add_argument("--episodes", type=int, default=12, help="AMC episodes per timed search (12)")
    parser.add_argument("--search-timeout-s", type=float, default=120.0, help="limit per timed search (120)")
    parser.add_argument("--budget-s", type=float, default=450.0, help="skip what would start after this (450)")
    parser.add_argument("--skip", nargs="*", default=[], choices=["fidelity", "search"])
    parser.add_argument("--out-dir", type=Path, default=ROOT / "bench" / "results" / "gpu")
    parser.add_argument("--log", type=Path, default=ROOT / "bench" / "logs" / "bench_gpu_checks.log")
    args = parser.parse_args()
    if not torch.cuda.is_available():
        print("gpu_checks: torch sees no CUDA GPU here; run it on the GPU machine.", file=sys.stderr)
        return 2
    deadline = time.monotonic() + args.budget_s
    args.out_dir.mkdir(parents=True, exist_ok=True)
    log = Log(args.log)
    from hwmodel.lut import device_fingerprint

    found = device_fingerprint("torch-cuda", 1, 1)
    gpu = f"GPU {found['gpu_name']} (sm {found['compute_capability']}), driver {found['gpu_driver']}"
    libraries = f"CUDA {found['cuda_runtime']}, cuDNN {found['cudnn']}, torch {found['torch']}"
    log(f"{gpu}, {libraries}, TF32 convs {found['cudnn_tf32']}")
    log.raw("fingerprint", found)
    start = time.monotonic()
    if "fidelity" not in args.skip:
        rows = fidelity(args, log, deadline)
        log()
        log("torch-cuda LUT fidelity (judged with a fit timed alongside; build/total seconds)")
        log(
            f"{'case':<24} {'batch':>5} {'grid':>5} {'entries':>7} {'variants':<8} {'n':>3} {'MAPE%':>6} {'<=10%':>6} "
            f"{'rho':>6} {'MACs rho':>8} {'scale':>6} {'ovh ms':>8} {'build':>6} {'total':>6}  bars"
        )
        for row in rows:
            log(row)
    if "search" not in args.skip:
        rows = search_speed(args, log, deadline)
        log()
        log("seconds per AMC episode (median over episodes after the first), amc search --device cuda vs cpu")
        log(f"{'case':<14} {'device':<5} {'episodes':>8} {'s/episode':>10} {'eval s':>8} {'wall s':>8}")
        for row in rows:
            log(row)
    log(f"\ndone in {time.monotonic() - start:.0f} s; raw records (RAW lines) in {args.log}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
