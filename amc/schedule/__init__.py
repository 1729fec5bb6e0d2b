"""Pruning schedules in and out: Distiller YAML and amc JSON, and what a schedule does to a model."""

from amc.schedule.distiller import (
    parse_distiller,
    schedule_to_distiller,
    schedule_to_distiller_yaml,
    strategy_to_distiller,
    strategy_to_distiller_yaml,
)
from amc.schedule.distiller_check import DistillerIssue, check_distiller, check_distiller_text
from amc.schedule.schedule import DistillerScheduleWarning, Schedule, load_schedule, save_schedule
from amc.schedule.summary import LayerSummary, ScheduleSummary, StepSummary, summarize

__all__ = [
    "DistillerIssue",
    "DistillerScheduleWarning",
    "LayerSummary",
    "Schedule",
    "ScheduleSummary",
    "StepSummary",
    "check_distiller",
    "check_distiller_text",
    "load_schedule",
    "parse_distiller",
    "save_schedule",
    "schedule_to_distiller",
    "schedule_to_distiller_yaml",
    "strategy_to_distiller",
    "strategy_to_distiller_yaml",
    "summarize",
]
