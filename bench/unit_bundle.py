"""Unit bundles end to end: how big a bundle is, how long the standalone runner takes, how good the imported LUT is.

    .venv/bin/python bench/unit_bundle.py [--cases resnet56,resnet20,mobilenet_v2] [--repeats 30] [--validate 50]
        > bench/logs/bench_unit_bundle.log

For each case: `amc lut export-units` (time, MB, file counts), the bundle's `amc_lut_runner.py` run as a separate
process with only the stdlib, numpy and onnxruntime importable (torch, amc, hwmodel and onnx are blocked on its
PYTHONPATH), then `amc lut import` (the fit on the calibration networks, the fidelity on the validation
networks: MAPE, share within ±10%, Spearman vs the MACs proxy). Prints one table. A quick check of the script
itself: `--cases tiny --repeats 4 --validate 3 --calibrate 2`.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CASES = {
    "resnet56": ("resnet56", "1,28,28"),
    "resnet20": ("resnet20", "1,28,28"),
    "mobilenet_v2": ("torchvision:mobilenet_v2", "3,224,224"),
    "tiny": ("tiny", "3,16,16"),
}
BLOCKED = ("torch", "torchvision", "amc", "hwmodel", "onnx")


def amc(*args: str) -> tuple[str, float]:
    """`amc ...` as a subprocess: its stdout, and its wall time in seconds."""
    start = time.monotonic()
    found = subprocess.run(
        [sys.executable, "-m", "amc.cli.main", *args], cwd=ROOT, capture_output=True, text=True, check=False
    )
    if found.returncode:
        sys.exit(f"amc {' '.join(args)} failed:\n{found.stderr}")
    return found.stdout, time.monotonic() - start


def blocked_env(folder: Path) -> dict[str, str]:
    """An environment where importing anything but the stdlib, numpy and the runtime of ours fails."""
    for name in BLOCKED:
        (folder / name).mkdir(parents=True, exist_ok=True)
        (folder / name / "__init__.py").write_text(f"raise ImportError('{name} is blocked for the runner')\n")
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    return {**env, "PYTHONPATH": str(folder)}


def bundle_size(bundle: Path) -> tuple[float, dict[str, int]]:
    files = [path for path in bundle.rglob("*") if path.is_file() and path.name != "results.json"]
    counts = {part: sum(1 for path in files if path.parent.name == part) for part in ("unit", "rt", "net")}
    return sum(path.stat().st_size for path in files) / 1e6, counts


def field(text: str, name: str) -> str:
    """The figure after `name` on its line of `amc lut import`'s output."""
    for line in text.splitlines():
        if line.strip().startswith(name):
            return line.strip()[len(name) :].split()[0]
    return "-"


def run_case(label: str, args: argparse.Namespace, work: Path, env: dict[str, str]) -> dict[str, object]:
    model, size = CASES[label]
    bundle = work / label
    flags = ["--repeats", str(args.repeats), "--calibrate", str(args.calibrate), "--validate", str(args.validate)]
    _, export_s = amc("lut", "export-units", "--model", model, "--input-size", size, "--out", str(bundle),
                      "--no-progress", *flags)  # fmt: skip
    megabytes, counts = bundle_size(bundle)
    start = time.monotonic()
    runner = subprocess.run(
        [sys.executable, str(bundle / "amc_lut_runner.py"), str(bundle), "--quiet"], env=env, cwd=work, check=False
    )
    runner_s = time.monotonic() - start
    if runner.returncode:
        sys.exit(f"the runner failed on {label} (exit {runner.returncode})")
    text, import_s = amc("lut", "import", str(bundle / "results.json"), "--out", str(work / f"{label}.lut.json"))
    results = json.loads((bundle / "results.json").read_text())
    return {
        "case": f"{model}@{size.replace(',', 'x')}",
        "export_s": export_s,
        "mb": megabytes,
        **counts,
        "runner_s": runner_s,
        "import_s": import_s,
        "runtime": f"{results['settings']['runtime']} {results['fingerprint'].get('onnxruntime', '')}",
        "mape": field(text, "MAPE"),
        "within": field(text, "within ±10%"),
        "spearman": field(text, "Spearman"),
        "macs": text.split("(MACs proxy ")[1].split(")")[0] if "(MACs proxy " in text else "-",
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", default="resnet56,resnet20,mobilenet_v2", help=f"of {', '.join(CASES)}")
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--calibrate", type=int, default=5)
    parser.add_argument("--validate", type=int, default=50)
    parser.add_argument("--keep", help="write the bundles and LUTs into this folder instead of a temporary one")
    args = parser.parse_args()
    labels = [label.strip() for label in args.cases.split(",") if label.strip()]
    unknown = [label for label in labels if label not in CASES]
    if unknown:
        parser.error(f"unknown case(s) {unknown}; use {', '.join(CASES)}")
    print(f"# bench/unit_bundle.py {' '.join(sys.argv[1:])}  ({time.strftime('%Y-%m-%d %H:%M:%S %Z')})")
    print(f"# load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    with tempfile.TemporaryDirectory() as temporary:
        work = Path(args.keep) if args.keep else Path(temporary)
        work.mkdir(parents=True, exist_ok=True)
        env = blocked_env(Path(temporary) / "blocked")
        rows = [run_case(label, args, work, env) for label in labels]
    header = (
        f"{'case':<34} {'export s':>8} {'MB':>7} {'units':>6} {'rt':>4} {'nets':>4} {'runner s':>9} "
        f"{'import s':>8}  {'MAPE %':>7} {'±10%':>6} {'Spearman':>8} {'MACs':>6}  runtime"
    )
    print(header)
    print("-" * len(header))
    for row in rows:
        print(
            f"{row['case']:<34} {row['export_s']:>8.1f} {row['mb']:>7.2f} {row['unit']:>6} {row['rt']:>4} "
            f"{row['net']:>4} {row['runner_s']:>9.1f} {row['import_s']:>8.1f}  {row['mape']:>7} {row['within']:>6} "
            f"{row['spearman']:>8} {row['macs']:>6}  {row['runtime']}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
