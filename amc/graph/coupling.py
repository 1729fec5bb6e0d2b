"""Channel-coupling groups from Torch-Pruning's DependencyGraph.

Torch-Pruning traces the network once and knows, for every conv/linear output channel, every tensor it
flows into (residual adds, depthwise convs, concatenations, splits, flattens). We keep only what the layer
table needs: which layers' outputs move together, which layers read them, and with what multiplier.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch_pruning as tp
from torch import nn


@dataclass
class GroupDraft:
    """One coupling group before numbering: member layers (outputs) and consumer layers (inputs)."""

    members: set[str]
    consumers: dict[str, int]
    channels: int
    kinds: tuple[str, ...] = ()
    divisor: int = 1


def build_dependency_graph(model: nn.Module, example: torch.Tensor) -> tp.DependencyGraph:
    return tp.DependencyGraph().build_dependency(model, example_inputs=example)


def find_coupling_groups(model: nn.Module, example: torch.Tensor, layer_order: Sequence[str]) -> list[GroupDraft]:
    """Groups of layers whose output channels must be pruned together; the classifier (last layer) is fixed."""
    names = {module: name for name, module in model.named_modules()}
    traced = set(layer_order)
    classifier = model.get_submodule(layer_order[-1])
    graph = build_dependency_graph(model, example)
    drafts = []
    for group in graph.get_all_groups(ignored_layers=[classifier], root_module_types=(nn.Conv2d, nn.Linear)):
        draft = _draft_of(group, names, traced)
        if draft is not None:
            drafts.append(draft)
    _mark_concat(drafts)
    return drafts


def _draft_of(group: tp.Group, names: dict[nn.Module, str], traced: set[str]) -> GroupDraft | None:
    channels = len(group[0].idxs)
    members: set[str] = set()
    consumers: dict[str, int] = {}
    grouped: list[int] = []
    depthwise = False
    for dep, idxs in group.items:
        module = dep.target.module
        name = names.get(module)
        if name not in traced or not isinstance(module, (nn.Conv2d, nn.Linear)):
            continue
        is_depthwise = isinstance(module, nn.Conv2d) and module.groups > 1 and module.groups == module.in_channels
        if graph_is_out(dep):
            members.add(name)
            depthwise |= is_depthwise
        elif not is_depthwise:
            consumers[name] = max(1, len(idxs) // channels)
        if isinstance(module, nn.Conv2d) and 1 < module.groups and not is_depthwise:
            grouped.append(module.groups)
    if not members:
        return None
    kinds = []
    if depthwise:
        kinds.append("depthwise")
    if len(members) - int(depthwise) > 1:
        kinds.append("residual")
    divisor = math.lcm(*grouped) if grouped else 1
    return GroupDraft(members, consumers, channels, tuple(kinds), divisor)


def graph_is_out(dep: tp.Dependency) -> bool:
    """True when the dependency removes output channels of its target (as opposed to input channels)."""
    return dep.handler.__name__ == "prune_out_channels"


def _mark_concat(drafts: list[GroupDraft]) -> None:
    """A consumer fed by several groups reads their concatenation."""
    feeds: dict[str, int] = {}
    for draft in drafts:
        for name in draft.consumers:
            feeds[name] = feeds.get(name, 0) + 1
    for draft in drafts:
        if any(feeds[name] > 1 for name in draft.consumers):
            draft.kinds = (*draft.kinds, "concat")
        if not draft.kinds:
            draft.kinds = ("single",)
