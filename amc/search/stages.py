"""Iterative pruning (`search.stages: K`): search, thin, fine-tune, search again (Han et al. 2015; AMC's multi-stage
search for high compression).

Stage k searches the network stage k-1 left (stage 1: the base model), fine-tuned on the training split, with the
configured method, down to ratio^(k/K) of the ORIGINAL dense cost: a geometric split, so every stage removes the
same share of the cost it is given, and the last stage lands on the configured budget. The run folder:

    config.yaml           the resolved config, as run (a resume with other results-changing settings is refused)
    stage_k/              a normal run folder of the method (its config.yaml names its own absolute budget)
    stage_k/finetuned/    stages 1..K-1: the stage's thinned network after fine-tuning (the next stage's base)
    stage_k/stage.json    written when stage k is done: a resumed run skips it
    final/                the last stage's thinned network (not fine-tuned: `amc evaluate RUN` fine-tunes it)
    composed_strategy.json  the final network's channels as a strategy of the ORIGINAL network
    summary.json          per stage: budget, cost, search-val accuracy before and after fine-tuning; the composed result

Keep ratios in stage_k are relative to the stage's input network; the composed keep of a group is the product of
the stages' (channels actually kept by the final network over the original's).
"""

from __future__ import annotations

import copy
import dataclasses
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from amc.config import ExperimentConfig, save_config
from amc.device import resolve_device, to_device
from amc.errors import UserError
from amc.graph import build_layer_table
from amc.io import atomic_write_json
from amc.problem import Task, problem_from_objects
from amc.pruning import Strategy
from amc.pruning.export import load_thinned, save_thinned
from amc.search.result import SearchResult
from amc.search.run_folder import _finite, recorded_rows
from amc.training.loop import TrainSettings, train

SearchMethod = Callable[..., SearchResult]

STAGED_TYPE = "amc.StagedSearch"
DONE_FILE = "stage.json"
FINETUNED = "finetuned"
FINAL = "final"
COMPOSED_FILE = "composed_strategy.json"


def stage_budgets(dense_cost: float, target: float, stages: int) -> list[float]:
    """Absolute budgets of stages 1..K: dense * (target / dense)^(k / K). Geometric, not linear: each stage keeps
    the same share of its input's cost, so no late stage has to make a deeper cut than the early ones did."""
    share = target / dense_cost
    return [dense_cost * share ** (k / stages) for k in range(1, stages + 1)]


def task_on_network(task: Task, model: nn.Module, config: ExperimentConfig | None = None) -> Task:
    """The task's search (its scorer and data; `config`, default the task's) on another network, e.g. a thinned one:
    the problem is built by the one factory (`problem_from_objects`), as the Python API does for any module."""
    config = config or task.config
    problem = problem_from_objects(
        config, model, task.input_size, task.problem.scorer, None, task.dataset, progress=False, log=lambda _: None
    )
    to_device(problem.model, resolve_device(config.experiment.device), config.experiment.channels_last)
    return Task(config, problem, task.data)


