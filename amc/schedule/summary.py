"""What a schedule does to a model: per-layer sparsity, dense and ideal (density-weighted) MACs and params.

Dense figures are those of the network after the schedule's channels are removed; ideal figures further
multiply each layer's weights and MACs by its element-wise weight density (what a zero-skipping accelerator
does). Parameter totals count every parameter of the thinned network, BatchNorm included, as `amc inspect`
does: the network is really thinned to count them.

Beside them, the counts Distiller reports ("# of parameters" and NNZ in its sparsity tables): conv and linear
weights only, no BatchNorm, no biases, with a masked tensor holding `int(sparsity * numel)` zeros. Those are the
figures to compare with a Distiller or DeGirum table. A schedule read from Distiller YAML also gets these figures
after every epoch that fires something (`timeline`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from torch import nn

from amc.graph import LayerTable
from amc.pruning.apply import prune_network
from amc.schedule.schedule import Schedule
from amc.schedule.timeline import Mask, Step
from hwmodel.spec import LayerSpec


@dataclass(frozen=True)
class LayerSummary:
    name: str
    op: str
    in_channels: int
    out_channels: int
    channel_sparsity: float
    weight_sparsity: float
    dense_macs: int
    ideal_macs: float
    dense_params: int
    ideal_params: float
    distiller_nnz: int = 0


@dataclass(frozen=True)
class StepSummary:
    """The network after one epoch of a Distiller schedule: what fired, and the figures that result."""

    epoch: int
    actions: tuple[str, ...]
    dense_macs: int
    ideal_macs: float
    distiller_params: int
    distiller_nnz: int
    weight_sparsity: float


@dataclass(frozen=True)
class ScheduleSummary:
    model: str
    dense_macs: int
    ideal_macs: float
    dense_params: int
    ideal_params: float
    original_macs: int
    original_params: int
    layers: tuple[LayerSummary, ...]
    distiller_params: int = 0
    """Conv and linear weights of the thinned network: Distiller's "# of parameters" (no BN, no biases)."""
    distiller_nnz: int = 0
    """Non-zero conv and linear weights under the schedule's masks, counted as Distiller counts them (NNZ)."""
    original_distiller_params: int = 0
    notes: tuple[str, ...] = ()
    timeline: tuple[StepSummary, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "layers": [asdict(layer) for layer in self.layers]}


def summarize(schedule: Schedule, table: LayerTable, model: nn.Module) -> ScheduleSummary:
    """Figures of `model` (described by `table`) under `schedule`; `model` is not changed."""
    kept = schedule.kept_channels(table)
    specs = table.specs(kept)
    thinned_params = (
        sum(p.numel() for p in prune_network(model, table, kept).model.parameters()) if kept else table.total_params
    )
    masks = schedule.timeline[-1].masks if schedule.timeline else {}
    layers = []
    for layer, spec in zip(table.layers, specs):
        density = schedule.density(layer.name)
        removed_weights = spec.weight_count * (1.0 - density)
        out_sparsity = 1.0 - spec.out_channels / layer.spec.out_channels
        zeros = masks[layer.name].zeros(spec) if layer.name in masks else _zeros(spec, density)
        layers.append(
            LayerSummary(
                layer.name,
                spec.op,
                spec.in_channels,
                spec.out_channels,
                out_sparsity,
                1.0 - density,
                spec.macs,
                spec.macs * density,
                spec.params,
                spec.params - removed_weights,
                spec.weight_count - zeros,
            )
        )
    removed = sum(layer.dense_params - layer.ideal_params for layer in layers)
    original_weights = sum(layer.spec.weight_count for layer in table.layers)
    return ScheduleSummary(
        table.model_name,
        sum(layer.dense_macs for layer in layers),
        sum(layer.ideal_macs for layer in layers),
        thinned_params,
        thinned_params - removed,
        table.total_macs,
        table.total_params,
        tuple(layers),
        sum(spec.weight_count for spec in specs),
        sum(layer.distiller_nnz for layer in layers),
        original_weights,
        schedule.notes,
        tuple(_step(step, table, original_weights) for step in schedule.timeline),
    )


def _zeros(spec: LayerSpec, density: float) -> int:
    """Masked weights of a layer at `density` (no Distiller mask known: the density's own share)."""
    return int(round(1.0 - density, 9) * spec.weight_count)


def _step(step: Step, table: LayerTable, original_weights: int) -> StepSummary:
    specs = table.specs(step.kept)
    masks: Mapping[str, Mask] = step.masks
    nnz = 0
    ideal = 0.0
    for layer, spec in zip(table.layers, specs):
        mask = masks.get(layer.name)
        nnz += spec.weight_count - (mask.zeros(spec) if mask else 0)
        ideal += spec.macs * (mask.density(spec) if mask else 1.0)
    actions = tuple(f"{action.name}: {action.text}" for action in step.actions)
    return StepSummary(
        step.epoch,
        actions,
        sum(spec.macs for spec in specs),
        ideal,
        sum(spec.weight_count for spec in specs),
        nnz,
        1.0 - nnz / original_weights,
    )
