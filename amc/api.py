"""The Python API: a pruning strategy for your own model, data and scoring, without YAML or the model zoo.

    task = amc.prepare(model, (3, 32, 32), my_score, cost_model="macs", budget=0.5, calibration=train_loader)
    result = amc.search_strategy(task, "runs/mine")        # any method: method="netadapt", "uniform", ...
    pruned = amc.apply(task, result.best)                  # channels really removed, BN re-estimated
    ...                                                    # fine-tune `pruned` with your own loop
    amc.export(pruned, "runs/mine/final", result.best, (3, 32, 32))

A detector's backbone (torchvision detectors; the FPN, RPN and heads keep their widths):

    task = amc.prepare(detector, (3, 512, 512), my_evaluate, backbone="backbone.body", method="random")
    result = amc.search_strategy(task, "runs/det")         # my_evaluate(detector) -> float, e.g. mAP on your images
    pruned = amc.apply(task, result.best)                  # a view; pruned.detector is the thinned detector
    amc.save_detector(pruned, "runs/det/final", result.best)   # state dict + strategy (amc.load_detector reads it)

`amc search` and `amc evaluate` run through these same objects: the CLI only adds the configured data, the
trained base model of the zoo and the report. (`search_strategy`, not `search`: `amc.search` is the package
of the search methods.)
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from torch import nn

from amc.config import load_config
from amc.deliver.apply import ScheduleSource, apply, as_schedule
from amc.deliver.export import ExportedModel, export, load_pruned
from amc.detection import backbone_view, load_detector, on_detector, save_detector
from amc.device import check_compute, module_device, resolve_device, to_device
from amc.graph import LayerTable
from amc.lottery import LotteryResult, LotterySettings, run_lottery
from amc.problem import CallbackScorer, Task, problem_from_objects
from amc.pruning.calibration import Batches, iter_images
from hwmodel import CostModel

if TYPE_CHECKING:
    from amc.search.result import SearchResult

__all__ = [
    "ExportedModel",
    "LotteryResult",
    "LotterySettings",
    "ScheduleSource",
    "apply",
    "as_schedule",
    "export",
    "load_detector",
    "load_pruned",
    "prepare",
    "run_lottery",
    "save_detector",
    "search_strategy",
]


def prepare(
    model: nn.Module,
    input_size: tuple[int, int, int],
    score: Callable[[nn.Module], float],
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
    device: str | None = None,
    progress: bool = False,
    log: Callable[[str], None] = print,
    backbone: str | None = None,
) -> Task:
    """Everything a search needs, from your objects.

    `score(model)` returns accuracy in [0, 1] on your held-out images (not the test set); it gets a pruned copy.
    `budget` is a share of the dense model's cost by `cost_model` (a name, as in `amc list devices`, or an object);
    `budget_value` an absolute cost in its unit instead. `calibration` (e.g. your training loader) gives the
    images for BatchNorm re-estimation before each score and for least-squares channel selection; without it,
    candidates are scored as they are and channels ranked by L1 norm. `settings` sets any other config key by its
    dotted name, e.g. {"search.episodes": 100, "agent.warmup_episodes": 25}. `device` ("cpu", "cuda", "cuda:N",
    "auto"; default: where `model` is) is where candidates are pruned, re-estimated and handed to `score`: the
    model copy and the calibration images move there once, so `score` must bring its own images to the model's
    device; `settings={"experiment.amp": True}` adds bfloat16 autocast to the BN and training steps amc runs.

    With `backbone` (e.g. "backbone.body"), `model` is a torchvision-style detector and only that part of it is
    pruned (amc.graph.detector); `score(detector)` then scores the whole thinned detector, `input_size` is the
    size its transform resizes images to, and calibration images (RGB in [0, 1], at that size) are normalised
    as its transform would and go through its backbone.
    """
    batches = [images for images in iter_images(calibration, calibration_images)] if calibration is not None else []
    overrides: dict[str, Any] = {
        "experiment.device": str(module_device(model)),
        "model.name": model_name,
        "model.checkpoint": "none",
        "search.method": method,
        "search.selection": "lstsq" if batches else "l1",
        "search.adaptive_bn": bool(batches),
        "budget.ratio": budget,
        "budget.value": budget_value,
        "cost.model": cost_model if isinstance(cost_model, str) else cost_model.name,
        **(settings or {}),
        **({"experiment.device": device} if device is not None else {}),
    }
    config = load_config(None, overrides, check_cost_model=isinstance(cost_model, str))  # an object is checked by use
    config = check_compute(config)
    where = resolve_device(config.experiment.device)
    scorer = CallbackScorer(score, [images.to(where) for images in batches], config.search.adaptive_bn)
    given = None if isinstance(cost_model, str) else cost_model
    table: LayerTable | None = None
    if backbone is None:
        model = copy.deepcopy(model)
    else:
        model, table = backbone_view(model, input_size, backbone, model_name)  # the view holds a copy
        scorer.score = on_detector(score)
    problem = problem_from_objects(
        config, model, input_size, scorer, given, dataset, progress=progress, log=log, table=table
    )
    to_device(problem.model, where, config.experiment.channels_last)
    return Task(config, problem)


def search_strategy(
    task: Task, out: str | Path, resume: bool = False, progress: bool = True, log: Callable[[str], None] = print
) -> SearchResult:
    """Run the task's method; writes the run folder `out` (as `amc search`) and returns the best strategy."""
    from amc.search.methods import run_search

    return run_search(task, Path(out), resume=resume, progress=progress, log=log)
