"""LUT fidelity on this machine: LUT sums vs end-to-end latency of random pruned variants, per backend.

For each model and backend: a LUT (filled on demand by the same measurement routine `amc lut build` uses) with
the per-network scale and offset `amc lut build` stores (5 whole-network runs), then `amc lut validate`'s
comparison on N random pruned variants and on variants drawn in each budget band (30-40%, 40-50%, 50-60% of
the dense latency by the LUT: where searches land), per input shape (batch 1, 1 thread),
timed in one interleaved pool with 5 more calibration runs that the scale and offset are fitted on.
Bars (judged with that fit, per row): MAPE <= 10%, >= 90% within ±10%, Spearman >= 0.95,
and a higher rank correlation than the MACs proxy. The stored fit's MAPE and share within ±10%
are printed too: they add the machine's drift between calibrating and validating. `--precision int8` does the
same for INT8 LUTs (units and whole networks timed as QDQ INT8 graphs; onnxruntime and openvino by default).
Run on a quiet machine:

    .venv/bin/python bench/lut_fidelity.py --samples 50
    .venv/bin/python bench/lut_fidelity.py --samples 50 --precision int8
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

from amc.costs.latency_tables import Grid, calibrate_overhead, load_network, validate_lut
from hwmodel.lut import LatencyTable, LutCostModel, structure_key
from hwmodel.lut.fingerprint import PRECISIONS
from hwmodel.lut.model import require_precision
from hwmodel.lut.timing import contention_note

CASES = {
    "resnet20@1x28x28": ("resnet20", (1, 28, 28)),
    "resnet20@3x32x32": ("resnet20", (3, 32, 32)),
    "mobilenet_v2@3x224x224": ("torchvision:mobilenet_v2", (3, 224, 224)),
}
MIN_RANKED = 5
"""Distinct variants a band needs before its ranking is judged (near the thin end few distinct ones exist)."""
VERDICT = {True: "ok", False: "FAIL", None: "n/a"}

DEFAULT_BACKENDS = {"fp32": ["torch", "onnxruntime"], "int8": ["onnxruntime", "openvino"]}
"""The backends compared when --backends is not given, per precision (torch times float32 only)."""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", nargs="+", default=list(CASES), choices=list(CASES), help="model@input shape")
    parser.add_argument("--backends", nargs="+", help="default: torch onnxruntime (fp32), onnxruntime openvino (int8)")
    parser.add_argument("--precision", choices=PRECISIONS, default="fp32", help="what the LUTs time layers as (fp32)")
    parser.add_argument("--samples", type=int, default=50, help="random pruned variants per model and backend")
    parser.add_argument("--band-samples", type=int, default=10, help="variants per budget band (30-60%% of dense)")
    parser.add_argument("--calibrate", type=int, default=5, help="whole-network runs per scale/offset fit (5)")
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=3, help="interleaved passes of every measurement (3)")
    parser.add_argument("--out-dir", type=Path, default=Path("bench/results"), help="where the LUT files go")
    parser.add_argument("--reuse", action="store_true", help="reuse LUT files (and overheads) from --out-dir")
    args = parser.parse_args()
    backends = args.backends or DEFAULT_BACKENDS[args.precision]
    print(contention_note(getattr(args, "threads", 1)) or "machine looks quiet (load average below the free cores)")
    if args.precision != "fp32":
        print(f"precision {args.precision}: LUT units and whole networks timed as QDQ INT8 graphs")
    torch.set_num_threads(args.threads)

    rows = []
    for case in args.cases:
        model, size = CASES[case]
        network = load_network(model, size)
        for backend in backends:
            suffix = "" if args.precision == "fp32" else f"_{args.precision}"
            path = args.out_dir / f"{case.replace(':', '_')}_{backend}{suffix}.json"
            if args.reuse and path.exists():
                lut = LutCostModel.open(path)
                require_precision(lut.table, path, args.precision)
            else:
                path.unlink(missing_ok=True)
                table = LatencyTable.create(backend, args.threads, 10, args.repeats, precision=args.precision)
                lut = LutCostModel(table, path)
            start = time.monotonic()
            if args.calibrate and structure_key(network.table.specs()) not in lut.table.overheads:
                calibrate_overhead(lut, network, args.calibrate, Grid(), seed=0, rounds=args.rounds)
            found = validate_lut(
                lut, network, args.samples, Grid(), 0, True, args.rounds, args.calibrate, args.band_samples
            )
            rows.append((case, backend, found, time.monotonic() - start))

    header = f"{'case':<24} {'backend':<12} {'variants':<8} {'n':>3} {'MAPE%':>6} {'<=10%':>6} {'rho':>6} "
    header += (
        f"{'tau':>6} {'MACs rho':>8} {'MACs tau':>8} {'scale':>6} {'ovh ms':>7} {'stored: MAPE%':>13} {'<=10%':>6} "
    )
    print(header + f"{'secs':>5}  bars")
    failed = False
    for case, backend, found, seconds in rows:
        fit = found.fit
        scale, offset = (fit.scale, fit.offset_ms) if fit else (1.0, 0.0)
        reports = [("random", found.report, found.stored)] + [(band.label, band.report, None) for band in found.bands]
        for label, r, stored_report in reports:
            stored = (
                f"{stored_report.mape:>13.2f} {stored_report.within_10pct * 100:>5.1f}%" if stored_report else " " * 20
            )
            ranked = r.n >= MIN_RANKED
            bars: dict[str, bool | None] = {
                "MAPE<=10": r.mape <= 10,
                "within>=90%": r.within_10pct >= 0.9,
                "rho>=0.95": r.spearman >= 0.95 if ranked else None,
                "beats MACs": r.spearman > r.macs_spearman and r.kendall > r.macs_kendall if ranked else None,
            }
            failed |= False in bars.values()
            verdict = " ".join(f"{name}:{VERDICT[ok]}" for name, ok in bars.items())
            print(
                f"{case:<24} {backend:<12} {label:<8} {r.n:>3} {r.mape:>6.2f} {r.within_10pct * 100:>5.1f}% "
                f"{r.spearman:>6.3f} {r.kendall:>6.3f} {r.macs_spearman:>8.3f} {r.macs_kendall:>8.3f} {scale:>6.3f} "
                f"{offset:>+7.3f} {stored} {seconds:>5.0f}  " + verdict
            )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
