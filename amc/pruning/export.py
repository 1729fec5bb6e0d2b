"""Write a thinned network so it reloads without re-running the pruning, and export it to ONNX.

`save_thinned` writes `model.pt` (the state dict, loadable with weights_only=True), `thinned.json` (which format
and why) and, where it describes the network, `architecture.json` (versioned: the registry model it derives from
plus the new shape of every conv, linear and BatchNorm layer); otherwise `model.pt2`, a torch.export program
(amc/pruning/exported.py). `load_thinned` reads either: it builds the registry model, resizes those layers to the
recorded shapes and loads the weights, or loads the program: no original checkpoint, strategy, selection or
Torch-Pruning involved. `check_saveable` tells before any pruning whether one of the two will hold the network.
`export_onnx` writes an ONNX file and checks it: the ONNX checker passes and ONNX Runtime's output equals
PyTorch's within 1e-4 (relative to the output's scale when that exceeds 1).
"""

from __future__ import annotations

import json
import warnings
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from amc.errors import UserError
from amc.io import atomic_torch_save, atomic_write_text, json_text
from amc.models import create_model, model_info
from amc.pruning.exported import (
    ARCHITECTURE,
    TORCH_EXPORT,
    Manifest,
    export_program,
    load_program,
    read_manifest,
    save_program,
    write_manifest,
)

ARCH_TYPE = "amc.ThinnedArchitecture"
ARCH_VERSION = 1
_BatchNorm = nn.modules.batchnorm._BatchNorm
_REBUILDABLE = (nn.Conv2d, nn.Linear, nn.BatchNorm1d, nn.BatchNorm2d)
"""The exact layer types architecture.json rebuilds; a subclass (timm's BatchNormAct2d with its activation,
Conv2dSame's padding) carries behaviour a rebuild would drop, so it goes to torch.export."""


@dataclass(frozen=True)
class ThinnedFiles:
    weights: Path
    architecture: Path | None
    """architecture.json, when it describes the network; else None and `program` is set."""
    manifest: Path
    format: str
    """architecture.json | torch.export"""
    reason: str
    program: Path | None = None


def describe(model: nn.Module) -> dict[str, dict[str, Any]]:
    """Shape-defining attributes of every conv, linear and BatchNorm layer of exactly those types, by name."""
    layers: dict[str, dict[str, Any]] = {}
    for name, module in model.named_modules():
        if type(module) not in _REBUILDABLE:
            continue
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
    input_size: tuple[int, int, int] | None = None,
) -> ThinnedFiles:
    """Write model.pt, thinned.json and architecture.json for `model`, a thinned `create_model(model_name, ...)`;
    when architecture.json cannot describe it, model.pt2 (a torch.export program of inputs `input_size`) instead."""
    out = Path(out_dir)
    obstacle = architecture_obstacle(model, model_name, in_channels, num_classes)
    architecture = program = None
    if obstacle is None:
        reason = f"every resized layer of {model_name} is a conv, linear or BatchNorm layer"
    elif input_size is None:
        raise UserError(
            f"cannot save the thinned model: {obstacle}.", fix="pass input_size=(C, H, W) for torch.export."
        )
    else:
        program, reason = save_program(model, out, input_size), obstacle
    atomic_torch_save(out / "model.pt", cpu_state_dict(model))
    if obstacle is None:
        architecture = out / "architecture.json"
        data = {
            "_type": ARCH_TYPE,
            "_version": ARCH_VERSION,
            "model": model_name,
            "in_channels": in_channels,
            "num_classes": num_classes,
            "layers": describe(model),
            **(extra or {}),
        }
        atomic_write_text(architecture, json_text(data, architecture))
    written = ARCHITECTURE if obstacle is None else TORCH_EXPORT
    manifest = write_manifest(out, Manifest(written, reason, model_name, input_size, num_classes))
    return ThinnedFiles(out / "model.pt", architecture, manifest, written, reason, program)


def load_thinned(out_dir: str | Path) -> nn.Module:
    """The network written by `save_thinned`, in eval mode (a torch.export program: an `ExportedNetwork`)."""
    out = Path(out_dir)
    manifest = read_manifest(out)
    if manifest is not None and manifest.format == TORCH_EXPORT:
        return load_program(out)
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
    if getattr(state, "_metadata", None) is None:  # written before model.pt kept it: the fresh model's versions
        state = OrderedDict(state)
        state._metadata = model.state_dict()._metadata  # type: ignore[attr-defined]
    model.load_state_dict(state)
    return model.eval()


def cpu_state_dict(model: nn.Module) -> OrderedDict[str, torch.Tensor]:
    """`model.state_dict()` on the CPU with its per-module `_metadata` (format versions), which
    `load_state_dict` hands to `_load_from_state_dict` hooks: torchvision's MNASNet refuses weights without it."""
    state = model.state_dict()
    cpu = OrderedDict((key, value.detach().cpu()) for key, value in state.items())
    cpu._metadata = state._metadata  # type: ignore[attr-defined]
    return cpu


def is_thinned_folder(folder: str | Path) -> bool:
    """Whether `folder` holds a network `load_thinned` reads (either format)."""
    folder = Path(folder)
    return (folder / "architecture.json").is_file() or read_manifest(folder) is not None


def architecture_obstacle(model: nn.Module, model_name: str, in_channels: int, num_classes: int) -> str | None:
    """Why architecture.json cannot describe thinned `model`, or None when it can: the model is not in the zoo,
    or a tensor whose shape changed belongs to a layer type `describe` does not record."""
    if not _in_zoo(model_name):
        return f"{model_name or 'the model'} is not in amc's model zoo, so architecture.json has no model to resize"
    reference = create_model(model_name, in_channels=in_channels, num_classes=num_classes).state_dict()
    described = set(describe(model))
    for key, value in model.state_dict().items():
        owner = key.rpartition(".")[0]
        if key in reference and reference[key].shape != value.shape and owner not in described:
            kind = type(model.get_submodule(owner)).__name__
            return f"{kind} at {owner or 'the model'} is not rebuildable from architecture.json ({key} changed shape)"
    return None


def check_saveable(model: nn.Module, model_name: str, input_size: tuple[int, int, int]) -> str:
    """Before any pruning: the format a thinned `model` will most likely be saved in. architecture.json when it is a
    zoo model whose every parameter sits in a conv, linear or BatchNorm layer; otherwise torch.export, checked on
    the dense network now, so a network neither can hold is a UserError naming the module, not a late failure."""
    others = [name for name, module in model.named_modules() if module._parameters and type(module) not in _REBUILDABLE]
    if _in_zoo(model_name) and not others:
        return ARCHITECTURE
    export_program(model.eval(), input_size)
    return TORCH_EXPORT


def _in_zoo(name: str) -> bool:
    try:
        model_info(name)
    except UserError:
        return False
    return True


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
    if diff > tolerance * max(1.0, float(abs(expected).max())):  # random weights can give logits in the thousands
        raise UserError(
            f"ONNX export of the model differs from PyTorch by {diff:.2e} (> {tolerance} of the output's scale).",
            fix="report this model; use the PyTorch state dict meanwhile.",
        )
    return OnnxCheck(path, diff)
