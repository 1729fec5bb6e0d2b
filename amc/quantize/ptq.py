"""INT8 post-training quantization of an amc network, measured beside its float32 original.

The network is exported to ONNX (`amc.pruning.export.export_onnx`, checked against PyTorch), calibrated on
training images and quantized to ONNX Runtime's QDQ format (`hwmodel.lut.qdq.quantize_qdq`); both files are then
scored with ONNX Runtime itself (what a user deploys, not a PyTorch simulation) and timed interleaved. Layers are
named as everywhere in amc (the module's qualified name) and mapped onto the exporter's ONNX node names, so
`fp32_layers` can keep chosen conv/linear layers in float.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import onnx
from torch import nn
from torch.utils.data import Dataset

from amc.data import iterate_batches
from amc.errors import UserError
from amc.pruning.export import export_onnx
from amc.quantize.calibration import calibration_batches, check_calibration_images
from amc.report.tables import markdown_table
from hwmodel.errors import HwModelError
from hwmodel.lut.backends import OrtBackend
from hwmodel.lut.qdq import CALIBRATION_METHODS, quantize_qdq
from hwmodel.lut.timing import interleaved

FLOAT_FILE = "model.onnx"
INT8_FILE = "model.int8.onnx"
LAYER_OPS = ("Conv", "Gemm", "MatMul")
"""ONNX ops a conv or linear layer exports to: the ops `fp32_layers` and the sensitivity address."""
TIMING_ROUNDS = 3
"""Interleaved passes per latency figure, as `amc evaluate` times dense beside pruned."""
EVAL_BATCH = 256


@dataclass(frozen=True)
class PtqSettings:
    """How a network is quantized: calibration size and method, granularity, layers kept in float32."""

    calibration_images: int = 512
    method: str = "minmax"
    per_channel: bool = False
    symmetric_activations: bool = False
    """False: unsigned asymmetric activations (DeGirum's INT8 column); True: signed symmetric."""
    fp32_layers: tuple[str, ...] = ()
    """amc layer names (conv/linear qualified names) left in float32."""
    seed: int = 0
    """Which training images calibrate (a seeded shuffle)."""

    def __post_init__(self) -> None:
        check_calibration_images(self.calibration_images)
        if self.method not in CALIBRATION_METHODS:
            raise UserError(
                f"calibration method {self.method!r} is not known.",
                fix=f"use --method {' | '.join(CALIBRATION_METHODS)}.",
            )


@dataclass(frozen=True)
class TimingSettings:
    threads: int = 1
    batch: int = 64
    """The throughput batch, timed beside batch 1."""
    repeats: int = 30


class Splits(Protocol):
    """The three splits PTQ reads (a `DataBundle` is one): calibration on `train`, decisions on `search_val`,
    reporting on `test`."""

    @property
    def train(self) -> Dataset: ...

    @property
    def search_val(self) -> Dataset: ...

    @property
    def test(self) -> Dataset: ...


@dataclass(frozen=True)
class Scores:
    top1: float
    top5: float
    images: int


@dataclass(frozen=True)
class Figures:
    """One ONNX file of the network as deployed: accuracy in ONNX Runtime, size on disk, latency."""

    test_top1: float
    test_top5: float
    val_top1: float
    """Top-1 on search-val (what sensitivity and `--auto-fp32` decide by)."""
    size_bytes: int
    batch1_ms: float
    batch_ms: float
    """Latency of one call at the throughput batch."""


@dataclass(frozen=True)
class Comparison:
    """A network's float32 ONNX file beside its INT8 QDQ file."""

    fp32: Figures
    int8: Figures
    float_path: str
    int8_path: str
    fp32_nodes: tuple[str, ...] = ()
    """ONNX nodes kept in float32 on request (`fp32_layers`)."""
    float_ops: tuple[str, ...] = ()
    """Conv/linear nodes ONNX Runtime left unquantized although not asked to (op type: node)."""
    test_images: int = 0
    val_images: int = 0
    timing: TimingSettings = field(default_factory=TimingSettings)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Comparison:
        return cls(**{
            **data, "fp32": Figures(**data["fp32"]), "int8": Figures(**data["int8"]),
            "fp32_nodes": tuple(data.get("fp32_nodes", ())), "float_ops": tuple(data.get("float_ops", ())),
            "timing": TimingSettings(**data.get("timing", {})),
        })  # fmt: skip


def export_float(model: nn.Module, path: Path, input_size: tuple[int, int, int]) -> Path:
    """`model` as a float32 ONNX file (dynamic batch, checked against PyTorch); a module the exporter cannot
    translate is a UserError naming it."""
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            return export_onnx(model, path, input_size).path
    except UserError:
        raise
    except Exception as error:  # noqa: BLE001 - the exporter raises many types; each means "cannot export"
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise UserError(
            f"{type(model).__name__} cannot be exported to ONNX for INT8 quantization: {first}",
            fix="replace the module calling the operator named there with standard conv/linear/activation "
            "layers, or keep it out of the network you quantize.",
        ) from None


def layer_nodes(model: onnx.ModelProto, layer_names: Iterable[str]) -> dict[str, str]:
    """amc layer name -> the ONNX node it exported to (TorchScript exporter scopes: `/layer1/layer1.0/conv1/Conv`
    is `layer1.0.conv1`). Layers without a node (e.g. fused away) are absent."""
    wanted = set(layer_names)
    found: dict[str, str] = {}
    for node in model.graph.node:
        if node.op_type not in LAYER_OPS or not node.name.startswith("/"):
            continue
        name = _module_of(node.name)
        if name in wanted and name not in found:
            found[name] = node.name
    return found


def _module_of(node_name: str) -> str:
    """The qualified module name of a node's scope: each scope segment is a child's name, written either alone
    (`conv1`) or after its parent's (`layer1.0`, `downsample.0`)."""
    parts: list[str] = []
    previous = ""
    for segment in node_name.strip("/").split("/")[:-1]:
        child = segment
        for prefix in (previous, parts[-1] if parts else ""):
            if prefix and segment.startswith(prefix + "."):
                child = segment[len(prefix) + 1 :]
                break
        parts.append(child)
        previous = segment
    return ".".join(parts)


def fp32_nodes(requested: Sequence[str], nodes: Mapping[str, str]) -> tuple[str, ...]:
    """The ONNX nodes of the layers `requested` keeps in float32; an unknown name is a UserError listing valid
    ones."""
    for name in requested:
        if name not in nodes:
            valid = list(nodes)
            shown = ", ".join(valid[:6]) + (f", ... ({len(valid)} in all)" if len(valid) > 6 else "")
            raise UserError(
                f"--fp32-layers: {name!r} is not a conv/linear layer of this network.",
                fix=f"use qualified layer names as `amc inspect` lists them: {shown}.",
            )
    return tuple(nodes[name] for name in requested)


def quantize_file(
    float_path: Path,
    out: Path,
    calibration: Sequence[np.ndarray],
    settings: PtqSettings,
    exclude_nodes: Sequence[str] = (),
) -> Path:
    """The INT8 QDQ file of `float_path` at `out`; ONNX Runtime's calibration chatter is kept off stdout and any
    failure inside it becomes a UserError naming the op it failed on."""
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            return quantize_qdq(
                float_path, out, calibration, method=settings.method, per_channel=settings.per_channel,
                symmetric_activations=settings.symmetric_activations, exclude_nodes=exclude_nodes,
            )  # fmt: skip
    except HwModelError:
        raise
    except Exception as error:  # noqa: BLE001 - ORT's quantizer raises bare exceptions for unsupported graphs
        raise UserError(
            f"ONNX Runtime cannot quantize this network: {_failing_op(float_path, error)}",
            fix="keep the layer named there in float32 with --fp32-layers, or quantize a network without it.",
        ) from None


def _failing_op(float_path: Path, error: Exception) -> str:
    text = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    graph = onnx.load(str(float_path)).graph
    named = [f"{node.op_type} node {node.name}" for node in graph.node if node.name and node.name in str(error)]
    return f"{named[0]} ({text})" if named else text


def unquantized(int8_path: Path, requested: Sequence[str] = ()) -> tuple[str, ...]:
    """Conv/linear nodes of the QDQ file that read float weights although not asked to stay in float32."""
    graph = onnx.load(str(int8_path)).graph
    dequantized = {output for node in graph.node if node.op_type == "DequantizeLinear" for output in node.output}
    return tuple(
        f"{node.op_type}: {node.name}"
        for node in graph.node
        if node.op_type in LAYER_OPS and node.name not in requested and node.input[1] not in dequantized
    )


def session(path: Path, threads: int = 1) -> Any:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def ort_scores(path: Path, dataset: Dataset, limit: int | None = None, threads: int = 1) -> Scores:
    """Top-1/top-5 of an ONNX file in ONNX Runtime on the first `limit` images of `dataset` (all when None)."""
    run = session(path, threads)
    input_name = run.get_inputs()[0].name
    correct1 = correct5 = count = 0
    for images, labels in iterate_batches(dataset, EVAL_BATCH, limit=limit):
        logits = run.run(None, {input_name: images.numpy().astype(np.float32)})[0]
        truth = labels.numpy()
        top = np.argsort(-logits, axis=1)[:, : min(5, logits.shape[1])]
        correct1 += int((top[:, 0] == truth).sum())
        correct5 += int((top == truth[:, None]).any(axis=1).sum())
        count += len(truth)
    if count == 0:
        raise UserError("the evaluation split holds no images.", fix="check the dataset.")
    return Scores(correct1 / count, correct5 / count, count)


def time_files(
    paths: Sequence[Path], input_size: tuple[int, int, int], batch: int, timing: TimingSettings
) -> list[float]:
    """Median ms per call of each ONNX file at `batch`, timed interleaved in ONNX Runtime (as amc evaluate)."""
    backend = OrtBackend(threads=timing.threads, repeats=timing.repeats)
    timers = [backend.file_timer(path, (batch, *input_size)) for path in paths]
    return [m.median_ms for m in interleaved(timers, timing.repeats, TIMING_ROUNDS)]


def compare(
    float_path: Path,
    int8_path: Path,
    input_size: tuple[int, int, int],
    test: Dataset,
    search_val: Dataset,
    val_images: int | None,
    timing: TimingSettings,
    fp32_nodes: tuple[str, ...] = (),
) -> Comparison:
    """Both files scored on the test split and on search-val, sized, and timed at batch 1 and `timing.batch`."""
    one = time_files([float_path, int8_path], input_size, 1, timing)
    many = time_files([float_path, int8_path], input_size, timing.batch, timing)
    figures = []
    for index, path in enumerate((float_path, int8_path)):
        tested = ort_scores(path, test, threads=timing.threads)
        val = ort_scores(path, search_val, val_images, timing.threads)
        figures.append(Figures(tested.top1, tested.top5, val.top1, path.stat().st_size, one[index], many[index]))
        test_images, val_count = tested.images, val.images
    return Comparison(
        figures[0], figures[1], str(float_path), str(int8_path), fp32_nodes, unquantized(int8_path, fp32_nodes),
        test_images, val_count, timing,
    )  # fmt: skip


def layer_names(model: nn.Module) -> list[str]:
    """Qualified names of the conv and linear layers: the names `fp32_layers` and the sensitivity use."""
    return [name for name, module in model.named_modules() if isinstance(module, (nn.Conv2d, nn.Linear))]


def quantize_network(
    model: nn.Module,
    input_size: tuple[int, int, int],
    splits: Splits,
    out: Path,
    settings: PtqSettings,
    timing: TimingSettings,
    val_images: int | None = None,
    stem: str = "model",
) -> Comparison:
    """Export `model` to OUT/STEM.onnx, quantize it to OUT/STEM.int8.onnx calibrated on training images, and
    measure both; the float32 layers asked for are checked before any calibration runs."""
    out.mkdir(parents=True, exist_ok=True)
    float_path = export_float(model, out / f"{stem}.onnx", input_size)
    nodes = layer_nodes(onnx.load(str(float_path)), layer_names(model))
    excluded = fp32_nodes(settings.fp32_layers, nodes)
    batches = calibration_batches(splits.train, settings.calibration_images, seed=settings.seed)
    int8_path = quantize_file(float_path, out / f"{stem}.int8.onnx", batches, settings, excluded)
    return compare(float_path, int8_path, input_size, splits.test, splits.search_val, val_images, timing, excluded)


QUANTIZE_FILE = "quantize.json"
REPORT_TYPE = "amc.QuantizeReport"
REPORT_VERSION = 1


@dataclass(frozen=True)
class QuantizeReport:
    """What `amc quantize` measured, as quantize.json holds it (versioned JSON, never pickled)."""

    model: str
    source: str
    dataset: str
    settings: PtqSettings
    comparison: Comparison
    sensitivity: dict[str, Any] | None = None
    """`Sensitivity.to_dict()` when measured."""
    auto_fp32: dict[str, Any] | None = None
    """`AutoFp32.to_dict()` when asked for."""

    def to_dict(self) -> dict[str, Any]:
        return {"_type": REPORT_TYPE, "_version": REPORT_VERSION, **asdict(self)}

    @classmethod
    def from_dict(cls, data: Any, source: str = "quantize report") -> QuantizeReport:
        if not isinstance(data, dict) or data.get("_type") != REPORT_TYPE:
            raise UserError(f"{source} is not an amc quantize report (_type {REPORT_TYPE!r}).", fix="run amc quantize.")
        version = data.get("_version")
        if not isinstance(version, int) or not 1 <= version <= REPORT_VERSION:
            raise UserError(
                f"{source} has format version {version!r}; this amc reads 1..{REPORT_VERSION}.", fix="upgrade amc."
            )
        fields = {key: value for key, value in data.items() if not key.startswith("_")}
        settings = {**fields["settings"], "fp32_layers": tuple(fields["settings"].get("fp32_layers", ()))}
        return cls(**{
            **fields, "settings": PtqSettings(**settings), "comparison": Comparison.from_dict(fields["comparison"]),
        })  # fmt: skip

    def table(self) -> str:
        """fp32 beside INT8, one row per figure, as Markdown."""
        c, s = self.comparison, self.settings
        rows = [
            ["test top-1", _pct(c.fp32.test_top1), _pct(c.int8.test_top1), _pt(c.int8.test_top1 - c.fp32.test_top1)],
            ["test top-5", _pct(c.fp32.test_top5), _pct(c.int8.test_top5), _pt(c.int8.test_top5 - c.fp32.test_top5)],
            ["search-val top-1", _pct(c.fp32.val_top1), _pct(c.int8.val_top1),
             _pt(c.int8.val_top1 - c.fp32.val_top1)],
            ["file size (KiB)", f"{c.fp32.size_bytes / 1024:,.1f}", f"{c.int8.size_bytes / 1024:,.1f}",
             f"{c.fp32.size_bytes / c.int8.size_bytes:.2f}x smaller"],
            [f"latency ms (ORT, batch 1, {c.timing.threads} thr)", f"{c.fp32.batch1_ms:.3f}", f"{c.int8.batch1_ms:.3f}",
             f"{c.fp32.batch1_ms / c.int8.batch1_ms:.2f}x faster"],
            [f"latency ms (ORT, batch {c.timing.batch}, {c.timing.threads} thr)", f"{c.fp32.batch_ms:.3f}",
             f"{c.int8.batch_ms:.3f}", f"{c.fp32.batch_ms / c.int8.batch_ms:.2f}x faster"],
        ]  # fmt: skip
        head = (
            f"{self.model} on {self.dataset} ({self.source}): INT8 QDQ, {s.method} calibration on "
            f"{s.calibration_images} training images, {'per-channel' if s.per_channel else 'per-tensor'} weights, "
            f"{'symmetric signed' if s.symmetric_activations else 'asymmetric unsigned'} activations; test set "
            f"{c.test_images} images, search-val {c.val_images}"
        )
        text = head + "\n\n" + markdown_table(["", "fp32", "int8", "change"], rows)
        if c.fp32_nodes:
            text += f"\n\nkept in float32: {', '.join(s.fp32_layers)}"
        if c.float_ops:
            text += f"\n\nleft in float32 by ONNX Runtime: {', '.join(c.float_ops)}"
        return text


def _pct(value: float) -> str:
    return f"{100 * value:.2f}%"


def _pt(value: float) -> str:
    return f"{100 * value:+.2f} pt"
