"""INT8 post-training quantization of an ONNX graph in ONNX Runtime's QDQ format, the one shared call.

Used for whole networks (`amc quantize`, calibrated on training images) and for LUT units (calibrated on random
inputs: latency does not depend on the ranges). QDQ keeps QuantizeLinear/DequantizeLinear pairs around each op,
which ONNX Runtime's CPU kernels fuse into native INT8 convolutions and matmuls; weights are signed 8-bit
(symmetric), activations unsigned asymmetric by default (DeGirum's INT8 column), optionally signed symmetric.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import onnx

from hwmodel.errors import HwModelError

CALIBRATION_METHODS = ("minmax", "entropy", "percentile")


class _Reader:
    """ONNX Runtime's CalibrationDataReader over in-memory batches for one named input."""

    def __init__(self, input_name: str, batches: Iterable[np.ndarray]) -> None:
        self._batches = iter([{input_name: np.ascontiguousarray(b, dtype=np.float32)} for b in batches])

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._batches, None)

    def rewind(self) -> None:  # ORT calls it for some methods; the batches are read once
        pass


def quantize_qdq(
    model: onnx.ModelProto | str | Path,
    output: str | Path,
    calibration: Iterable[np.ndarray],
    *,
    method: str = "minmax",
    per_channel: bool = True,
    symmetric_activations: bool = False,
    exclude_nodes: Sequence[str] = (),
    preprocess: bool = True,
) -> Path:
    """Write the INT8 QDQ version of `model` (one float32 input) to `output`, calibrated on `calibration`
    batches (NCHW float32 arrays). `exclude_nodes` keeps those ONNX nodes in float32."""
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    if method not in CALIBRATION_METHODS:
        raise HwModelError(
            f"calibration method {method!r} is not known.", fix=f"use one of {', '.join(CALIBRATION_METHODS)}."
        )
    proto = model if isinstance(model, onnx.ModelProto) else onnx.load(str(model))
    if len(proto.graph.input) != 1:
        raise HwModelError(f"INT8 quantization takes a graph with one input, got {len(proto.graph.input)}.")
    input_name = proto.graph.input[0].name
    output = Path(output)
    with tempfile.TemporaryDirectory() as scratch:
        source = Path(scratch) / "float.onnx"
        onnx.save(proto, str(source))
        if preprocess:  # shape inference and graph fusion first, as ONNX Runtime's quantization guide asks
            prepared = Path(scratch) / "prepared.onnx"
            quant_pre_process(str(source), str(prepared), skip_symbolic_shape=True)
            source = prepared
        calibrate = {
            "minmax": CalibrationMethod.MinMax,
            "entropy": CalibrationMethod.Entropy,
            "percentile": CalibrationMethod.Percentile,
        }[method]
        quantize_static(
            str(source),
            str(output),
            _Reader(input_name, calibration),
            quant_format=QuantFormat.QDQ,
            per_channel=per_channel,
            activation_type=QuantType.QInt8 if symmetric_activations else QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            nodes_to_exclude=list(exclude_nodes),
            calibrate_method=calibrate,
            calibration_providers=["CPUExecutionProvider"],
            extra_options={"ActivationSymmetric": symmetric_activations, "WeightSymmetric": True},
        )
    return output
