"""A pruning schedule as amc reads it: structured part (a Strategy) and element-wise part (LayerDensities).

Distiller schedules can mix both (filter pruning with thinning, then fine-grained AGP on other layers), so the
imported form holds both; either may be absent. A `quantizers:` section adds per-layer bit-widths (LayerBits).
JSON files hold a Strategy, LayerDensities, LayerBits or a schedule of them.

A schedule read from Distiller YAML also carries what the file does over time (`timeline`: the state after each
epoch that fires something) and `notes`: what amc read differently from, or could not take from, the file
(mask-only pruners, regularizers, quantizers, a missing thinning step). Neither is part of the result's
identity (equality compares the strategy, densities and bits) nor of amc's JSON.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from amc.errors import UserError
from amc.graph import LayerTable
from amc.io import atomic_write_text, json_text
from amc.pruning.finegrained import DENSITIES_TYPE, LayerDensities
from amc.pruning.strategy import STRATEGY_TYPE, Strategy
from amc.quantize.bits import BITS_TYPE, LayerBits
from amc.schedule.timeline import Step

SCHEDULE_TYPE = "amc.Schedule"
SCHEDULE_VERSION = 1
YAML_SUFFIXES = (".yaml", ".yml")
JSON_SUFFIXES = (".json",)


@dataclass(frozen=True)
class Schedule:
    """Channels removed (strategy), element-wise weight densities (densities) and per-layer bit-widths (bits,
    from a `quantizers:` section); None when a part is absent."""

    strategy: Strategy | None = None
    densities: LayerDensities | None = None
    notes: tuple[str, ...] = field(default=(), compare=False)
    timeline: tuple[Step, ...] = field(default=(), compare=False)
    bits: LayerBits | None = None

    def kept_channels(self, table: LayerTable) -> dict[int, int]:
        return self.strategy.kept_channels(table) if self.strategy else {}

    def density(self, layer_name: str) -> float:
        return self.densities.densities.get(layer_name, 1.0) if self.densities else 1.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "_type": SCHEDULE_TYPE,
            "_version": SCHEDULE_VERSION,
            "strategy": self.strategy.to_dict() if self.strategy else None,
            "densities": self.densities.to_dict() if self.densities else None,
            "bits": self.bits.to_dict() if self.bits else None,
        }

    @classmethod
    def from_dict(cls, data: Any, source: str = "schedule") -> Schedule:
        kind = data.get("_type") if isinstance(data, dict) else None
        if kind == STRATEGY_TYPE:
            return cls(strategy=Strategy.from_dict(data, source))
        if kind == DENSITIES_TYPE:
            return cls(densities=LayerDensities.from_dict(data, source))
        if kind == BITS_TYPE:
            return cls(bits=LayerBits.from_dict(data, source))
        if kind != SCHEDULE_TYPE:
            raise UserError(
                f"{source} is not an amc schedule, strategy or densities JSON (_type {kind!r}).",
                fix="pass a file written by amc, or a Distiller schedule YAML.",
            )
        version = data.get("_version")
        if not isinstance(version, int) or not 1 <= version <= SCHEDULE_VERSION:
            raise UserError(
                f"{source} has format version {version!r}; this amc reads 1..{SCHEDULE_VERSION}.", fix="upgrade amc."
            )
        strategy, densities, bits = data.get("strategy"), data.get("densities"), data.get("bits")
        return cls(
            Strategy.from_dict(strategy, f"{source} key 'strategy'") if strategy else None,
            LayerDensities.from_dict(densities, f"{source} key 'densities'") if densities else None,
            bits=LayerBits.from_dict(bits, f"{source} key 'bits'") if bits else None,
        )


class DistillerScheduleWarning(UserWarning):
    """A Distiller schedule holds something amc reads differently from Distiller, or does not use."""


def warn_notes(schedule: Schedule) -> None:
    """Emit each of the schedule's notes as a DistillerScheduleWarning (for library users and other commands)."""
    for note in schedule.notes:
        warnings.warn(note, DistillerScheduleWarning, stacklevel=3)


def load_schedule(path: str | Path, table: LayerTable, warn: bool = True) -> Schedule:
    """Read a Distiller YAML schedule or an amc JSON (schedule, strategy or densities), checked against `table`.

    With `warn`, each note of a Distiller schedule is also emitted as a DistillerScheduleWarning."""
    from amc.schedule.distiller_read import parse_distiller

    path = Path(path)
    if not path.is_file():
        raise UserError(f"schedule file {path} does not exist.", fix="check the path.")
    text = path.read_text()
    source = f"schedule {path}"
    if path.suffix.lower() in YAML_SUFFIXES:
        return parse_distiller(text, table, source, warn=warn)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise UserError(
            f"{source} is not valid JSON: {error.msg} at line {error.lineno}, column {error.colno}.",
            fix="use a .yaml suffix for Distiller schedules, .json for amc's.",
        ) from None
    schedule = Schedule.from_dict(data, source)
    if schedule.strategy:
        schedule.strategy.check(table)
    if schedule.densities:
        schedule.densities.check(table)
    if schedule.bits:
        schedule.bits.check(table)
    return schedule


def save_schedule(
    schedule: Schedule | Strategy | LayerDensities | LayerBits,
    path: str | Path,
    prefix: str = "module.",
    model: str = "",
    input_size: tuple[int, int, int] | None = None,
) -> None:
    """Write by suffix: .yaml/.yml a Distiller schedule (parameter names with `prefix`; `model` and `input_size`
    default to the strategy's metadata and set its Distiller arch and dataset), .json amc's JSON."""
    from amc.schedule.distiller import schedule_to_distiller_yaml

    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (*YAML_SUFFIXES, *JSON_SUFFIXES):
        accepted = ", ".join((*YAML_SUFFIXES, *JSON_SUFFIXES))
        raise UserError(
            f"cannot write schedule {path}: its suffix {path.suffix or '(none)'!r} names no schedule format.",
            fix=f"end the output's name in one of {accepted} (.yaml/.yml: Distiller YAML, .json: amc JSON).",
        )
    if isinstance(schedule, Strategy):
        schedule = Schedule(strategy=schedule)
    elif isinstance(schedule, LayerDensities):
        schedule = Schedule(densities=schedule)
    elif isinstance(schedule, LayerBits):
        schedule = Schedule(bits=schedule)
    if path.suffix.lower() in YAML_SUFFIXES:
        atomic_write_text(path, schedule_to_distiller_yaml(schedule, prefix, model, input_size))
    elif schedule.densities is None and schedule.bits is None and schedule.strategy is not None:
        schedule.strategy.save(path)
    else:
        atomic_write_text(path, json_text(schedule.to_dict(), path))