def run_stages(
    task: Task,
    out: Path,
    method: SearchMethod,
    resume: bool = False,
    progress: bool = True,
    log: Callable[[str], None] = print,
) -> SearchResult:
    """Run `search.stages` searches of `method` in sequence (see the module docstring); the caller holds the folder's
    lock. Returns the last stage's result (its strategy is relative to its input network) against the original
    dense cost and search-val accuracy; the composed strategy is in `out`/composed_strategy.json."""
    config, out = task.config, Path(out)
    _check_task(task)
    _check_folder(task, out, resume)
    out.mkdir(parents=True, exist_ok=True)
    save_config(config, out / "config.yaml")
    original = task.problem
    target = original.budget.value
    budgets = stage_budgets(original.dense_cost, target, config.search.stages)
    dense_accuracy = original.scorer(_copy(original.model))
    records: list[dict[str, Any]] = []
    results: list[SearchResult] = []
    network = original.model
    for number, budget in enumerate(budgets, 1):
        folder = out / f"stage_{number}"
        last = number == len(budgets)
        stage_config = dataclasses.replace(
            config,
            search=dataclasses.replace(config.search, stages=1),
            budget=dataclasses.replace(config.budget, value=budget, ratio=None),
        )
        if number > 1:
            network = load_thinned(out / f"stage_{number - 1}" / FINETUNED)
        stage = task_on_network(task, network, stage_config)
        done = folder / DONE_FILE
        if done.is_file() and not last:
            records.append(_read_record(done))
            log(f"stage {number}/{len(budgets)} done before, skipped")
            continue
        log(f"stage {number}/{len(budgets)}: budget {budget:.6g} {original.budget.unit} "
            f"({100 * budget / original.dense_cost:.1f}% of dense)")  # fmt: skip
        result = method(stage, folder, resume=resume and bool(recorded_rows(folder)), progress=progress, log=log)
        results.append(result)
        record = _finish_stage(stage, result, folder, number, original.dense_cost, last, progress, log)
        records.append(record)
        atomic_write_json(done, record)
    final = load_thinned(out / FINAL)
    composed = _composed(task, final, target, records[-1]["search_val_before"])
    composed.save(out / COMPOSED_FILE)
    summary = {
        "_type": STAGED_TYPE,
        "stages": len(budgets),
        "method": config.search.method,
        "cost_model": original.cost_model.name,
        "unit": original.budget.unit,
        "dense_cost": original.dense_cost,
        "budget": target,
        "dense_search_val": dense_accuracy,
        "stage": records,
        "final": {
            "cost": records[-1]["cost"],
            "cost_share": records[-1]["cost"] / original.dense_cost,
            "search_val": records[-1]["search_val_before"],
            "network": FINAL,
            "evaluate": f"amc evaluate {out}",
            "kept_channels": {layer.name: layer.kept for layer in composed.layers},
            "keep_ratios": composed.keep_ratios(),
        },
    }
    atomic_write_json(out / "summary.json", _finite(summary))
    last_result = results[-1] if results else None
    if last_result is None:  # cannot happen: the last stage always runs (its own resume makes it cheap)
        raise UserError(f"{out}: no stage ran.", fix="run the search again.")
    first = records[0]
    return dataclasses.replace(
        last_result,
        run_dir=out,
        budget=dataclasses.replace(last_result.budget, dense_cost=original.dense_cost),
        dense_accuracy=dense_accuracy,
        dense_latency_ms=first.get("dense_latency_ms", last_result.dense_latency_ms),
        episodes=sum(int(record["episodes"]) for record in records),
        wall_s=sum(float(record["wall_s"]) for record in records),
    )


def _check_task(task: Task) -> None:
    """Stages fine-tune on the configured training data and save zoo networks: refused, up front, without them."""
    if task.data is None:
        raise UserError(
            "search.stages > 1 fine-tunes each stage's network on the configured training data, and this task has "
            "none (the Python API's own scorer).",
            fix="run it with `amc search` (or build_task(config)), or use search.stages: 1 and fine-tune yourself.",
        )
    if task.config.search.granularity != "channel":
        raise UserError(
            f"search.stages is {task.config.search.stages}, but search.granularity is "
            f"{task.config.search.granularity!r}: only channel pruning thins the network a next stage searches.",
            fix="set search.stages: 1, or search.granularity: channel.",
        )


def _check_folder(task: Task, out: Path, resume: bool) -> None:
    """A fresh run refuses a folder that holds a staged search (run_search's check_resume has already compared a
    resumed folder's config.yaml with this config)."""
    started = (out / "stage_1").is_dir()
    if started and not resume:
        raise UserError(
            f"run folder {out} already holds a staged search (stage_1/).",
            fix="add --resume to continue it, or choose another --out.",
        )
    stored = out / "config.yaml"
    if resume and started and not stored.is_file():
        raise UserError(f"--resume: {stored} is missing.", fix="start the search over in another --out.")


