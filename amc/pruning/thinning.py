"""Thinning: a copy of a network with the unkept channels physically removed.

For each coupling group that keeps fewer channels, rank its channels (amc/pruning/selection.py), then let
Torch-Pruning's DependencyGraph remove them from every tensor they touch: member convs' filters and biases,
the BatchNorms after them, depthwise convs, every consumer's input slice (through residual adds, concatenations
with the right index offsets, flattens). The result is checked, never trusted: each layer's new channel counts
must equal what the layer table predicts for `kept`, and a forward pass must give the original output shape;
anything else is a `PruningError` naming the layer.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass
from typing import cast

import torch
import torch_pruning as tp
from torch import Tensor, nn

from amc.errors import UserError
from amc.graph import CouplingGroup, LayerTable
from amc.graph.coupling import build_dependency_graph, graph_is_out
from amc.models.layout import is_channels_last
from amc.pruning.calibration import Batches
from amc.pruning.reconstruction import ReconstructionReport, ReferenceCache, reconstruct_
from amc.pruning.selection import ChannelSelector, LeastSquares, get_selector, removed_channels, top_channels


class PruningError(UserError):
    """A strategy that cannot be applied to this model, or a model the engine cannot thin correctly."""


@dataclass(frozen=True)
class ThinResult:
    """The thinned copy, which original input/output channels each conv/linear layer kept, and the refit report."""

    model: nn.Module
    kept_in: dict[str, tuple[int, ...]]
    kept_out: dict[str, tuple[int, ...]]
    reconstruction: ReconstructionReport | None = None


def thin(
    model: nn.Module,
    table: LayerTable,
    kept: Mapping[int, int],
    *,
    selection: str | ChannelSelector = "l1",
    example_input: Tensor | None = None,
    calibration: Batches | None = None,
) -> nn.Module:
    """A physically thinner deep copy of `model` where coupling group g keeps kept[g] output channels.

    Absent groups keep all their channels; the caller's model is not touched. `selection` ranks channels
    ("l1" default, "l2", "lstsq" = L1 + least-squares refit of the next layers on `calibration` images).
    """
    return thin_with_report(
        model, table, kept, selection=selection, example_input=example_input, calibration=calibration
    ).model


def thin_with_report(
    model: nn.Module,
    table: LayerTable,
    kept: Mapping[int, int],
    *,
    selection: str | ChannelSelector = "l1",
    example_input: Tensor | None = None,
    calibration: Batches | None = None,
    reference: ReferenceCache | None = None,
) -> ThinResult:
    """`thin`, plus the kept channel indices of every layer and, for least squares, the per-layer fit report
    (`reference`: what the refit records of `model` on `calibration`, kept across calls)."""
    selector = get_selector(selection)
    if isinstance(selector, LeastSquares) and calibration is None:
        raise PruningError(
            "least-squares channel selection needs calibration images.",
            fix="pass calibration batches (a few hundred training images) or use selection 'l1'.",
        )
    to_prune = _validated(table, kept)
    device = next(model.parameters()).device
    example = example_input if example_input is not None else torch.randn(1, *table.input_size, device=device)
    work = copy.deepcopy(model)
    training = work.training
    expected_shape = _output_shape(work, example)
    graph = build_dependency_graph(work, example)
    keep_indices = {
        group.index: top_channels(selector.scores(group, work), to_prune[group.index], group.divisor)
        for group in table.groups
        if group.index in to_prune
    }
    kept_in, kept_out = _initial_indices(work, table)
    names = {module: name for name, module in work.named_modules()}
    for index, indices in keep_indices.items():
        _prune_group(graph, work, table.groups[index], indices, names, kept_in, kept_out)
    _sync_widths(work)
    work.train(training)
    if is_channels_last(model):
        work.to(memory_format=torch.channels_last)  # torch-pruning's slices are contiguous NCHW
    _check_counts(work, table, kept)
    _check_forward(work, example, expected_shape)
    report = None
    if isinstance(selector, LeastSquares):
        report = reconstruct_(model, work, table, kept_in, kept_out, calibration, selector, reference)  # type: ignore[arg-type]
    return ThinResult(
        work, {k: tuple(v) for k, v in kept_in.items()}, {k: tuple(v) for k, v in kept_out.items()}, report
    )


def _validated(table: LayerTable, kept: Mapping[int, int]) -> dict[int, int]:
    """The groups that really shrink, after checking every entry of `kept` against the table."""
    to_prune = {}
    for index, count in kept.items():
        if not isinstance(index, int) or not 0 <= index < len(table.groups):
            raise PruningError(
                f"{table.model_name} has no coupling group {index!r} (it has {len(table.groups)}).",
                fix="key kept channels by the layer table's group index.",
            )
        group = table.groups[index]
        if count == group.channels:
            continue
        if not group.prunable:
            raise PruningError(
                f"layer {group.leader} (group {index}) cannot be pruned: {group.reason}.", fix="keep all its channels."
            )
        if not 1 <= count <= group.channels or count % group.divisor:
            multiple = f" and a multiple of {group.divisor} (grouped conv)" if group.divisor > 1 else ""
            raise PruningError(
                f"layer {group.leader} (group {index}) cannot keep {count} of its {group.channels} channels.",
                fix=f"keep between 1 and {group.channels}{multiple}.",
            )
        to_prune[index] = int(count)
    return to_prune


def _output_shape(model: nn.Module, example: Tensor) -> torch.Size:
    training = model.training
    model.eval()
    try:
        with torch.no_grad():
            return model(example).shape
    finally:
        model.train(training)


def _initial_indices(model: nn.Module, table: LayerTable) -> tuple[dict[str, list[int]], dict[str, list[int]]]:
    kept_in, kept_out = {}, {}
    for layer in table.layers:
        module = model.get_submodule(layer.name)
        kept_in[layer.name] = list(range(layer.spec.in_channels))
        kept_out[layer.name] = list(range(_out_channels(module)))
    return kept_in, kept_out


def _out_channels(module: nn.Module) -> int:
    return module.out_features if isinstance(module, nn.Linear) else module.out_channels  # type: ignore[return-value]


def _in_channels(module: nn.Module) -> int:
    return module.in_features if isinstance(module, nn.Linear) else module.in_channels  # type: ignore[return-value]


def _prune_group(
    graph: tp.DependencyGraph,
    model: nn.Module,
    group: CouplingGroup,
    keep: list[int],
    names: dict[nn.Module, str],
    kept_in: dict[str, list[int]],
    kept_out: dict[str, list[int]],
) -> None:
    """Remove the channels of `group` not in `keep` everywhere, recording which original indices survive."""
    root = model.get_submodule(group.leader)
    handler = graph.get_pruner_of_module(root).prune_out_channels
    tp_group = graph.get_pruning_group(root, handler, removed_channels(keep, group.channels))
    members = set(kept_out) & {names.get(dep.target.module) for dep, _ in tp_group.items if graph_is_out(dep)}
    if members != set(group.layers):
        raise PruningError(
            f"layer {group.leader}: Torch-Pruning removes its channels together with {sorted(members)}, but the "
            f"layer table couples {sorted(group.layers)}; refusing to build a network that may be wrong.",
            fix="report this model; prune it without this group (keep all its channels).",
        )
    for dep, idxs in tp_group.items:
        name = names.get(dep.target.module)
        if name not in kept_out:
            continue
        gone = set(idxs)
        module = dep.target.module
        depthwise = isinstance(module, nn.Conv2d) and module.groups == module.in_channels and module.groups > 1
        if graph_is_out(dep):
            kept_out[name] = [c for i, c in enumerate(kept_out[name]) if i not in gone]
        if not graph_is_out(dep) or depthwise:
            kept_in[name] = [c for i, c in enumerate(kept_in[name]) if i not in gone]
    tp_group.prune()


def _sync_widths(model: nn.Module) -> None:
    """Update the widths a module keeps as plain attributes and reshapes with, which Torch-Pruning leaves stale
    (it resizes tensors only): torchvision's VisionTransformer reads `hidden_dim` (as Torch-Pruning's example
    resets it after pruning)."""
    from torchvision.models.vision_transformer import VisionTransformer

    for module in model.modules():
        if isinstance(module, VisionTransformer):
            module.hidden_dim = module.conv_proj.out_channels


def _check_counts(model: nn.Module, table: LayerTable, kept: Mapping[int, int]) -> None:
    for layer, (in_channels, out_channels) in zip(table.layers, table.channel_counts(kept)):
        module = model.get_submodule(layer.name)
        weight = cast(Tensor, module.weight)
        got = (_in_channels(module), _out_channels(module))
        weight_ok = weight.shape[0] == got[1] and weight.shape[1] * getattr(module, "groups", 1) == got[0]
        if got != (in_channels, out_channels) or not weight_ok:
            raise PruningError(
                f"layer {layer.name}: thinning gave {got[0]} in / {got[1]} out channels (weight "
                f"{tuple(weight.shape)}), the layer table predicts {in_channels} / {out_channels}.",
                fix="report this model; prune it without the groups feeding this layer.",
            )


def _check_forward(model: nn.Module, example: Tensor, expected: torch.Size) -> None:
    try:
        shape = _output_shape(model, example)
    except RuntimeError as error:
        raise PruningError(
            f"the thinned network fails its forward pass: {str(error).splitlines()[0]}",
            fix="report this model; prune it with fewer groups.",
        ) from None
    if shape != expected:
        raise PruningError(
            f"the thinned network outputs shape {tuple(shape)}, the original {tuple(expected)}.",
            fix="report this model.",
        )
