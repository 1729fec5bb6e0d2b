"""What a schedule does to a model: per-layer sparsity, dense and ideal (density-weighted) MACs and params.

Dense figures are those of the network after the schedule's channels are removed; ideal figures further
multiply each layer's weights and MACs by its element-wise weight density (what a zero-skipping accelerator
does). Parameter totals count every parameter of the thinned network, BatchNorm included, as `amc inspect`
does: the network is really thinned to count them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from torch import nn

from amc.graph import LayerTable
from amc.pruning.apply import prune_network
from amc.schedule.schedule import Schedule


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

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "layers": [asdict(layer) for layer in self.layers]}


def summarize(schedule: Schedule, table: LayerTable, model: nn.Module) -> ScheduleSummary:
    """Figures of `model` (described by `table`) under `schedule`; `model` is not changed."""
    kept = schedule.kept_channels(table)
    specs = table.specs(kept)
    thinned_params = (
        sum(p.numel() for p in prune_network(model, table, kept).model.parameters()) if kept else table.total_params
    )
    layers = []
    for layer, spec in zip(table.layers, specs):
        density = schedule.density(layer.name)
        removed_weights = spec.weight_count * (1.0 - density)
        out_sparsity = 1.0 - spec.out_channels / layer.spec.out_channels
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
            )
        )
    removed = sum(layer.dense_params - layer.ideal_params for layer in layers)
    return ScheduleSummary(
        table.model_name,
        sum(layer.dense_macs for layer in layers),
        sum(layer.ideal_macs for layer in layers),
        thinned_params,
        thinned_params - removed,
        table.total_macs,
        table.total_params,
        tuple(layers),
    )
