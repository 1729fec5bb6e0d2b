"""Write a thinned network so it reloads without re-running the pruning, and export it to ONNX.

`save_thinned` writes `model.pt` (the state dict, loadable with weights_only=True) and `architecture.json`
(versioned: the registry model it derives from plus the new shape of every conv, linear and BatchNorm layer).
`load_thinned` builds the registry model, resizes those layers to the recorded shapes and loads the weights:
no original checkpoint, strategy, selection or Torch-Pruning involved. `export_onnx` writes an ONNX file and
checks it: the ONNX checker passes and ONNX Runtime's output equals PyTorch's within 1e-4.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from amc.errors import UserError
from amc.io import atomic_torch_save, atomic_write_text, json_text
from amc.models import create_model

ARCH_TYPE = "amc.ThinnedArchitecture"
ARCH_VERSION = 1
_BatchNorm = nn.modules.batchnorm._BatchNorm


@dataclass(frozen=True)
class ThinnedFiles:
    weights: Path
    architecture: Path


def describe(model: nn.Module) -> dict[str, dict[str, Any]]:
    """Shape-defining attributes of every conv, linear and BatchNorm layer, by qualified name."""
    layers: dict[str, dict[str, Any]] = {}
    for name, module in model.named_modules():
        if isinstance(module, nn.Conv2d):
            layers[name] = {
                "type": "Conv2d",
                "in_channels": module.in_channels,
                "out_channels": module.out_channels,
                "groups": module.groups,
            }
        elif isinstance(module, nn.Linear):
            layers[name] = {"type": "Linear", "in_features": module.in_features, "out_features": module.out_features}
        elif isinstance(module, _BatchNorm):
            layers[name] = {"type": type(module).__name__, "num_features": module.num_features}
    return layers


def save_thinned(
    model: nn.Module,
    out_dir: str | Path,
    model_name: str,
    in_channels: int,
    num_classes: int,
    extra: dict[str, Any] | None = None,
) -> ThinnedFiles:
    """Write model.pt + architecture.json for `model`, a thinned `create_model(model_name, ...)`."""
    out = Path(out_dir)
    reference = create_model(model_name, in_channels=in_channels, num_classes=num_classes)
    _check_describable(model, reference)
    architecture = {
        "_type": ARCH_TYPE,
        "_version": ARCH_VERSION,
        "model": model_name,
        "in_channels": in_channels,
        "num_classes": num_classes,
        "layers": describe(model),
        **(extra or {}),
    }
    files = ThinnedFiles(out / "model.pt", out / "architecture.json")
    state = {key: value.detach().cpu() for key, value in model.state_dict().items()}
    atomic_torch_save(files.weights, state)
    atomic_write_text(files.architecture, json_text(architecture, files.architecture))
    return files


def load_thinned(out_dir: str | Path) -> nn.Module:
    """The network written by `save_thinned`, in eval mode."""
    out = Path(out_dir)
    path = out / "architecture.json"
    if not path.is_file():
        raise UserError(f"{path} does not exist.", fix="pass a folder written by `amc prune --out`.")
    data = json.loads(path.read_text())
    if data.get("_type") != ARCH_TYPE or not isinstance(data.get("_version"), int):
        raise UserError(f"{path} is not an amc thinned-architecture file.", fix="pass a folder from `amc prune`.")
    if data["_version"] > ARCH_VERSION:
        raise UserError(
            f"{path} has format version {data['_version']}; this amc reads 1..{ARCH_VERSION}.", fix="upgrade amc."
        )
    model = create_model(data["model"], in_channels=data["in_channels"], num_classes=data["num_classes"])
    for name, spec in data["layers"].items():
        _resize(model, name, spec)
    state = torch.load(out / "model.pt", map_location="cpu", weights_only=True)
    model.load_state_dict(state)
    return model.eval()


def _check_describable(model: nn.Module, reference: nn.Module) -> None:
    """Every tensor whose shape changed must belong to a layer `describe` records."""
    described = set(describe(model))
    reference_state = reference.state_dict()
    for key, value in model.state_dict().items():
        owner = key.rpartition(".")[0]
        if key in reference_state and reference_state[key].shape != value.shape and owner not in described:
            raise UserError(
                f"cannot save the thinned model: {key} changed shape and its layer type "
                f"({type(model.get_submodule(owner)).__name__}) is not one amc can rebuild.",
                fix="save it with torch.export or ONNX instead.",
            )


def _resize(model: nn.Module, name: str, spec: dict[str, Any]) -> None:
    old = model.get_submodule(name)
    if spec["type"] == "Conv2d":
        assert isinstance(old, nn.Conv2d)
        (kh, kw), (sh, sw), (dh, dw) = old.kernel_size, old.stride, old.dilation
        new: nn.Module = nn.Conv2d(
            spec["in_channels"],
            spec["out_channels"],
            (kh, kw),
            (sh, sw),
            old.padding,  # type: ignore[arg-type]
            (dh, dw),
            spec["groups"],
            old.bias is not None,
            old.padding_mode,
        )
    elif spec["type"] == "Linear":
        assert isinstance(old, nn.Linear)
        new = nn.Linear(spec["in_features"], spec["out_features"], old.bias is not None)
    else:
        assert isinstance(old, _BatchNorm)
        new = type(old)(spec["num_features"], old.eps, old.momentum, old.affine, old.track_running_stats)
    parent_name, _, child = name.rpartition(".")
    setattr(model.get_submodule(parent_name) if parent_name else model, child, new)


@dataclass(frozen=True)
class OnnxCheck:
    path: Path
    max_abs_diff: float


def export_onnx(
    model: nn.Module, path: str | Path, input_size: tuple[int, int, int], tolerance: float = 1e-4
) -> OnnxCheck:
    """Export to ONNX (batch dimension dynamic), run the ONNX checker and compare ONNX Runtime with PyTorch."""
    import onnx
    import onnxruntime

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    model = model.eval()
    example = torch.randn(2, *input_size)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notice
        torch.onnx.export(
            model,
            (example,),
            str(path),
            dynamo=False,
            input_names=["input"],
            output_names=["logits"],
            dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}},
        )
    onnx.checker.check_model(onnx.load(str(path)))
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = session.run(None, {"input": example.numpy()})[0]
    with torch.no_grad():
        expected = model(example).numpy()
    diff = float(abs(got - expected).max())
    if diff > tolerance:
        raise UserError(
            f"ONNX export of the model differs from PyTorch by {diff:.2e} (> {tolerance}).",
            fix="report this model; use the PyTorch state dict meanwhile.",
        )
    return OnnxCheck(path, diff)
