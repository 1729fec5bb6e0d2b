"""ONNX Runtime's blocked NCHWc layout: what a layer timed alone pays that the same layer inside a network does not.

On x86 CPUs with AVX2/AVX-512, ONNX Runtime's full graph optimisation runs convolutions in a blocked layout
(NCHW8c / NCHW16c) and converts at the layout's borders with ReorderInput / ReorderOutput. In a network the
borders are the network's input and output, so the convolutions in between chain without conversions; a layer
timed on its own is both borders at once, and pays to convert its input and its output on every call, a cost
that grows with the activations.
A LUT entry therefore subtracts half a measured round trip for its input and half for its output wherever the
optimised unit has those reorders: what is left is the layer as it runs inside the chain (the one call
overhead a whole network pays once goes with the halves; the calibrated per-network overhead keeps it).
"""

from __future__ import annotations

from pathlib import Path

import onnx
from onnx import TensorProto, helper

from hwmodel.lut.timing import Measurement
from hwmodel.spec import LayerSpec

NCHWC_DOMAIN = "com.microsoft.nchwc"
Shape = tuple[int, int, int, int]


def reorder_shapes(optimized_model: Path, spec: LayerSpec) -> list[Shape]:
    """The activation shapes the optimised unit converts: its input at a ReorderInput, its output at a
    ReorderOutput (none where ONNX Runtime kept the plain layout)."""
    ops = {node.op_type for node in onnx.load(optimized_model).graph.node if node.domain == NCHWC_DOMAIN}
    shapes: list[Shape] = []
    if "ReorderInput" in ops:
        shapes.append((spec.batch, spec.in_channels, *spec.in_hw))
    if "ReorderOutput" in ops:
        shapes.append((spec.batch, spec.out_channels, *spec.out_hw))
    return shapes


def round_trip_model(shape: Shape) -> bytes:
    """x -> ReorderInput -> ReorderOutput: one activation of `shape` converted to the blocked layout and back."""
    nodes = [
        helper.make_node("ReorderInput", ["x"], ["blocked"], domain=NCHWC_DOMAIN),
        helper.make_node("ReorderOutput", ["blocked"], ["y"], domain=NCHWC_DOMAIN, channels=shape[1]),
    ]
    graph = helper.make_graph(
        nodes,
        "round_trip",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(shape))],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
    )
    opsets = [helper.make_opsetid("", 17), helper.make_opsetid(NCHWC_DOMAIN, 1)]
    model = helper.make_model(graph, opset_imports=opsets)
    model.ir_version = 8
    return model.SerializeToString()


def in_chain(measurement: Measurement, correction_ms: float) -> Measurement:
    """`measurement` less the border conversions; never below 1% of what was measured (noise can't make it free)."""
    floor = 0.01 * measurement.median_ms
    return Measurement(
        max(measurement.median_ms - correction_ms, floor),
        measurement.iqr_ms,
        max(measurement.min_ms - correction_ms, 0.01 * measurement.min_ms),
        measurement.repeats,
    )
