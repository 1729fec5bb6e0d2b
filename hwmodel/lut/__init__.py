"""Measured latency lookup tables: build, load, price, validate (torch and onnxruntime are imported on demand)."""

from hwmodel.lut.fidelity import FidelityReport, fidelity_report, fit_affine, mape
from hwmodel.lut.fingerprint import BACKENDS, device_fingerprint
from hwmodel.lut.model import LutCostModel, check_device
from hwmodel.lut.table import LUT_SCHEMA_VERSION, LatencyTable, NetworkOverhead, structure_key
from hwmodel.lut.timing import Measurement, time_callable

__all__ = [
    "BACKENDS",
    "LUT_SCHEMA_VERSION",
    "FidelityReport",
    "LatencyTable",
    "LutCostModel",
    "Measurement",
    "NetworkOverhead",
    "check_device",
    "device_fingerprint",
    "fidelity_report",
    "fit_affine",
    "mape",
    "structure_key",
    "time_callable",
]
