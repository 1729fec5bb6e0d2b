"""Calibrate a roofline profile for this machine's CPU with three micro-benchmarks (PyTorch, fixed threads).

peak: a 1024x1024 float32 GEMM (the best a real kernel reaches, not the datasheet peak); bandwidth: copying a
64 MiB tensor (read + write, beyond the caches); per-layer overhead: a 1x1 conv on a 1x1x1 input (pure dispatch).
`amc lut calibrate-roofline` writes the result as a profile in configs/devices/, every number marked measured.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from pathlib import Path

import torch
import yaml
from torch import nn

from hwmodel.lut.backends import torch_threads
from hwmodel.lut.fingerprint import device_fingerprint
from hwmodel.lut.timing import time_callable

GEMM_SIZE = 1024
COPY_BYTES = 64 * 2**20


@dataclass(frozen=True)
class CpuCalibration:
    peak_gflops: float
    bandwidth_gbs: float
    layer_overhead_us: float
    threads: int
    cpu_model: str


def calibrate_cpu(threads: int = 1, repeats: int = 10) -> CpuCalibration:
    """Measure GEMM throughput, copy bandwidth and per-op dispatch on this CPU with `threads` threads."""
    a, b = torch.randn(GEMM_SIZE, GEMM_SIZE), torch.randn(GEMM_SIZE, GEMM_SIZE)
    product = torch.empty(GEMM_SIZE, GEMM_SIZE)
    source = torch.empty(COPY_BYTES // 4)
    target = torch.empty_like(source)
    tiny, tiny_input = nn.Conv2d(1, 1, 1, bias=False).eval(), torch.randn(1, 1, 1, 1)
    with torch_threads(threads), torch.inference_mode():
        gemm = time_callable(lambda: torch.mm(a, b, out=product), warmup=2, repeats=repeats)
        copy = time_callable(lambda: target.copy_(source), warmup=2, repeats=repeats)
        dispatch = time_callable(lambda: tiny(tiny_input), warmup=20, repeats=max(repeats, 100))
    return CpuCalibration(
        peak_gflops=2 * GEMM_SIZE**3 / (gemm.median_ms * 1e6),
        bandwidth_gbs=2 * COPY_BYTES / (copy.median_ms * 1e6),
        layer_overhead_us=dispatch.median_ms * 1e3,
        threads=threads,
        cpu_model=device_fingerprint("torch", threads)["cpu_model"],
    )


def roofline_profile(calibration: CpuCalibration) -> dict[str, object]:
    """The calibration as a roofline profile (the YAML mapping), each number with how it was measured."""
    when = datetime.date.today().isoformat()
    where = f"on {calibration.cpu_model} with {calibration.threads} thread(s), torch {torch.__version__}, {when}"
    return {
        "kind": "roofline",
        "description": f"this machine's CPU ({calibration.cpu_model}, {calibration.threads} thread(s)), "
        "calibrated by `amc lut calibrate-roofline`",
        "peak_gflops": {
            "value": round(calibration.peak_gflops, 2),
            "source": f"measured: median {GEMM_SIZE}x{GEMM_SIZE} float32 GEMM (torch.mm) {where}",
            "derived": False,
        },
        "bandwidth_gbs": {
            "value": round(calibration.bandwidth_gbs, 2),
            "source": f"measured: median copy of a {COPY_BYTES // 2**20} MiB tensor, read + write bytes, {where}",
            "derived": False,
        },
        "layer_overhead_us": {
            "value": round(calibration.layer_overhead_us, 2),
            "source": f"measured: median eager call of a 1x1 conv on a 1x1x1 input (dispatch only), {where}",
            "derived": False,
        },
        "runtime": {
            "value": "torch",
            "source": "The micro-benchmarks of `amc lut calibrate-roofline` run PyTorch eager on this CPU.",
            "derived": False,
        },
        "precision": {
            "value": "fp32",
            "source": "The micro-benchmarks time float32 (torch.mm and a float32 copy).",
            "derived": False,
        },
    }


def write_profile(profile: dict[str, object], path: Path) -> None:
    """Write a profile atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    header = "# Roofline profile measured on this machine by `amc lut calibrate-roofline`; re-run it to refresh.\n"
    temporary.write_text(header + yaml.safe_dump(profile, sort_keys=False, width=110))
    temporary.replace(path)
