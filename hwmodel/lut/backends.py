"""Measuring latency on this machine: one layer as one unit (conv + what is fused after it), or a whole network.

Three backends, each with a fixed thread count:
- torch: PyTorch eager on CPU, `inference_mode`, denormals flushed to zero, the unit an
  `nn.Sequential(conv, bn, act)` in eval mode, the same modules the network runs one after another;
- onnxruntime: ONNX Runtime's CPU provider with all graph optimisations (it folds BN into the conv and fuses the
  activation, as it does for the exported network); the unit graph is written directly with `onnx.helper`
  (opset 17) because exporting every LUT entry through `torch.onnx.export` would take most of the build time;
  a unit's blocked-layout border conversions, which a network pays only at its ends, are taken out (`nchwc`);
- openvino: OpenVINO's CPU plugin compiling the same ONNX units and exported networks, latency hint, one stream,
  float32 inference precision.
Layers are measured as float32, or, for an INT8 table (onnxruntime and openvino only), as INT8: the unit's float
graph (BN folded into the conv, as the exporter folds it in a network) quantized to ONNX Runtime's QDQ format with
`hwmodel.lut.qdq` (per-channel weights, calibrated on random inputs: latency does not depend on the ranges), and
whole networks exported, quantized the same way (with ONNX Runtime's pre-processing) and timed. In an INT8 network
ONNX Runtime chains its INT8 convolutions in NHWC uint8 with one QuantizeLinear (+ Transpose) at the input and one
DequantizeLinear at the output; a unit timed alone pays those borders on every call, so, as with the blocked
layout (`nchwc`), half a measured border round trip per side is taken out (`int8_borders`).
"""

from __future__ import annotations

import copy
import io
import logging
import math
import tempfile
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import onnx
import torch
from onnx import TensorProto, helper, numpy_helper
from torch import nn

from hwmodel.errors import HwModelError
from hwmodel.lut.fingerprint import (
    BACKENDS,
    OPENVINO_DEVICE,
    OPENVINO_PRECISION,
    ORT_PROVIDER,
    check_precision,
    import_openvino,
)
from hwmodel.lut.nchwc import Shape, in_chain, reorder_shapes, round_trip_model
from hwmodel.lut.timing import Measurement, interleaved, time_callable
from hwmodel.spec import LayerSpec

ONNX_OPSET = 17
UNIT_DTYPES = ("float32", "int8")
"""The dtypes a layer unit is timed as (int8: a QDQ INT8 graph, on the backends that run one)."""
CALIBRATION_BATCHES = 2
"""Random inputs an INT8 graph is calibrated on: the ranges it finds change its numbers, not its speed."""
QUANTIZED_OPS = frozenset({"QuantizeLinear", "QLinearConv", "QLinearMatMul", "ConvInteger", "MatMulInteger"})
"""Node types that mark an ONNX graph as quantized already (timed as it is, not quantized again)."""
ACTIVATIONS = ("relu", "relu6", "hardswish", "hardsigmoid", "silu", "gelu")
_TORCH_ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "relu6": nn.ReLU6,
    "hardswish": nn.Hardswish,
    "hardsigmoid": nn.Hardsigmoid,
    "silu": nn.SiLU,
    "gelu": nn.GELU,
}


Timer = Callable[[int], Measurement]
"""Times a prepared unit: called with a number of timed repeats (after the backend's warm-up calls)."""


class Backend(Protocol):
    name: str
    threads: int
    warmup: int
    repeats: int

    def layer_timer(self, spec: LayerSpec) -> Timer: ...

    def network_timer(self, model: nn.Module, input_shape: tuple[int, ...]) -> Timer: ...

    def measure_layer(self, spec: LayerSpec) -> Measurement: ...

    def measure_networks(
        self, models: Iterable[nn.Module], input_shape: tuple[int, ...], rounds: int = 3
    ) -> list[Measurement]: ...