def _finish_stage(
    stage: Task,
    result: SearchResult,
    folder: Path,
    number: int,
    dense_cost: float,
    last: bool,
    progress: bool,
    log: Callable[[str], None],
) -> dict[str, Any]:
    """Thin the stage's best, score it, fine-tune it (all but the last stage) and save it; the stage's record."""
    problem = stage.problem
    best = result.best
    if not isinstance(best, Strategy):
        raise UserError(f"stage {number} returned no channel strategy.", fix="use search.granularity: channel.")
    thinned = problem.apply(best.kept_channels(problem.table))
    before = problem.scorer(thinned)
    record: dict[str, Any] = {
        "stage": number,
        "budget": problem.budget.value,
        "budget_share": problem.budget.value / dense_cost,
        "input_cost": problem.dense_cost,
        "cost": result.best_cost,
        "cost_share": result.best_cost / dense_cost,
        "search_val_before": before,
        "search_val_after": None,
        "finetune_epochs": 0,
        "keep_ratios": best.keep_ratios(),
        "episodes": result.episodes,
        "wall_s": result.wall_s,
        "dense_latency_ms": result.dense_latency_ms,
        "best_latency_ms": result.best_latency_ms,
    }
    target = folder.parent / FINAL if last else folder / FINETUNED
    if not last:
        settings = _finetune_settings(stage.config)
        state = folder / "finetune.state.pt"
        bundle = stage.data
        assert bundle is not None  # checked by _check_task
        train(thinned, bundle.train, bundle.search_val, settings, state_path=state, progress=progress, log=log,
              val_images=stage.config.finetune.val_images, amp=stage.config.experiment.amp)  # fmt: skip
        record["search_val_after"] = problem.scorer(_copy(thinned))  # a copy: its BN re-estimate stays out
        record["finetune_epochs"] = settings.epochs
    _save(stage, thinned, target, number)
    if not last:
        (folder / "finetune.state.pt").unlink(missing_ok=True)
    tuned = "" if last else f" -> {100 * record['search_val_after']:.2f}% fine-tuned"
    share = 100 * record["cost_share"]
    log(f"stage {number}: cost {result.best_cost:.6g} ({share:.1f}% of dense), search-val {100 * before:.2f}%{tuned}")
    return record


def _finetune_settings(config: ExperimentConfig) -> TrainSettings:
    """The `finetune:` section (as `amc evaluate` reads it), seeded by experiment.seed."""
    section = config.finetune
    return TrainSettings(
        epochs=section.epochs, batch_size=section.batch_size, optimizer=section.optimizer, lr=section.lr,
        weight_decay=section.weight_decay, augment=False, seed=config.experiment.seed,
    )  # fmt: skip


def _save(stage: Task, model: nn.Module, folder: Path, number: int) -> None:
    table = stage.problem.table
    num_classes = table.layers[-1].spec.out_channels
    details = {"input_size": list(stage.input_size), "stage": number}
    save_thinned(model, folder, stage.config.model.name, stage.input_size[0], num_classes, details)


def _composed(task: Task, final: nn.Module, target: float, accuracy: float) -> Strategy:
    """The final network's channels as a strategy of the original network (exact counts, so the composed keep of a
    group is the product of the stages' kept shares)."""
    table = task.problem.table
    thinned = build_layer_table(final, task.input_size, task.config.model.name)
    kept = {group.index: thinned.layer(group.leader).spec.out_channels for group in table.prunable_groups}
    cost = task.problem.cost_model.network_cost(thinned.specs())
    metadata = dataclasses.replace(
        task.problem.metadata, budget_metric=task.problem.budget.metric, budget=target, cost=cost,
        dense_cost=task.problem.dense_cost, accuracy=accuracy, notes=f"{task.config.search.stages} stages composed",
    )  # fmt: skip
    return Strategy.from_kept_channels(table, kept, 1, metadata)


def _read_record(path: Path) -> dict[str, Any]:
    return dict(json.loads(path.read_text()))


def _copy(model: nn.Module) -> nn.Module:
    with torch.no_grad():
        return copy.deepcopy(model)
