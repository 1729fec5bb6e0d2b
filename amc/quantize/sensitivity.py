"""Which layers lose accuracy to INT8, measured on search-val, and which to keep in float32 for a loss bound.

Two views per conv/linear layer: the whole network quantized but that layer (what keeping it in float32 wins
back) and only that layer quantized (what it costs alone). `auto_fp32` keeps the layers that win back most in
float32, one at a time, until the INT8 network's search-val top-1 is within the bound of float32's. Search-val,
never the test set, decides, so the test figures stay an honest report.
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from torch.utils.data import Dataset

from amc.errors import UserError
from amc.quantize.ptq import PtqSettings, ort_scores, quantize_file
from amc.report.tables import markdown_table


@dataclass(frozen=True)
class LayerSensitivity:
    layer: str
    node: str
    all_but_top1: float
    """Search-val top-1 with every layer but this one in INT8."""
    only_top1: float
    """Search-val top-1 with only this layer in INT8."""


@dataclass(frozen=True)
class Sensitivity:
    fp32_top1: float
    int8_top1: float
    """Everything quantized (except the layers asked to stay float32)."""
    layers: tuple[LayerSensitivity, ...]
    val_images: int

    def worst(self) -> list[LayerSensitivity]:
        """Layers by what keeping them in float32 wins back, most first (ties: the one costing most alone)."""
        return sorted(self.layers, key=lambda layer: (-layer.all_but_top1, layer.only_top1))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Sensitivity:
        return cls(**{**data, "layers": tuple(LayerSensitivity(**layer) for layer in data["layers"])})


@dataclass(frozen=True)
class AutoStep:
    fp32_layers: tuple[str, ...]
    val_top1: float


@dataclass(frozen=True)
class AutoFp32:
    """The float32 layers `auto_fp32` chose and each step it took."""

    max_loss_pt: float
    fp32_layers: tuple[str, ...]
    met: bool
    steps: tuple[AutoStep, ...]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AutoFp32:
        return cls(**{
            **data, "fp32_layers": tuple(data["fp32_layers"]),
            "steps": tuple(AutoStep(tuple(step["fp32_layers"]), step["val_top1"]) for step in data["steps"]),
        })  # fmt: skip


@dataclass(frozen=True)
class _Scorer:
    """Quantizes the float file with some nodes left in float32 and scores it on search-val."""

    float_path: Path
    calibration: Sequence[np.ndarray]
    settings: PtqSettings
    search_val: Dataset
    val_images: int | None

    def __call__(self, exclude: Sequence[str]) -> float:
        with tempfile.TemporaryDirectory(prefix="amc-sensitivity-") as scratch:
            path = quantize_file(self.float_path, Path(scratch) / "q.onnx", self.calibration, self.settings, exclude)
            return ort_scores(path, self.search_val, self.val_images).top1


def layer_sensitivity(
    float_path: Path,
    nodes: Mapping[str, str],
    calibration: Sequence[np.ndarray],
    settings: PtqSettings,
    search_val: Dataset,
    val_images: int | None = None,
    kept: Sequence[str] = (),
) -> Sensitivity:
    """Search-val top-1 of the network with each layer of `nodes` (amc name -> ONNX node) alone left in float32,
    and alone quantized; `kept` nodes stay float32 throughout."""
    score = _Scorer(float_path, calibration, settings, search_val, val_images)
    every = [node.name for node in onnx.load(str(float_path)).graph.node if node.name]
    reference = ort_scores(float_path, search_val, val_images)
    rows = []
    for layer, node in nodes.items():
        if node in kept:
            continue
        others = [name for name in every if name != node]
        rows.append(LayerSensitivity(layer, node, score([*kept, node]), score(others)))
    return Sensitivity(reference.top1, score(kept), tuple(rows), reference.images)


def auto_fp32(
    float_path: Path,
    nodes: Mapping[str, str],
    sensitivity: Sensitivity,
    calibration: Sequence[np.ndarray],
    settings: PtqSettings,
    search_val: Dataset,
    max_loss_pt: float,
    val_images: int | None = None,
) -> AutoFp32:
    """Keep the layers that win back most in float32 until search-val top-1 is at most `max_loss_pt` points
    below float32's (or every layer is float32, `met` then says whether that was enough)."""
    if isinstance(max_loss_pt, bool) or not isinstance(max_loss_pt, (int, float)) or not 0 <= max_loss_pt <= 100:
        raise UserError(
            f"--auto-fp32 {max_loss_pt!r} is not a loss in top-1 points.",
            fix="use a number of percentage points in [0, 100], e.g. --auto-fp32 0.5.",
        )
    score = _Scorer(float_path, calibration, settings, search_val, val_images)
    target = sensitivity.fp32_top1 - max_loss_pt / 100
    chosen = [name for name in settings.fp32_layers]
    top1 = sensitivity.int8_top1
    steps = [AutoStep(tuple(chosen), top1)]
    for layer in sensitivity.worst():
        if top1 >= target:
            break
        chosen.append(layer.layer)
        top1 = score([nodes[name] for name in chosen])
        steps.append(AutoStep(tuple(chosen), top1))
    return AutoFp32(float(max_loss_pt), tuple(chosen), top1 >= target, tuple(steps))


def sensitivity_table(sensitivity: Sensitivity, top: int = 10) -> str:
    """The `top` layers keeping in float32 wins back most, as Markdown."""
    rows = [
        [layer.layer, f"{100 * layer.all_but_top1:.2f}%", f"{100 * (layer.all_but_top1 - sensitivity.int8_top1):+.2f}",
         f"{100 * layer.only_top1:.2f}%", f"{100 * (layer.only_top1 - sensitivity.fp32_top1):+.2f}"]
        for layer in sensitivity.worst()[:top]
    ]  # fmt: skip
    head = (
        f"INT8 sensitivity on {sensitivity.val_images} search-val images (fp32 top-1 "
        f"{100 * sensitivity.fp32_top1:.2f}%, all INT8 {100 * sensitivity.int8_top1:.2f}%), most sensitive first"
    )
    columns = ["layer", "all but it INT8", "pt won back", "only it INT8", "pt lost"]
    return head + "\n\n" + markdown_table(columns, rows)
