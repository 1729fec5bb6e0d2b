"""The device fingerprint a LUT carries: everything that makes a measured latency true here and not elsewhere.

A table measured on another CPU, with another thread count, or under another library version prices the wrong
device; loading one is an error unless the caller says otherwise (`allow_foreign`).
"""

from __future__ import annotations

import os
import platform
import re
from pathlib import Path
from typing import Any

from hwmodel.errors import HwModelError
from hwmodel.lut.allocator import retain_freed_memory

BACKENDS = ("torch", "onnxruntime", "openvino")
"""torch: PyTorch eager on CPU; onnxruntime: ONNX Runtime's CPU execution provider; openvino: OpenVINO's CPU
plugin (the `openvino` extra)."""

TIMING_METHOD = "2"
"""How entries are timed, recorded in every LUT so that one timed another way is refused rather than mixed in.
1: one layer after another; 2: interleaved rounds, PyTorch with freed memory kept and denormals flushed,
ONNX Runtime units without their blocked-layout border conversions (hwmodel.lut.nchwc)."""

ORT_PROVIDER = "CPUExecutionProvider"
ORT_OPTIMIZATION = "ORT_ENABLE_ALL"
OPENVINO_DEVICE = "CPU"
OPENVINO_PRECISION = "f32"
"""OpenVINO may pick bf16 on CPUs that have it; LUTs time float32, so the hint is set and recorded."""


def cpu_model() -> str:
    """The CPU's marketing name, from /proc/cpuinfo where there is one."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(("model name", "Hardware", "Model")):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _onednn_version() -> str:
    import torch

    found = re.search(r"(?:MKL-DNN|oneDNN) v([\d.]+)", torch.__config__.show())
    return found.group(1) if found else "none"


def device_fingerprint(backend: str, threads: int) -> dict[str, str]:
    """The fingerprint of this machine for `backend` run with `threads` threads (all values text)."""
    if backend not in BACKENDS:
        raise HwModelError(f"unknown LUT backend {backend!r}.", fix=f"use one of {', '.join(BACKENDS)}.")
    fingerprint = {
        "backend": backend,
        "cpu_model": cpu_model(),
        "logical_cores": str(os.cpu_count() or 0),
        "machine": platform.machine(),
        "threads": str(threads),
        "timing": TIMING_METHOD,
    }
    if backend == "torch":
        import torch

        fingerprint |= {
            "torch": torch.__version__,
            "onednn": _onednn_version(),
            "provider": "eager-cpu",
            "allocator": retain_freed_memory(),
            "denormals": "flush-to-zero",
        }
    elif backend == "openvino":
        fingerprint |= {
            "openvino": import_openvino().__version__,
            "provider": OPENVINO_DEVICE,
            "precision": OPENVINO_PRECISION,
        }
    else:
        import onnxruntime

        fingerprint |= {
            "onnxruntime": onnxruntime.__version__,
            "provider": ORT_PROVIDER,
            "graph_optimization": ORT_OPTIMIZATION,
        }
    return fingerprint


def import_openvino() -> Any:
    """The `openvino` package, or a one-paragraph error naming the extra that installs it."""
    try:
        import openvino
    except ImportError:
        raise HwModelError(
            "the openvino LUT backend needs OpenVINO, an optional dependency that is not installed.",
            fix="pip install 'amc-toolkit[openvino]' (in a checkout: pip install -e '.[openvino]').",
        ) from None
    return openvino


def fingerprint_mismatches(stored: dict[str, str], current: dict[str, str]) -> list[tuple[str, str, str]]:
    """(field, value in the file, value here) for every field on which the two fingerprints differ."""
    fields = sorted(set(stored) | set(current))
    return [
        (field, stored.get(field, "<missing>"), current.get(field, "<missing>"))
        for field in fields
        if stored.get(field) != current.get(field)
    ]
