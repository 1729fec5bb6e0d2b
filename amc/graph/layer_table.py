"""The layer table: every conv/linear layer of a network as a LayerSpec, plus its channel-coupling groups.

Built once per (model, input size) by tracing one forward pass on a copy of the model (shapes, execution
order, what is fused after each layer) and asking Torch-Pruning's DependencyGraph which layers' output
channels must be removed together (residual adds, depthwise convs, concatenation). Everything downstream
(cost models, the env, strategies, schedules) keys layers by their qualified module name.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from amc.errors import UserError
from amc.graph.coupling import GroupDraft, find_coupling_groups
from hwmodel.spec import LayerSpec

_ACTIVATIONS = {
    nn.ReLU: "relu",
    nn.ReLU6: "relu6",
    nn.Hardswish: "hardswish",
    nn.SiLU: "silu",
    nn.GELU: "gelu",
    nn.Hardsigmoid: "hardsigmoid",
}


@dataclass(frozen=True)
class Layer:
    """One conv/linear layer: its spec, the group that owns its output channels, and what feeds its input.

    in_channels of a pruned variant = in_fixed + sum(multiplier * kept[group] for group, multiplier in in_sources)
    (multiplier > 1 for a linear layer after a flatten).
    """

    index: int
    name: str
    spec: LayerSpec
    out_group: int | None
    in_sources: tuple[tuple[int, int], ...]
    in_fixed: int

    @property
    def op(self) -> str:
        return self.spec.op

    @property
    def macs(self) -> int:
        return self.spec.macs

    @property
    def params(self) -> int:
        return self.spec.params


@dataclass(frozen=True)
class CouplingGroup:
    """Layers whose output channels are pruned together, so one keep decision covers all of them.

    `kinds` says why they are coupled: "residual", "depthwise", "concat", or "single" for a lone layer; "shuffle"
    or "windowed" when a channel shuffle or a Swin windowed op fixes them.
    `divisor`: the kept channel count must be a multiple of it (grouped convs keep whole groups equal).
    `prunable` is False when the channels cannot be removed at all (e.g. they cross a channel shuffle);
    `reason` then says why, and the group always keeps all its channels.
    """

    index: int
    layers: tuple[str, ...]
    consumers: tuple[str, ...]
    channels: int
    kinds: tuple[str, ...]
    divisor: int = 1
    prunable: bool = True
    reason: str = ""

    @property
    def leader(self) -> str:
        """The first layer of the group in execution order: its name stands for the group."""
        return self.layers[0]


@dataclass(frozen=True)
class LayerTable:
    model_name: str
    input_size: tuple[int, int, int]
    layers: tuple[Layer, ...]
    groups: tuple[CouplingGroup, ...]
    total_params: int

    @property
    def total_macs(self) -> int:
        return sum(layer.macs for layer in self.layers)

    @property
    def prunable_groups(self) -> tuple[CouplingGroup, ...]:
        """The groups a strategy may shrink (all but those marked not prunable)."""
        return tuple(group for group in self.groups if group.prunable)

    def layer(self, name: str) -> Layer:
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise KeyError(name)

    def group_of(self, layer_name: str) -> CouplingGroup | None:
        out_group = self.layer(layer_name).out_group
        return None if out_group is None else self.groups[out_group]

    def layer_channels(self, index: int, kept: Mapping[int, int]) -> tuple[int, int]:
        """(in, out) channels of layer `index` when group g keeps kept[g] channels (absent: unpruned).

        The one place that knows how kept channels set a layer's shape: a depthwise conv follows its group on both
        sides (times its channel multiplier); any other layer's outputs are its group's, and its inputs are the
        fixed ones plus each feeding group's count times its multiplier (a flatten before a linear layer)."""
        layer = self.layers[index]
        spec = layer.spec
        if spec.op == "dwconv" and layer.out_group is not None:
            channels = kept.get(layer.out_group, self.groups[layer.out_group].channels)
            return channels, channels * (spec.out_channels // spec.in_channels)
        out = spec.out_channels if layer.out_group is None else kept.get(layer.out_group, spec.out_channels)
        fed = sum(multiplier * kept.get(group, self.groups[group].channels) for group, multiplier in layer.in_sources)
        return layer.in_fixed + fed, out

    def channel_counts(self, kept: Mapping[int, int]) -> list[tuple[int, int]]:
        """(in, out) channels of every layer when group g keeps kept[g] channels (absent: unpruned)."""
        return [self.layer_channels(layer.index, kept) for layer in self.layers]

    def specs(self, kept: Mapping[int, int] | None = None) -> list[LayerSpec]:
        """LayerSpecs of the pruned variant where group g keeps kept[g] output channels."""
        if not kept:
            return [layer.spec for layer in self.layers]
        return [
            layer.spec
            if (i, o) == (layer.spec.in_channels, layer.spec.out_channels)
            else layer.spec.with_channels(i, o)
            for layer, (i, o) in zip(self.layers, self.channel_counts(kept))
        ]

    def to_dict(self) -> dict[str, object]:
        """The `amc inspect --json` object."""
        return {
            "model": self.model_name,
            "input_size": list(self.input_size),
            "layers": [
                {
                    "index": layer.index,
                    "name": layer.name,
                    "op": layer.spec.op,
                    "in_channels": layer.spec.in_channels,
                    "out_channels": layer.spec.out_channels,
                    "kernel": list(layer.spec.kernel),
                    "stride": list(layer.spec.stride),
                    "padding": list(layer.spec.padding),
                    "groups": layer.spec.groups,
                    "in_hw": list(layer.spec.in_hw),
                    "out_hw": list(layer.spec.out_hw),
                    "macs": layer.macs,
                    "params": layer.params,
                    "fused": list(layer.spec.fused),
                    "group": layer.out_group,
                }
                for layer in self.layers
            ],
            "groups": [
                {
                    "index": group.index,
                    "layers": list(group.layers),
                    "consumers": list(group.consumers),
                    "channels": group.channels,
                    "kinds": list(group.kinds),
                    "divisor": group.divisor,
                    "prunable": group.prunable,
                    "reason": group.reason,
                }
                for group in self.groups
            ],
            "total_macs": self.total_macs,
            "total_params": self.total_params,
        }


@dataclass
class _Trace:
    name: str
    module: nn.Module
    in_hw: tuple[int, int]
    batch: int
    output_id: int
    fused: list[str]


def _op_of(module: nn.Module) -> str:
    if isinstance(module, nn.Linear):
        return "linear"
    assert isinstance(module, nn.Conv2d)
    if module.groups == 1:
        return "conv"
    if module.groups == module.in_channels:
        return "dwconv"
    return "gconv"


def _trace_layers(model: nn.Module, example: torch.Tensor) -> list[_Trace]:
    """Run one forward pass and record each conv/linear layer's input size and what runs right after it."""
    traces: list[_Trace] = []
    by_output: dict[int, _Trace] = {}
    alive: list[torch.Tensor] = []  # keeps traced outputs alive so no other tensor can reuse their id()
    seen: set[int] = set()
    handles = []

    def on_layer(name: str):
        def hook(module: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
            if id(module) in seen:
                return
            seen.add(id(module))
            x = inputs[0]
            if isinstance(module, nn.Conv2d) and x.dim() == 4:
                in_hw, batch = (int(x.shape[-2]), int(x.shape[-1])), int(x.shape[0])
            else:  # a linear layer runs once per row: tokens (ViT) or positions (ConvNeXt's and Swin's B, H, W, C)
                in_hw, batch = (1, 1), int(math.prod(x.shape[:-1]))
            trace = _Trace(name, module, in_hw, batch, id(output), [])
            traces.append(trace)
            by_output[id(output)] = trace
            alive.append(output)

        return hook

    def on_follower(kind: str):
        def hook(module: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
            trace = by_output.pop(id(inputs[0]), None) if inputs else None
            if trace is not None:
                trace.fused.append(kind)
                by_output[id(output)] = trace
            alive.append(output)

        return hook

    for name, module in model.named_modules():
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            handles.append(module.register_forward_hook(on_layer(name)))
        elif isinstance(module, nn.BatchNorm2d):
            handles.append(module.register_forward_hook(on_follower("bn")))
        elif type(module) in _ACTIVATIONS:
            handles.append(module.register_forward_hook(on_follower(_ACTIVATIONS[type(module)])))
    try:
        with torch.no_grad():
            model(example)
    finally:
        for handle in handles:
            handle.remove()
    return traces


def _spec_of(trace: _Trace) -> LayerSpec:
    module = trace.module
    if isinstance(module, nn.Linear):
        return LayerSpec(
            "linear",
            module.in_features,
            module.out_features,
            batch=trace.batch,
            bias=module.bias is not None,
            fused=tuple(trace.fused),
        )
    assert isinstance(module, nn.Conv2d)
    if isinstance(module.padding, str):
        raise ValueError(f"layer {trace.name}: string padding {module.padding!r} is not supported")
    return LayerSpec(
        _op_of(module),
        module.in_channels,
        module.out_channels,
        kernel=module.kernel_size,  # type: ignore[arg-type]
        stride=module.stride,  # type: ignore[arg-type]
        padding=module.padding,  # type: ignore[arg-type]
        dilation=module.dilation,  # type: ignore[arg-type]
        groups=module.groups,
        in_hw=trace.in_hw,
        batch=trace.batch,
        bias=module.bias is not None,
        fused=tuple(trace.fused),
    )


def build_layer_table(model: nn.Module, input_size: Sequence[int], model_name: str = "", batch: int = 1) -> LayerTable:
    """Describe `model` for an input of shape (C, H, W). The caller's model is not touched (a copy is traced)."""
    c, h, w = (int(v) for v in input_size)
    work = copy.deepcopy(model).eval().cpu()
    example = torch.randn(batch, c, h, w)
    try:
        traces = _trace_layers(work, example)
    except (AssertionError, RuntimeError, ValueError) as error:  # the network's own check of its input shape
        raise UserError(
            f"{model_name or type(model).__name__} cannot run on a {c}x{h}x{w} input: " + " ".join(str(error).split()),
            fix="give it an input of the size it was built for (`amc list models` shows each zoo model's): "
            "`--input-size` for `amc inspect` and `amc prune`, a dataset of that image size for a search.",
        ) from error
    if not traces:
        raise ValueError(f"{model_name or type(model).__name__} has no Conv2d or Linear layer to describe")
    name_to_index = {trace.name: index for index, trace in enumerate(traces)}
    drafts = find_coupling_groups(work, example, layer_order=[trace.name for trace in traces])
    groups, out_group, in_sources = _number_groups(drafts, name_to_index)
    layers = []
    for index, trace in enumerate(traces):
        spec = _spec_of(trace)
        sources = tuple(in_sources.get(trace.name, ()))
        fed = sum(multiplier * groups[group].channels for group, multiplier in sources)
        layers.append(
            Layer(index, trace.name, spec, out_group.get(trace.name), sources, max(spec.in_channels - fed, 0))
        )
    total_params = sum(p.numel() for p in model.parameters())
    return LayerTable(model_name or type(model).__name__, (c, h, w), tuple(layers), tuple(groups), total_params)


def _number_groups(
    drafts: list[GroupDraft], name_to_index: dict[str, int]
) -> tuple[list[CouplingGroup], dict[str, int], dict[str, list[tuple[int, int]]]]:
    """Order groups by their first layer's execution index and index the layer -> group relations."""
    drafts = sorted(drafts, key=lambda draft: min(name_to_index[name] for name in draft.members))
    groups: list[CouplingGroup] = []
    out_group: dict[str, int] = {}
    in_sources: dict[str, list[tuple[int, int]]] = {}
    for index, draft in enumerate(drafts):
        members = tuple(sorted(draft.members, key=name_to_index.__getitem__))
        consumers = tuple(sorted(draft.consumers, key=name_to_index.__getitem__))
        groups.append(
            CouplingGroup(
                index, members, consumers, draft.channels, draft.kinds, draft.divisor, draft.prunable, draft.reason
            )
        )
        for name in members:
            out_group[name] = index
        for name in consumers:
            in_sources.setdefault(name, []).append((index, draft.consumers[name]))
    return groups, out_group, in_sources
