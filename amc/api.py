"""The Python API: a pruning strategy for your own model, data and evaluation, without YAML or the model zoo.

    task = amc.prepare(model, (3, 32, 32), my_evaluate, cost_model="macs", budget=0.5, calibration=train_loader)
    result = amc.search_strategy(task, "runs/mine")        # any method: method="netadapt", "uniform", ...
    pruned = amc.apply(task, result.strategy)              # channels really removed, BN re-estimated
    ...                                                    # fine-tune `pruned` with your own loop
    amc.export(pruned, "runs/mine/final", result.strategy, (3, 32, 32))

`amc search` and `amc evaluate` run through these same functions: the CLI only adds the configured data, the
trained base model of the zoo and the report. (`search_strategy`, not `search`: `amc.search` is the package
of the search methods.)
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from amc.config import load_config
from amc.errors import UserError
from amc.graph import LayerTable, build_layer_table
from amc.io import atomic_torch_save
from amc.models import model_info
from amc.pruning import LayerDensities, Strategy, adaptive_bn_, apply_masks_, magnitude_masks, remove_masks_, thin
from amc.pruning.calibration import Batches, iter_images
from amc.pruning.export import export_onnx, save_thinned
from amc.schedule import Schedule, load_schedule, save_schedule
from amc.search.methods import run_search
from amc.search.result import SearchResult
from amc.search.task import CallbackEvaluator, SearchTask, task_from_objects
from hwmodel import CostModel

ScheduleSource = Strategy | LayerDensities | Schedule | str | Path
"""A strategy or schedule object, or a file: strategy/schedule JSON or a Distiller schedule YAML."""


def prepare(
    model: nn.Module,
    input_size: tuple[int, int, int],
    evaluate: Callable[[nn.Module], float],
    *,
    method: str = "amc",
    cost_model: str | CostModel = "macs",
    budget: float = 0.5,
    budget_value: float | None = None,
    calibration: Batches | None = None,
    calibration_images: int = 512,
    model_name: str = "custom",
    dataset: str = "",
    settings: Mapping[str, Any] | None = None,
    progress: bool = False,
    log: Callable[[str], None] = print,
) -> SearchTask:
    """Everything a search needs, from your objects.

    `evaluate(model)` returns accuracy in [0, 1] on your held-out images (not the test set); it gets a pruned copy.
    `budget` is a share of the dense model's cost by `cost_model` (a name, as in `amc list devices`, or an object);
    `budget_value` an absolute cost in its unit instead. `calibration` (e.g. your training loader) gives the
    images for BatchNorm re-estimation before each score and for least-squares channel selection; without it,
    candidates are scored as they are and channels ranked by L1 norm. `settings` sets any other config key by its
    dotted name, e.g. {"search.episodes": 100, "agent.warmup_episodes": 25}.
    """
    batches = [images for images in iter_images(calibration, calibration_images)] if calibration is not None else []
    overrides: dict[str, Any] = {
        "model.name": model_name,
        "model.checkpoint": "none",
        "search.method": method,
        "search.selection": "lstsq" if batches else "l1",
        "search.adaptive_bn": bool(batches),
        "budget.ratio": budget,
        "budget.value": budget_value,
        "cost.model": cost_model if isinstance(cost_model, str) else cost_model.name,
        **(settings or {}),
    }
    config = load_config(None, overrides)
    evaluator = CallbackEvaluator(evaluate, batches, config.search.adaptive_bn)
    given = None if isinstance(cost_model, str) else cost_model
    return task_from_objects(
        config, copy.deepcopy(model), input_size, evaluator, given, dataset, progress=progress, log=log
    )


def search_strategy(
    task: SearchTask, out: str | Path, resume: bool = False, progress: bool = True, log: Callable[[str], None] = print
) -> SearchResult:
    """Run the task's method; writes the run folder `out` (as `amc search`) and returns the best strategy."""
    return run_search(task, Path(out), resume=resume, progress=progress, log=log)


