"""Strategy: how many output channels every prunable layer keeps, plus where the decision came from.

A strategy is the hand-off between a search and everything after it (thinning, schedules, reports). The
decision is one keep ratio per coupling group; the strategy stores it per layer (qualified module name) with
the resulting channel count, so it still reads right without the layer table, and checks itself against a
table before use. It is written as versioned JSON (never pickled).

Rounding (`round_channels`): kept = ratio * channels rounded to the nearest multiple of
step = lcm(round_to, group divisor), halves up; at least one step, never more than the original count; a ratio
of 1 keeps every channel. When the step exceeds the channel count, the step is the divisor alone (so a 4-channel
squeeze-excite layer can still be halved with round_to=8).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from amc.errors import UserError
from amc.graph import CouplingGroup, LayerTable
from amc.io import atomic_write_text, json_text

STRATEGY_TYPE = "amc.Strategy"
STRATEGY_VERSION = 1


def round_channels(ratio: float, channels: int, round_to: int = 8, divisor: int = 1) -> int:
    """Channels kept when keeping `ratio` of `channels` (see the module docstring for the rule)."""
    if not 0.0 <= ratio <= 1.0 or math.isnan(ratio):
        raise ValueError(f"keep ratio must be in [0, 1], got {ratio}")
    if round_to < 1 or divisor < 1:
        raise ValueError(f"round_to and divisor must be >= 1, got {round_to} and {divisor}")
    if ratio >= 1.0:
        return channels
    step = math.lcm(round_to, divisor)
    if step > channels:
        step = divisor
    kept = math.floor(ratio * channels / step + 0.5) * step
    return min(max(kept, step), channels)


def candidate_counts(group: CouplingGroup, round_to: int, lbound: float, rbound: float) -> list[int]:
    """Channel counts a search may give `group`: the rounded counts between its lbound and rbound keeps."""
    low = round_channels(lbound, group.channels, round_to, group.divisor)
    high = round_channels(rbound, group.channels, round_to, group.divisor)
    step = math.lcm(round_to, group.divisor)
    if step > group.channels:
        step = group.divisor
    counts = {count for count in range(step, group.channels + 1, step) if low <= count <= high}
    counts.update({low, high})
    return sorted(counts)


@dataclass(frozen=True)
class LayerKeep:
    """One prunable layer: its coupling group, original and kept output channels, and the ratio asked for."""

    name: str
    group: int
    channels: int
    kept: int
    keep_ratio: float

    @property
    def sparsity(self) -> float:
        """Share of output channels removed (Distiller's `desired_sparsity`)."""
        return 1.0 - self.kept / self.channels


@dataclass(frozen=True)
class StrategyMetadata:
    """Where a strategy came from and what it was measured to give; every field optional."""

    model: str = ""
    dataset: str = ""
    input_size: tuple[int, int, int] | None = None
    cost_model: str = ""
    budget_metric: str = ""
    budget: float | None = None
    cost: float | None = None
    dense_cost: float | None = None
    accuracy: float | None = None
    selection: str = ""
    notes: str = ""

    def __post_init__(self) -> None:
        if self.input_size is not None:
            object.__setattr__(self, "input_size", tuple(int(v) for v in self.input_size))


@dataclass(frozen=True)
class Strategy:
    """Per-layer kept channels of one pruned variant of a model; `layers` are in execution order."""

    layers: tuple[LayerKeep, ...]
    round_to: int = 8
    metadata: StrategyMetadata = field(default_factory=StrategyMetadata)

    # ----------------------------------------------------------------- construction

    @classmethod
    def from_keep_ratios(
        cls,
        table: LayerTable,
        ratios: Mapping[int | str, float],
        round_to: int = 8,
        metadata: StrategyMetadata | None = None,
    ) -> Strategy:
        """Keep `ratios[g]` of group g's channels (keys: group index or any member layer name; absent: 1.0)."""
        by_group = _ratios_by_group(table, ratios)
        kept = {}
        for index, ratio in by_group.items():
            group = table.groups[index]
            if not 0 < ratio <= 1:
                raise UserError(
                    f"group {index} ({group.leader}): keep ratio {ratio!r} is not in (0, 1].",
                    fix="use a keep ratio in (0, 1] (0.5 keeps half the channels).",
                )
            try:
                kept[index] = round_channels(ratio, group.channels, round_to, group.divisor)
            except ValueError as error:
                raise UserError(f"group {index} ({group.leader}): {error}.", fix="use round_to >= 1.") from None
        return cls._build(table, kept, by_group, round_to, metadata)

    @classmethod
    def uniform(
        cls, table: LayerTable, keep: float, round_to: int = 8, metadata: StrategyMetadata | None = None
    ) -> Strategy:
        """The same keep ratio for every prunable group."""
        return cls.from_keep_ratios(table, {group.index: keep for group in table.prunable_groups}, round_to, metadata)

    @classmethod
    def from_kept_channels(
        cls,
        table: LayerTable,
        kept: Mapping[int, int],
        round_to: int = 1,
        metadata: StrategyMetadata | None = None,
    ) -> Strategy:
        """Exact channel counts per group (e.g. from an imported schedule); absent groups keep all channels."""
        for index, count in kept.items():
            group = _prunable_group(table, index)
            if not 1 <= count <= group.channels or count % group.divisor:
                multiple = f", a multiple of {group.divisor}" if group.divisor > 1 else ""
                raise UserError(
                    f"group {index} ({group.leader}) cannot keep {count} of its {group.channels} channels.",
                    fix=f"keep between 1 and {group.channels} channels{multiple}.",
                )
        ratios = {index: count / table.groups[index].channels for index, count in kept.items()}
        return cls._build(table, dict(kept), ratios, round_to, metadata)

    @classmethod
    def _build(
        cls,
        table: LayerTable,
        kept: Mapping[int, int],
        ratios: Mapping[int, float],
        round_to: int,
        metadata: StrategyMetadata | None,
    ) -> Strategy:
        meta = metadata or StrategyMetadata(model=table.model_name, input_size=table.input_size)
        layers = []
        for layer in table.layers:
            if layer.out_group is None or not table.groups[layer.out_group].prunable:
                continue
            group = table.groups[layer.out_group]
            count = kept.get(group.index, group.channels)
            layers.append(LayerKeep(layer.name, group.index, group.channels, count, ratios.get(group.index, 1.0)))
        return cls(tuple(layers), round_to, meta)

    # ----------------------------------------------------------------- views

    def kept_channels(self, table: LayerTable | None = None) -> dict[int, int]:
        """Kept channels per coupling group, for `thin` and `LayerTable.specs`.

        With `table`, the strategy is first checked against it and group indices are taken from the table by
        layer name (so a strategy stays valid if group numbering ever changes).
        """
        if table is None:
            return {layer.group: layer.kept for layer in self.layers}
        self.check(table)
        return {table.layer(layer.name).out_group: layer.kept for layer in self.layers}  # type: ignore[misc]

    def keep_ratios(self) -> dict[str, float]:
        """Per layer name: kept / original output channels (after rounding)."""
        return {layer.name: layer.kept / layer.channels for layer in self.layers}

    def layer(self, name: str) -> LayerKeep:
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise KeyError(name)

    def check(self, table: LayerTable) -> None:
        """Raise a UserError naming the first layer that does not fit `table` (unknown, moved, inconsistent)."""
        model = self.metadata.model or "the strategy's model"
        names = {layer.name for layer in table.layers}
        per_group: dict[int, LayerKeep] = {}
        for entry in self.layers:
            if entry.name not in names:
                raise UserError(
                    f"strategy layer {entry.name!r} is not a conv/linear layer of {table.model_name}.",
                    fix=f"use the strategy with {model}, or check `amc inspect {table.model_name}` for layer names.",
                )
            index = table.layer(entry.name).out_group
            if index is None or not table.groups[index].prunable:
                reason = "it is the classifier" if index is None else table.groups[index].reason
                raise UserError(
                    f"strategy layer {entry.name!r} cannot be pruned: {reason}.", fix="remove it from the strategy."
                )
            group = table.groups[index]
            if entry.channels != group.channels or not 1 <= entry.kept <= group.channels or entry.kept % group.divisor:
                raise UserError(
                    f"strategy layer {entry.name!r} keeps {entry.kept} of {entry.channels} channels, but in "
                    f"{table.model_name} it has {group.channels}"
                    + (f" (kept count must be a multiple of {group.divisor})" if group.divisor > 1 else "")
                    + ".",
                    fix=f"use the strategy with {model} at its own input size and class count.",
                )
            other = per_group.setdefault(index, entry)
            if other.kept != entry.kept:
                raise UserError(
                    f"strategy layers {other.name!r} ({other.kept} channels) and {entry.name!r} ({entry.kept}) "
                    f"share their output channels (coupling group {index}: {'+'.join(group.kinds)}) but keep "
                    "different counts.",
                    fix="give every layer of a coupled group the same kept channel count.",
                )

    # ----------------------------------------------------------------- files

    def to_dict(self) -> dict[str, Any]:
        meta = asdict(self.metadata)
        if meta["input_size"] is not None:
            meta["input_size"] = list(meta["input_size"])
        return {
            "_type": STRATEGY_TYPE,
            "_version": STRATEGY_VERSION,
            "round_to": self.round_to,
            "metadata": meta,
            "layers": [asdict(layer) for layer in self.layers],
        }

    @classmethod
    def from_dict(cls, data: Any, source: str = "strategy") -> Strategy:
        if not isinstance(data, dict):
            raise UserError(f"{source} is not a JSON object.", fix="pass a file written by `amc` (Strategy.save).")
        kind, version = data.get("_type"), data.get("_version")
        if kind != STRATEGY_TYPE:
            raise UserError(
                f"{source} has _type {kind!r}, not {STRATEGY_TYPE!r}.", fix="pass a strategy JSON written by amc."
            )
        if not isinstance(version, int) or version > STRATEGY_VERSION or version < 1:
            raise UserError(
                f"{source} has format version {version!r}; this amc reads versions 1..{STRATEGY_VERSION}.",
                fix="upgrade amc to read strategies written by a newer version.",
            )
        try:
            meta = StrategyMetadata(**data.get("metadata", {}))
            layers = tuple(LayerKeep(**entry) for entry in data["layers"])
            strategy = cls(layers, int(data.get("round_to", 8)), meta)
        except (KeyError, TypeError) as error:
            raise UserError(f"{source} is malformed: {error}.", fix="regenerate it with amc.") from None
        for layer in strategy.layers:
            _check_entry(layer, source)
        return strategy

    def to_json(self) -> str:
        """Strict JSON (no NaN or Infinity)."""
        return json_text(self.to_dict(), "a strategy JSON")

    @classmethod
    def from_json(cls, text: str, source: str = "strategy") -> Strategy:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as error:
            raise UserError(
                f"{source} is not valid JSON: {error.msg} at line {error.lineno}, column {error.colno}.",
                fix="pass a strategy JSON written by amc.",
            ) from None
        return cls.from_dict(data, source)

    def save(self, path: str | Path) -> None:
        """Write atomically: a reader never sees half a file."""
        atomic_write_text(Path(path), json_text(self.to_dict(), path))

    @classmethod
    def load(cls, path: str | Path) -> Strategy:
        path = Path(path)
        if not path.is_file():
            raise UserError(f"strategy file {path} does not exist.", fix="check the path.")
        return cls.from_json(path.read_text(), source=f"strategy file {path}")


def _check_entry(layer: LayerKeep, source: str) -> None:
    """One layer of a strategy file: whole channel counts, 1 <= kept <= channels, a keep ratio in (0, 1]."""
    where = f"{source}: layer {layer.name!r}"
    fix = "regenerate the strategy with amc (a search, or `Strategy.from_keep_ratios(...).save(path)`)."
    for name in ("channels", "kept"):
        count = getattr(layer, name)
        if not isinstance(count, int) or isinstance(count, bool):
            raise UserError(f"{where} has {name} {count!r}, not a whole number of channels.", fix=fix)
    if layer.channels < 1 or not 1 <= layer.kept <= layer.channels:
        raise UserError(
            f"{where} keeps {layer.kept} of {layer.channels} channels.",
            fix=f"keep between 1 and the layer's channel count ({max(layer.channels, 1)}); or {fix}",
        )
    ratio = layer.keep_ratio
    if isinstance(ratio, bool) or not isinstance(ratio, (int, float)) or not 0 < ratio <= 1:
        raise UserError(
            f"{where} has keep_ratio {ratio!r}; a keep ratio must be a number in (0, 1] (NaN and Infinity are "
            "refused).",
            fix=f"set keep_ratio to kept / channels ({layer.kept / layer.channels:.4g}), or {fix}",
        )


def _prunable_group(table: LayerTable, index: int) -> CouplingGroup:
    if not isinstance(index, int) or not 0 <= index < len(table.groups):
        raise UserError(
            f"{table.model_name} has no coupling group {index!r} (it has {len(table.groups)}).",
            fix=f"see `amc inspect {table.model_name}` for its groups.",
        )
    group = table.groups[index]
    if not group.prunable:
        raise UserError(
            f"group {index} ({group.leader}) of {table.model_name} cannot be pruned: {group.reason}.",
            fix="leave it out of the strategy.",
        )
    return group


def _ratios_by_group(table: LayerTable, ratios: Mapping[int | str, float]) -> dict[int, float]:
    by_group: dict[int, float] = {}
    for key, ratio in ratios.items():
        if isinstance(key, str):
            try:
                index = table.layer(key).out_group
            except KeyError:
                raise UserError(
                    f"{table.model_name} has no conv/linear layer {key!r}.",
                    fix=f"see `amc inspect {table.model_name}` for layer names.",
                ) from None
            if index is None:
                raise UserError(
                    f"layer {key!r} is the classifier: its outputs are the classes.",
                    fix="leave it out of the keep ratios.",
                )
        else:
            index = key
        _prunable_group(table, index)
        if index in by_group and by_group[index] != ratio:
            raise UserError(
                f"group {index} ({table.groups[index].leader}) is given two keep ratios: "
                f"{by_group[index]} and {ratio}.",
                fix="give coupled layers one ratio.",
            )
        by_group[index] = float(ratio)
    return by_group
