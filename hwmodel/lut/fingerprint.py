"""The device fingerprint a LUT carries: everything that makes a measured latency true here and not elsewhere.

A table measured on another CPU, with another thread count, or under another library version prices the wrong
device; loading one is an error unless the caller says otherwise (`allow_foreign`).
"""

from __future__ import annotations

import os
import platform
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

from hwmodel.errors import HwModelError
from hwmodel.lut.allocator import retain_freed_memory

CUDA_BACKEND = "torch-cuda"
BACKENDS = ("torch", "onnxruntime", "openvino", CUDA_BACKEND)
"""torch: PyTorch eager on CPU; onnxruntime: ONNX Runtime's CPU execution provider; openvino: OpenVINO's CPU
plugin (the `openvino` extra); torch-cuda: PyTorch eager on one CUDA GPU (hwmodel.lut.cuda)."""

TIMING_METHOD = "3"
"""How entries are timed, recorded in every LUT so that one timed another way is refused rather than mixed in.
1: one layer after another; 2: interleaved rounds, PyTorch with freed memory kept and denormals flushed,
ONNX Runtime units without their blocked-layout border conversions (hwmodel.lut.nchwc); 3: as 2, and OpenVINO
units as their kernels' profiled time, without their layout Reorders and their call."""

ORT_PROVIDER = "CPUExecutionProvider"
ORT_OPTIMIZATION = "ORT_ENABLE_ALL"
OPENVINO_DEVICE = "CPU"
OPENVINO_PRECISION = "f32"
"""OpenVINO may pick bf16 on CPUs that have it; LUTs time float32, so the hint is set and recorded (an INT8 unit's
quantized ops run in INT8 under it; what stays float stays float32)."""

PRECISIONS = ("fp32", "int8")
"""What a LUT's units are timed as: fp32 (float32 graphs) or int8 (the same graphs quantized to ONNX Runtime's QDQ
INT8 format, which ONNX Runtime and OpenVINO run as native INT8 kernels)."""
INT8_BACKENDS = ("onnxruntime", "openvino")
"""The backends that time INT8 units: the ones that run QDQ ONNX graphs (PyTorch eager has no such graphs)."""
INT8_QUANTIZATION = "qdq-minmax-u8s8-per-channel"
"""How an INT8 LUT's graphs are quantized (`hwmodel.lut.qdq` defaults), recorded in its fingerprint."""


def check_precision(backend: str, precision: str) -> None:
    """Raise a one-paragraph error for an unknown precision, or INT8 on a backend that cannot time it."""
    if precision not in PRECISIONS:
        raise HwModelError(f"unknown LUT precision {precision!r}.", fix=f"use one of {', '.join(PRECISIONS)}.")
    if precision == "int8" and backend not in INT8_BACKENDS:
        raise HwModelError(
            f"the {backend} LUT backend cannot time INT8 layers: INT8 units are QDQ ONNX graphs, which only "
            f"{' and '.join(INT8_BACKENDS)} run.",
            fix=f"use --backend {' or '.join(INT8_BACKENDS)} (cost.lut_backend) for an INT8 LUT, or --precision fp32.",
        )


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


def device_fingerprint(
    backend: str,
    threads: int,
    batch: int = 1,
    *,
    cudnn_benchmark: bool = True,
    device_index: int = 0,
    precision: str = "fp32",
) -> dict[str, str]:
    """The fingerprint of this machine for `backend` run with `threads` threads (all values text).

    `batch`, `cudnn_benchmark` and `device_index` enter only the torch-cuda fingerprint: a GPU's latency is a
    staircase in the batch, and cuDNN's autotuner picks other kernels; CPU fingerprints stay as they were, so
    their existing LUT files still match. `precision` int8 adds `lut_precision` and `quantization` (fp32
    fingerprints are as before), so an fp32 table never matches an INT8 setup and vice versa.
    """
    if backend not in BACKENDS:
        raise HwModelError(f"unknown LUT backend {backend!r}.", fix=f"use one of {', '.join(BACKENDS)}.")
    check_precision(backend, precision)
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
    elif backend == CUDA_BACKEND:
        fingerprint |= cuda_fingerprint(device_index, batch, cudnn_benchmark)
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
    if precision == "int8":
        fingerprint |= {"lut_precision": precision, "quantization": INT8_QUANTIZATION}
    return fingerprint


def require_cuda(device_index: int = 0) -> None:
    """Raise a one-paragraph error unless torch sees a CUDA GPU numbered `device_index` (checked before any
    long work: a torch-cuda table cannot be measured, resumed or extended without one)."""
    import torch

    if torch.cuda.is_available() and 0 <= device_index < torch.cuda.device_count():
        return
    fix = (
        "build it on the GPU machine (a CUDA build of torch with a working NVIDIA driver), or use --backend torch, "
        "onnxruntime or openvino (cost.lut_backend in a config) to measure this CPU."
    )
    if torch.cuda.is_available():
        raise HwModelError(
            f"the torch-cuda LUT backend was asked for GPU {device_index}, but torch sees "
            f"{torch.cuda.device_count()} GPU(s).",
            fix=f"use a device index below {torch.cuda.device_count()}, or choose the GPU with CUDA_VISIBLE_DEVICES.",
        )
    if torch.version.cuda is None:
        why = f"this torch {torch.__version__} is a CPU-only build"
    else:
        visible = os.environ.get("CUDA_VISIBLE_DEVICES")
        hidden = f", CUDA_VISIBLE_DEVICES={visible!r}" if visible is not None else ""
        why = f"torch {torch.__version__} is built for CUDA {torch.version.cuda} but finds no GPU or driver{hidden}"
    raise HwModelError(f"the torch-cuda LUT backend needs a CUDA GPU; torch sees none ({why}).", fix=fix)


def gpu_driver_version() -> str:
    """The NVIDIA driver version from nvidia-smi, or "unknown" where there is none (torch does not report it)."""
    command = shutil.which("nvidia-smi")
    if command is None:
        return "unknown"
    try:
        found = subprocess.run(
            [command, "--query-gpu=driver_version", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=20,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    lines = found.stdout.strip().splitlines()
    return lines[0].strip() if lines else "unknown"


def cuda_fingerprint(device_index: int, batch: int, cudnn_benchmark: bool) -> dict[str, str]:
    """What makes a GPU latency true: the GPU and its driver, the CUDA and cuDNN libraries torch runs, how cuDNN
    picks kernels (benchmark mode, TF32), the device index and the batch. Read through `torch.cuda` only, so a
    test can stand in for a GPU by replacing those functions."""
    import torch

    require_cuda(device_index)
    major, minor = torch.cuda.get_device_capability(device_index)
    cudnn = torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None
    return {
        "torch": torch.__version__,
        "provider": "eager-cuda",
        "gpu_name": torch.cuda.get_device_name(device_index),
        "compute_capability": f"{major}.{minor}",
        "gpu_driver": gpu_driver_version(),
        "cuda_runtime": str(torch.version.cuda),
        "cudnn": str(cudnn) if cudnn is not None else "none",
        "cudnn_benchmark": "on" if cudnn_benchmark else "off",
        "cudnn_tf32": "on" if torch.backends.cudnn.allow_tf32 else "off",
        "matmul_tf32": "on" if torch.backends.cuda.matmul.allow_tf32 else "off",
        "device_index": str(device_index),
        "batch": str(batch),
    }


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