def _check_measurable(spec: LayerSpec, dtypes: tuple[str, ...] = UNIT_DTYPES) -> None:
    if spec.dtype not in dtypes:
        raise HwModelError(
            f"cannot measure a {spec.dtype} layer here: this backend times {' and '.join(dtypes)} layers only "
            f"({spec.key()}).",
            fix="describe the layer as float32 (or int8 for an INT8 LUT on onnxruntime or openvino), or price it "
            "with an analytic model (roofline:, systolic:).",
        )
    unknown = [kind for kind in spec.fused if kind != "bn" and kind not in ACTIVATIONS]
    if unknown:
        raise HwModelError(
            f"cannot measure layer {spec.key()}: fused op(s) {unknown} are not supported.",
            fix=f"fused ops may be bn and {', '.join(ACTIVATIONS)}.",
        )


def torch_unit(spec: LayerSpec) -> tuple[nn.Module, torch.Tensor]:
    """The layer and its fused followers as one eval-mode module, and an input for it (float32 only)."""
    _check_measurable(spec, ("float32",))
    layer: nn.Module
    if spec.op == "linear":
        layer = nn.Linear(spec.in_channels, spec.out_channels, bias=spec.bias)
        example = torch.randn(spec.batch, spec.in_channels)
    else:
        layer = nn.Conv2d(
            spec.in_channels,
            spec.out_channels,
            spec.kernel,
            spec.stride,
            spec.padding,
            spec.dilation,
            groups=spec.groups,
            bias=spec.bias,
        )
        example = torch.randn(spec.batch, spec.in_channels, *spec.in_hw)
    modules: list[nn.Module] = [layer]
    for kind in spec.fused:
        if kind == "bn":
            norm = nn.BatchNorm1d if spec.op == "linear" else nn.BatchNorm2d
            modules.append(norm(spec.out_channels))
        else:
            modules.append(_TORCH_ACTIVATIONS[kind]())
    return nn.Sequential(*modules).eval(), example


def onnx_unit(spec: LayerSpec) -> tuple[bytes, np.ndarray]:
    """The layer and its fused followers as a serialised ONNX model, and an input for it; an int8 spec as its
    QDQ INT8 graph (see `int8_unit`)."""
    _check_measurable(spec)
    if spec.dtype == "int8":
        return int8_unit(spec)
    model, example = _float_unit(spec)
    return model.SerializeToString(), example


def int8_unit(spec: LayerSpec) -> tuple[bytes, np.ndarray]:
    """The unit as an INT8 network runs it: the float graph with BN folded into the conv's bias (the exporter
    folds it so in a network), quantized with `quantize_qdq` on random inputs. Without ONNX Runtime's
    pre-processing: the unit is already the folded graph it would produce, and pre-processing would be most of
    the unit's quantization time."""
    float_spec = LayerSpec.from_dict({**spec.to_dict(), "dtype": "float32"})
    model, example = _float_unit(float_spec, fold_bn=True)
    rng = np.random.default_rng(1)
    calibration = [example] + [
        rng.standard_normal(example.shape).astype(np.float32) for _ in range(CALIBRATION_BATCHES - 1)
    ]
    return quantized_onnx(model, calibration, preprocess=False), example