def as_schedule(source: ScheduleSource, table: LayerTable) -> Schedule:
    """Any strategy, densities, schedule or schedule file as a Schedule checked against `table`."""
    if isinstance(source, Strategy):
        source.check(table)
        return Schedule(strategy=source)
    if isinstance(source, LayerDensities):
        source.check(table)
        return Schedule(densities=source)
    if isinstance(source, Schedule):
        return source
    return load_schedule(Path(source), table)


def apply(task: SearchTask, source: ScheduleSource) -> nn.Module:
    """A pruned copy of the task's model, ready to fine-tune: channels removed (the task's selection), BatchNorm
    statistics re-estimated on the calibration images, element-wise masks attached (they hold during your
    fine-tuning; `export` bakes them into the weights)."""
    schedule = as_schedule(source, task.table)
    batches = task.evaluator.bn_batches
    kept = schedule.kept_channels(task.table)
    selection = task.config.search.selection if batches else "l1"
    pruned = thin(task.model, task.table, kept, selection=selection, calibration=batches or None)
    if schedule.densities:
        sparsity = {name: 1.0 - density for name, density in schedule.densities.densities.items()}
        apply_masks_(pruned, magnitude_masks(pruned, sparsity))
    if batches:
        adaptive_bn_(pruned, batches, num_images=sum(len(batch) for batch in batches))
    return pruned.eval()


@dataclass(frozen=True)
class ExportedModel:
    folder: Path
    weights: Path
    """model.pt: the state dict, `torch.load(weights_only=True)`."""
    schedule_json: Path
    schedule_yaml: Path
    """The schedule in Distiller's YAML."""
    onnx: Path | None
    architecture: Path | None
    """architecture.json for zoo models (`amc.pruning.load_thinned` rebuilds them); use `load_pruned` otherwise."""


def export(
    model: nn.Module,
    out: str | Path,
    schedule: Strategy | LayerDensities | Schedule,
    input_size: tuple[int, int, int],
    model_name: str = "",
    onnx: bool = True,
) -> ExportedModel:
    """Write the pruned (fine-tuned) network and its schedule: model.pt, schedule.json, schedule.yaml (Distiller),
    model.onnx (checked against ONNX Runtime) and, for zoo models, architecture.json. `model` is not changed."""
    folder = Path(out)
    plain = remove_masks_(copy.deepcopy(model)).eval()
    architecture = None
    if _in_zoo(model_name):
        num_classes = build_layer_table(plain, input_size).layers[-1].spec.out_channels
        extra = {"input_size": list(input_size)}
        architecture = save_thinned(plain, folder, model_name, input_size[0], num_classes, extra).architecture
    else:
        atomic_torch_save(folder / "model.pt", {key: value.detach().cpu() for key, value in plain.state_dict().items()})
    save_schedule(schedule, folder / "schedule.json")
    save_schedule(schedule, folder / "schedule.yaml")
    onnx_path = export_onnx(plain, folder / "model.onnx", input_size).path if onnx else None
    return ExportedModel(folder, folder / "model.pt", folder / "schedule.json", folder / "schedule.yaml", onnx_path,
                         architecture)  # fmt: skip


def load_pruned(base: nn.Module, folder: str | Path, input_size: tuple[int, int, int] | None = None) -> nn.Module:
    """The network `export` wrote, rebuilt from your own (unpruned) model: its channels are removed as the saved
    schedule says, then the saved weights are loaded. `input_size` defaults to the one the strategy records."""
    folder = Path(folder)
    path = folder / "schedule.json"
    if not path.is_file():
        raise UserError(f"{path} does not exist.", fix="pass a folder written by amc.export or `amc evaluate`.")
    saved = Schedule.from_dict(json.loads(path.read_text()), f"schedule {path}")
    size = input_size or (saved.strategy.metadata.input_size if saved.strategy else None)
    if size is None:
        raise UserError(f"{path} does not record the input size.", fix="pass input_size=(C, H, W).")
    table = build_layer_table(base, size)
    kept = saved.kept_channels(table)
    model = thin(base, table, kept) if kept else copy.deepcopy(base)
    model.load_state_dict(torch.load(folder / "model.pt", map_location="cpu", weights_only=True))
    return model.eval()


def _in_zoo(name: str) -> bool:
    try:
        model_info(name)
    except UserError:
        return False
    return True
