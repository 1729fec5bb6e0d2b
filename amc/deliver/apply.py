"""A strategy, schedule or schedule file applied to a task's base model: the network a user fine-tunes."""

from __future__ import annotations

from pathlib import Path

from torch import nn

from amc.graph import LayerTable
from amc.problem import Task
from amc.pruning import LayerDensities, Strategy, prune_network
from amc.schedule import Schedule, load_schedule

ScheduleSource = Strategy | LayerDensities | Schedule | str | Path
"""A strategy or schedule object, or a file: strategy/schedule JSON or a Distiller schedule YAML."""


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


def apply(task: Task, source: ScheduleSource) -> nn.Module:
    """A pruned copy of the task's model, ready to fine-tune: channels removed (the task's selection), element-wise
    masks attached (they hold during your fine-tuning; `export` bakes them into the weights), BatchNorm statistics
    re-estimated on the calibration images."""
    problem = task.problem
    schedule = as_schedule(source, problem.table)
    batches = problem.scorer.bn_batches
    return prune_network(
        problem.model, problem.table, schedule.kept_channels(problem.table),
        schedule.densities.densities if schedule.densities else None,
        selection=task.config.search.selection if batches else "l1", calibration=batches or None,
        bn_images=batches or None, keep_masks=True,
        pattern=schedule.densities.pattern if schedule.densities else None,
    ).model.eval()  # fmt: skip
