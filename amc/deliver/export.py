"""One folder layout for every pruned network amc writes (`amc prune`, `amc evaluate`, `amc.export`):

model.pt            the state dict (`torch.load(weights_only=True)`)
architecture.json   zoo models it describes: the thinned shapes, so `amc.pruning.load_thinned` rebuilds it alone
model.pt2           zoo models it cannot describe (e.g. ConvNeXt's LayerNorm2d): a torch.export program instead
thinned.json        zoo models: which of the two was written, and why
schedule.json       the strategy / densities applied (amc's own format), what `load_pruned` reads back
schedule.yaml       the same as a Distiller-style schedule
model.onnx          checked against ONNX Runtime (unless skipped)
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from amc.errors import UserError
from amc.graph import build_layer_table
from amc.io import atomic_torch_save
from amc.models import create_model, model_info
from amc.pruning import LayerDensities, Strategy, prune_network, remove_masks_
from amc.pruning.export import cpu_state_dict, export_onnx, load_thinned, save_thinned
from amc.pruning.exported import TORCH_EXPORT, read_manifest
from amc.schedule import Schedule, save_schedule

SCHEDULE_FILE = "schedule.json"


@dataclass(frozen=True)
class ExportedModel:
    folder: Path
    weights: Path
    """model.pt: the state dict, `torch.load(weights_only=True)`."""
    schedule_json: Path
    schedule_yaml: Path
    """The schedule in Distiller's YAML."""
    onnx: Path | None
    onnx_max_abs_diff: float | None
    """ONNX Runtime's output vs PyTorch's on a random input."""
    architecture: Path | None
    """architecture.json for zoo models it describes (`amc.pruning.load_thinned` rebuilds them)."""
    program: Path | None = None
    """model.pt2 (torch.export) for zoo models architecture.json cannot describe; `load_thinned` loads it too.
    Neither for other models: use `load_pruned` on your base model."""


def export(
    model: nn.Module,
    out: str | Path,
    schedule: Strategy | LayerDensities | Schedule,
    input_size: tuple[int, int, int],
    model_name: str = "",
    onnx: bool = True,
    extra: dict[str, Any] | None = None,
) -> ExportedModel:
    """Write the pruned (fine-tuned) network and its schedule in the one folder layout; `model` is not changed.
    `extra` goes into architecture.json (e.g. the checkpoint the network came from). A model on a GPU is exported
    from a CPU copy (what deployment files and the ONNX check are made from)."""
    folder = Path(out)
    plain = remove_masks_(copy.deepcopy(model)).eval().cpu()
    architecture = program = None
    if _in_zoo(model_name):
        num_classes = build_layer_table(plain, input_size).layers[-1].spec.out_channels
        details = {"input_size": list(input_size), **(extra or {})}
        saved = save_thinned(plain, folder, model_name, input_size[0], num_classes, details, input_size)
        architecture, program = saved.architecture, saved.program
    else:
        atomic_torch_save(folder / "model.pt", cpu_state_dict(plain))
    save_schedule(schedule, folder / SCHEDULE_FILE)
    save_schedule(schedule, folder / "schedule.yaml")
    check = export_onnx(plain, folder / "model.onnx", input_size) if onnx else None
    return ExportedModel(
        folder, folder / "model.pt", folder / SCHEDULE_FILE, folder / "schedule.yaml", check.path if check else None,
        check.max_abs_diff if check else None, architecture, program,
    )  # fmt: skip


def load_pruned(base: nn.Module, folder: str | Path, input_size: tuple[int, int, int] | None = None) -> nn.Module:
    """The network `export` wrote, rebuilt from your own (unpruned) model: its channels are removed as the saved
    schedule says, then the saved weights are loaded. `input_size` defaults to the one the strategy records."""
    folder = Path(folder)
    path = folder / SCHEDULE_FILE
    if not path.is_file():
        raise UserError(
            f"{path} does not exist.", fix="pass a folder written by amc.export, `amc prune` or `amc evaluate`."
        )
    saved = Schedule.from_dict(json.loads(path.read_text()), f"schedule {path}")
    size = input_size or (saved.strategy.metadata.input_size if saved.strategy else None)
    if size is None:
        raise UserError(f"{path} does not record the input size.", fix="pass input_size=(C, H, W).")
    table = build_layer_table(base, size)
    model = prune_network(base, table, saved.kept_channels(table)).model
    model.load_state_dict(torch.load(folder / "model.pt", map_location="cpu", weights_only=True))
    return model.eval()


def load_thinned_module(folder: str | Path) -> nn.Module:
    """A thinned folder's network with its conv, linear and BatchNorm modules, as fine-tuning, per-layer
    quantization and size need: architecture.json rebuilt, or for a torch.export folder (whose program has no
    such modules) its recorded zoo model thinned again by schedule.json, then given the saved weights."""
    folder = Path(folder)
    manifest = read_manifest(folder)
    if manifest is None or manifest.format != TORCH_EXPORT:
        return load_thinned(folder)
    if manifest.input_size is None or manifest.num_classes is None:
        raise UserError(f"{folder / 'thinned.json'} does not record the input size and classes.",
                        fix="write the folder again with `amc prune`.")  # fmt: skip
    base = create_model(manifest.model, in_channels=manifest.input_size[0], num_classes=manifest.num_classes)
    return load_pruned(base, folder, manifest.input_size)


def _in_zoo(name: str) -> bool:
    try:
        model_info(name)
    except UserError:
        return False
    return True
