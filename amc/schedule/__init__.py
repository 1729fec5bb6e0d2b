"""Pruning schedules in and out: Distiller YAML and amc JSON, and what a schedule does to a model."""

from amc.schedule.distiller import (
    parse_distiller,
    schedule_to_distiller_yaml,
    strategy_to_distiller,
    strategy_to_distiller_yaml,
)
from amc.schedule.schedule import Schedule, load_schedule, save_schedule
from amc.schedule.summary import LayerSummary, ScheduleSummary, summarize

__all__ = [
    "LayerSummary",
    "Schedule",
    "ScheduleSummary",
    "load_schedule",
    "parse_distiller",
    "save_schedule",
    "schedule_to_distiller_yaml",
    "strategy_to_distiller",
    "strategy_to_distiller_yaml",
    "summarize",
]