def _float_unit(spec: LayerSpec, fold_bn: bool = False) -> tuple[onnx.ModelProto, np.ndarray]:
    """The float32 unit graph (random weights, seeded) and an input for it; `fold_bn`: BN as the conv's bias."""
    rng = np.random.default_rng(0)
    inits: list[onnx.TensorProto] = []

    def constant(name: str, value: np.ndarray) -> str:
        inits.append(numpy_helper.from_array(value.astype(np.float32), name))
        return name

    if spec.op == "linear":
        shape = [spec.batch, spec.in_channels]
        inputs = ["x", constant("w", rng.standard_normal((spec.out_channels, spec.in_channels)))]
        if spec.bias:
            inputs.append(constant("b", rng.standard_normal(spec.out_channels)))
        nodes = [helper.make_node("Gemm", inputs, ["y0"], transB=1)]
    else:
        shape = [spec.batch, spec.in_channels, *spec.in_hw]
        weight = rng.standard_normal((spec.out_channels, spec.in_channels // spec.groups, *spec.kernel))
        inputs = ["x", constant("w", weight)]
        if spec.bias or (fold_bn and "bn" in spec.fused):
            inputs.append(constant("b", rng.standard_normal(spec.out_channels)))
        nodes = [
            helper.make_node(
                "Conv",
                inputs,
                ["y0"],
                kernel_shape=list(spec.kernel),
                strides=list(spec.stride),
                pads=[*spec.padding, *spec.padding],
                dilations=list(spec.dilation),
                group=spec.groups,
            )
        ]
    current = "y0"
    followers = [kind for kind in spec.fused if not (fold_bn and kind == "bn" and spec.op != "linear")]
    for index, kind in enumerate(followers):
        out = f"y{index + 1}"
        nodes += _onnx_follower(kind, current, out, spec.out_channels, constant, rng)
        current = out
    graph = helper.make_graph(
        nodes,
        "unit",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
        [helper.make_tensor_value_info(current, TensorProto.FLOAT, None)],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", ONNX_OPSET)])
    model.ir_version = 8
    return model, rng.standard_normal(shape).astype(np.float32)


@contextmanager
def _quiet_quantizer() -> Iterator[None]:
    """Silence ONNX Runtime's quantizer's log warnings (a pre-processing hint on every unit), then restore."""
    before = logging.root.manager.disable
    logging.disable(logging.WARNING)
    try:
        yield
    finally:
        logging.disable(before)


def quantized_onnx(
    model: onnx.ModelProto | bytes, calibration: Iterable[np.ndarray], *, preprocess: bool = True
) -> bytes:
    """`model` (one float32 input) as ONNX Runtime QDQ INT8 bytes (`quantize_qdq` defaults: per-channel signed
    weights, unsigned activations, MinMax calibration on `calibration`); a graph quantized already as it is."""
    from hwmodel.lut.qdq import quantize_qdq

    proto = onnx.load_from_string(model) if isinstance(model, bytes) else model
    if is_quantized(proto):
        return proto.SerializeToString()
    with tempfile.TemporaryDirectory(prefix="amc-int8-") as folder, _quiet_quantizer():
        output = quantize_qdq(proto, Path(folder) / "int8.onnx", calibration, preprocess=preprocess)
        return output.read_bytes()


def is_quantized(model: onnx.ModelProto) -> bool:
    """Whether the graph holds quantized ops already (a QDQ or QOperator file, e.g. from `amc quantize`)."""
    return any(node.op_type in QUANTIZED_OPS for node in model.graph.node)


def _network_bytes(model_bytes: bytes, example: np.ndarray, precision: str) -> bytes:
    """A network graph as a backend of `precision` times it: as it is (fp32), or quantized on random inputs."""
    if precision == "fp32":
        return model_bytes
    rng = np.random.default_rng(1)
    calibration = [example] + [
        rng.standard_normal(example.shape).astype(np.float32) for _ in range(CALIBRATION_BATCHES - 1)
    ]
    return quantized_onnx(model_bytes, calibration)


def _onnx_follower(kind: str, x: str, out: str, channels: int, constant: Any, rng: np.random.Generator) -> list[Any]:
    """The ONNX nodes torch.onnx.export writes for one fused follower."""
    if kind == "bn":
        names = [
            constant(f"{out}_scale", rng.uniform(0.5, 1.5, channels)),
            constant(f"{out}_bias", rng.standard_normal(channels)),
            constant(f"{out}_mean", rng.standard_normal(channels)),
            constant(f"{out}_var", rng.uniform(0.5, 1.5, channels)),
        ]
        return [helper.make_node("BatchNormalization", [x, *names], [out], epsilon=1e-5)]
    if kind == "relu":
        return [helper.make_node("Relu", [x], [out])]
    if kind == "relu6":
        bounds = [constant(f"{out}_min", np.array(0.0)), constant(f"{out}_max", np.array(6.0))]
        return [helper.make_node("Clip", [x, *bounds], [out])]
    if kind == "hardswish":
        return [helper.make_node("HardSwish", [x], [out])]
    if kind == "hardsigmoid":
        return [helper.make_node("HardSigmoid", [x], [out], alpha=1.0 / 6.0, beta=0.5)]
    if kind == "silu":
        return [helper.make_node("Sigmoid", [x], [f"{out}_s"]), helper.make_node("Mul", [x, f"{out}_s"], [out])]
    root2, one, half = (constant(f"{out}_{n}", np.array(v)) for n, v in (("r2", math.sqrt(2)), ("1", 1.0), ("h", 0.5)))
    return [
        helper.make_node("Div", [x, root2], [f"{out}_d"]),
        helper.make_node("Erf", [f"{out}_d"], [f"{out}_e"]),
        helper.make_node("Add", [f"{out}_e", one], [f"{out}_a"]),
        helper.make_node("Mul", [x, f"{out}_a"], [f"{out}_m"]),
        helper.make_node("Mul", [f"{out}_m", half], [out]),
    ]


@contextmanager
def torch_threads(threads: int) -> Iterator[None]:
    """Run with `threads` intra-op threads, then restore the caller's setting."""
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@contextmanager
def flushing_denormals() -> Iterator[None]:
    """Treat denormal floats as zero while timing (what CPU inference deployments set), then turn it off again.

    A denormal operand costs a CPU microcode assist of ~100 cycles. Activations deep in a network with
    untrained weights can decay into that range, so a variant's time would depend on its random weights
    rather than its shape (`bench/timing_conditions.py` compares). Off afterwards, so training in the same
    process is untouched.
    """
    torch.set_flush_denormal(True)
    try:
        yield
    finally:
        torch.set_flush_denormal(False)


class _TimingBackend(ABC):
    """What both backends share on top of their timers: `measure_layer` and `measure_networks`."""

    repeats: int

    @abstractmethod
    def layer_timer(self, spec: LayerSpec) -> Timer: ...

    @abstractmethod
    def network_timer(self, model: nn.Module, input_shape: tuple[int, ...]) -> Timer: ...

    def measure_layer(self, spec: LayerSpec) -> Measurement:
        return self.layer_timer(spec)(self.repeats)

    def measure_networks(
        self, models: Iterable[nn.Module], input_shape: tuple[int, ...], rounds: int = 3
    ) -> list[Measurement]:
        """End-to-end latencies of networks that are to be compared: timed side by side in `rounds` interleaved
        passes, so that a drift of the machine's speed (several per cent within a minute on a shared machine)
        favours none of them. Each network is copied as it is prepared, so `models` may be a generator that
        builds them one at a time."""
        return interleaved([self.network_timer(model, input_shape) for model in models], self.repeats, rounds)


class TorchBackend(_TimingBackend):
    """PyTorch eager on CPU with a fixed thread count."""

    name = "torch"

    def __init__(self, threads: int = 1, warmup: int = 10, repeats: int = 30) -> None:
        self.threads, self.warmup, self.repeats = threads, warmup, repeats

    def _timer(self, module: nn.Module, example: torch.Tensor) -> Timer:
        def timer(repeats: int) -> Measurement:
            with torch_threads(self.threads), flushing_denormals(), torch.inference_mode():
                return time_callable(lambda: module(example), self.warmup, repeats)

        return timer

    def layer_timer(self, spec: LayerSpec) -> Timer:
        return self._timer(*torch_unit(spec))

    def network_timer(self, model: nn.Module, input_shape: tuple[int, ...]) -> Timer:
        """Times `model` on one input of `input_shape` (a copy is timed; the model is untouched)."""
        return self._timer(copy.deepcopy(model).eval().cpu(), torch.randn(*input_shape))


class OrtBackend(_TimingBackend):
    """ONNX Runtime, CPU execution provider, all graph optimisations, a fixed thread count, sequential execution;
    `precision` int8: units and networks timed as QDQ INT8 graphs."""

    name = "onnxruntime"

    def __init__(self, threads: int = 1, warmup: int = 10, repeats: int = 30, precision: str = "fp32") -> None:
        check_precision(self.name, precision)
        self.threads, self.warmup, self.repeats, self.precision = threads, warmup, repeats, precision
        self._round_trip_ms: dict[Shape, float] = {}
        self._int8_round_trip_ms: dict[tuple[tuple[int, ...], bool], float] = {}

    def _session(self, model_bytes: bytes, optimized_model: Path | None = None, optimize: bool = True) -> Any:
        import onnxruntime as ort

        options = ort.SessionOptions()
        if optimized_model is not None:
            options.optimized_model_filepath = str(optimized_model)
        options.intra_op_num_threads = self.threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = (
            ort.GraphOptimizationLevel.ORT_ENABLE_ALL if optimize else ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        )
        options.log_severity_level = 3
        return ort.InferenceSession(model_bytes, options, providers=[ORT_PROVIDER])

    def _timer(self, model_bytes: bytes, example: np.ndarray) -> Timer:
        return self._bound(self._session(model_bytes), example)

    def _bound(self, session: Any, example: np.ndarray) -> Timer:
        """Times `run_with_iobinding` (input bound once): half the per-call overhead of `session.run`."""
        binding = session.io_binding()
        binding.bind_cpu_input(session.get_inputs()[0].name, example)
        for output in session.get_outputs():
            binding.bind_output(output.name)
        return lambda repeats: time_callable(lambda: session.run_with_iobinding(binding), self.warmup, repeats)

    def layer_timer(self, spec: LayerSpec) -> Timer:
        """Times the unit as it runs inside a chain of blocked-layout (float) or NHWC uint8 (INT8) layers."""
        _check_measurable(spec, (_unit_dtype(self.precision),))
        model_bytes, example = onnx_unit(spec)
        with tempfile.TemporaryDirectory() as folder:
            optimized = Path(folder) / "unit.onnx"
            session = self._session(model_bytes, optimized)
            if self.precision == "int8":
                borders = int8_borders(optimized, spec)
                correction = sum(self._int8_round_trip(shape, transposed) for shape, transposed in borders) / 2
            else:
                correction = sum(self._round_trip(shape) for shape in reorder_shapes(optimized, spec)) / 2
        timer = self._bound(session, example)
        return lambda repeats: in_chain(timer(repeats), correction)

    def _round_trip(self, shape: Shape) -> float:
        """Median ms of converting one activation of `shape` to the blocked layout and back (measured once)."""
        if shape not in self._round_trip_ms:
            example = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
            self._round_trip_ms[shape] = self._timer(round_trip_model(shape), example)(self.repeats).median_ms
        return self._round_trip_ms[shape]

    def _int8_round_trip(self, shape: tuple[int, ...], transposed: bool) -> float:
        """Median ms of quantizing one activation of `shape` (to NHWC if `transposed`) and back (measured once;
        timed unoptimised, so ONNX Runtime does not cancel the pair it is meant to time)."""
        if (shape, transposed) not in self._int8_round_trip_ms:
            example = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
            session = self._session(int8_round_trip_model(shape, transposed), optimize=False)
            measured = self._bound(session, example)(self.repeats).median_ms
            self._int8_round_trip_ms[shape, transposed] = measured
        return self._int8_round_trip_ms[shape, transposed]

    def network_timer(self, model: nn.Module, input_shape: tuple[int, ...]) -> Timer:
        """Export `model` (a copy, eval mode) with torch.onnx (TorchScript exporter), quantize it for an INT8
        backend; time the session."""
        model_bytes, example = exported_network(model, input_shape, self.threads)
        return self._timer(_network_bytes(model_bytes, example, self.precision), example)

    def file_timer(self, path: Path | str, input_shape: tuple[int, ...]) -> Timer:
        """Times an ONNX file as it was written (the file a user deploys), not a fresh export of the module; an
        INT8 backend quantizes a float file first (a file quantized already is timed as it is)."""
        example = random_input(input_shape)
        return self._timer(_network_bytes(Path(path).read_bytes(), example, self.precision), example)


def _activation_shape(spec: LayerSpec, side: str) -> tuple[int, ...]:
    channels, hw = (spec.in_channels, spec.in_hw) if side == "input" else (spec.out_channels, spec.out_hw)
    return (spec.batch, channels) if spec.op == "linear" else (spec.batch, channels, *hw)


def int8_borders(optimized_model: Path, spec: LayerSpec) -> list[tuple[tuple[int, ...], bool]]:
    """(activation shape, transposed to NHWC) of each border the optimised INT8 unit converts at: its input where
    a QuantizeLinear reads it, its output where a DequantizeLinear writes it."""
    graph = onnx.load(optimized_model).graph
    transposed = any(node.op_type == "Transpose" for node in graph.node) and spec.op != "linear"
    inputs, outputs = {value.name for value in graph.input}, {value.name for value in graph.output}
    borders = []
    if any(node.op_type == "QuantizeLinear" and set(node.input[:1]) & inputs for node in graph.node):
        borders.append((_activation_shape(spec, "input"), transposed))
    if any(node.op_type == "DequantizeLinear" and set(node.output) & outputs for node in graph.node):
        borders.append((_activation_shape(spec, "output"), transposed))
    return borders


def int8_round_trip_model(shape: tuple[int, ...], transposed: bool) -> bytes:
    """x -> QuantizeLinear (uint8) [-> Transpose to NHWC -> back] -> DequantizeLinear: one border of an INT8 unit
    crossed both ways."""
    inits = [
        numpy_helper.from_array(np.array(0.05, dtype=np.float32), "scale"),
        numpy_helper.from_array(np.array(128, dtype=np.uint8), "zero"),
    ]
    nodes = [helper.make_node("QuantizeLinear", ["x", "scale", "zero"], ["q"])]
    current = "q"
    if transposed:
        nodes += [
            helper.make_node("Transpose", ["q"], ["nhwc"], perm=[0, 2, 3, 1]),
            helper.make_node("Transpose", ["nhwc"], ["nchw"], perm=[0, 3, 1, 2]),
        ]
        current = "nchw"
    nodes.append(helper.make_node("DequantizeLinear", [current, "scale", "zero"], ["y"]))
    graph = helper.make_graph(
        nodes,
        "int8_round_trip",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(shape))],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", ONNX_OPSET)])
    model.ir_version = 8
    return model.SerializeToString()


def _unit_dtype(precision: str) -> str:
    return "int8" if precision == "int8" else "float32"


def exported_network(model: nn.Module, input_shape: tuple[int, ...], threads: int) -> tuple[bytes, np.ndarray]:
    """A copy of `model` in eval mode as ONNX bytes (TorchScript exporter), and a random input for it."""
    example = torch.randn(*input_shape)
    buffer = io.BytesIO()
    with torch_threads(threads):
        torch.onnx.export(
            copy.deepcopy(model).eval().cpu(),
            (example,),
            buffer,  # type: ignore[arg-type]  # the TorchScript exporter writes to any binary stream
            dynamo=False,
            opset_version=ONNX_OPSET,
            input_names=["input"],
            output_names=["output"],
        )
    return buffer.getvalue(), example.numpy()


def random_input(input_shape: tuple[int, ...]) -> np.ndarray:
    """A float32 input for a network file (seeded: the same input every time)."""
    return np.random.default_rng(0).standard_normal(input_shape).astype(np.float32)


class OpenVinoBackend(_TimingBackend):
    """OpenVINO on this CPU: the ONNX units and networks compiled with a latency hint, one stream, float32;
    `precision` int8: the QDQ INT8 graphs, whose quantized ops OpenVINO runs as INT8 kernels."""

    name = "openvino"

    def __init__(self, threads: int = 1, warmup: int = 10, repeats: int = 30, precision: str = "fp32") -> None:
        check_precision(self.name, precision)
        self.threads, self.warmup, self.repeats, self.precision = threads, warmup, repeats, precision
        self._core = import_openvino().Core()

    def _request(self, model_bytes: bytes, example: np.ndarray, profiled: bool = False) -> Any:
        ov = import_openvino()
        model = self._core.read_model(model=model_bytes, weights=ov.Tensor(np.empty(0, dtype=np.uint8)))
        settings = {
            "PERFORMANCE_HINT": "LATENCY",
            "NUM_STREAMS": "1",
            "INFERENCE_NUM_THREADS": str(self.threads),
            "INFERENCE_PRECISION_HINT": OPENVINO_PRECISION,
        }
        if profiled:
            settings["PERF_COUNT"] = "YES"
        request = self._core.compile_model(model, OPENVINO_DEVICE, settings).create_infer_request()
        request.set_input_tensor(ov.Tensor(example))
        return request

    def _timer(self, model_bytes: bytes, example: np.ndarray) -> Timer:
        request = self._request(model_bytes, example)
        return lambda repeats: time_callable(request.infer, self.warmup, repeats)

    def layer_timer(self, spec: LayerSpec) -> Timer:
        """Times the unit as it runs inside a network: timed alone, a layer also converts its input into the CPU
        plugin's blocked layout and its output back (Reorder nodes), which OpenVINO does not do between the
        layers of a network; their per-call time, read from the plugin's profiling counters, is subtracted."""
        _check_measurable(spec, (_unit_dtype(self.precision),))
        request = self._request(*onnx_unit(spec), profiled=True)
        correction = openvino_reorders_ms(request, max(self.warmup, 10), max(self.repeats, 30))
        return lambda repeats: in_chain(time_callable(request.infer, self.warmup, repeats), correction)

    def network_timer(self, model: nn.Module, input_shape: tuple[int, ...]) -> Timer:
        model_bytes, example = exported_network(model, input_shape, self.threads)
        return self._timer(_network_bytes(model_bytes, example, self.precision), example)

    def file_timer(self, path: Path | str, input_shape: tuple[int, ...]) -> Timer:
        """Times an ONNX file as it was written (the file a user deploys), not a fresh export of the module; an
        INT8 backend quantizes a float file first (a file quantized already is timed as it is)."""
        example = random_input(input_shape)
        return self._timer(_network_bytes(Path(path).read_bytes(), example, self.precision), example)


OPENVINO_REORDER = "Reorder"
"""The node type of the CPU plugin's layout conversions in a profile."""


def openvino_reorders_ms(request: Any, warmup: int, calls: int) -> float:
    """Ms per call that a profiled OpenVINO request spends in Reorder nodes, in its steady state.

    The plugin's counters hold each node's mean time over every call since the request was made (the first call
    included, which allocates and is many times slower), to the microsecond: the totals before and after `calls`
    calls that follow `warmup` ones give the steady per-call time, with the rounding divided by `calls`."""

    def reorder_total_ms(done: int) -> float:
        profile = request.get_profiling_info()
        means = (node.real_time.total_seconds() for node in profile if node.node_type == OPENVINO_REORDER)
        return 1e3 * done * sum(means)

    for _ in range(warmup):
        request.infer()
    before = reorder_total_ms(warmup)
    for _ in range(calls):
        request.infer()
    return max(0.0, (reorder_total_ms(warmup + calls) - before) / calls)


def create_backend(
    name: str, threads: int = 1, warmup: int = 10, repeats: int = 30, precision: str = "fp32", **options: Any
) -> Backend:
    """The backend `name` timing at `precision` (int8: onnxruntime and openvino only; `options`: cudnn_benchmark,
    device_index, for torch-cuda only)."""
    if name not in BACKENDS:
        raise HwModelError(f"unknown LUT backend {name!r}.", fix=f"use one of {', '.join(BACKENDS)}.")
    check_precision(name, precision)
    if threads < 1 or repeats < 1 or warmup < 0:
        raise HwModelError(
            f"bad measurement settings: threads={threads}, warmup={warmup}, repeats={repeats}.",
            fix="use threads >= 1, warmup >= 0, repeats >= 1 (30 or more for a real LUT).",
        )
    if name == "torch-cuda":  # imported on demand: it imports this module
        from hwmodel.lut.cuda import TorchCudaBackend

        return TorchCudaBackend(threads, warmup, repeats, **options)
    if options:
        raise HwModelError(f"the {name} LUT backend takes no option(s) {', '.join(sorted(options))}.")
    if name == "torch":
        return TorchBackend(threads, warmup, repeats)
    classes: dict[str, Callable[[int, int, int, str], Backend]] = {
        "onnxruntime": OrtBackend,
        "openvino": OpenVinoBackend,
    }
    return classes[name](threads, warmup, repeats, precision)
