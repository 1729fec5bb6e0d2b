"""Channel-coupling groups from Torch-Pruning's DependencyGraph.

Torch-Pruning traces the network once and knows, for every conv/linear output channel, every tensor it
flows into (residual adds, depthwise convs, concatenations, splits, flattens). We keep only what the layer
table needs: which layers' outputs move together, which layers read them, and with what multiplier.

Channel shuffles (ShuffleNet's view-transpose-view) permute channels in a way Torch-Pruning cannot map (it
crashes on the reshape). While tracing we run torchvision's `channel_shuffle` as one opaque autograd node and
cut the graph there: every group whose channels reach a shuffle is marked not prunable (with the reason), and
the layers reading shuffled tensors see a fixed input. Only channels that never cross a shuffle are pruned.
Swin's shifted-window attention and patch merging and MaxViT's window partitions and attention are cut the same
way (Torch-Pruning's index mapping through their window reshapes exhausts memory): such a network keeps its
residual widths and prunes its MLP hidden widths (and MaxViT's MBConv expansions).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import torch
import torch_pruning as tp
from torch import Tensor, nn

from amc.errors import UserError

_SHUFFLE_TAG = "AmcChannelShuffle"
_WINDOW_TAG = "AmcWindowed"
"""Parts of the autograd node names of the opaque ops below; Torch-Pruning keeps them in its op's repr."""
_BARRIERS = {
    _SHUFFLE_TAG: ("shuffle", "its channels pass through a channel shuffle, which fixes their number and order"),
    _WINDOW_TAG: (
        "windowed",
        "its channels pass through windowed attention (Swin's shifted windows and patch merging, MaxViT's block "
        "and grid partitions), whose heads and window reshapes amc cannot resize yet",
    ),
}
"""Tag -> (the group's kind, why it cannot be pruned)."""


@dataclass
class GroupDraft:
    """One coupling group before numbering: member layers (outputs) and consumer layers (inputs)."""

    members: set[str]
    consumers: dict[str, int]
    channels: int
    kinds: tuple[str, ...] = ()
    divisor: int = 1
    prunable: bool = True
    reason: str = ""


def _opaque_sites() -> list[tuple[object, str, Callable[[Callable[..., Tensor]], Callable[..., Tensor]]]]:
    """(module, attribute, wrapper) of every function tracing must see as one node."""
    import torchvision.models.maxvit as maxvit
    import torchvision.models.shufflenetv2 as shufflenetv2
    import torchvision.models.swin_transformer as swin

    return [
        (shufflenetv2, "channel_shuffle", _opaque_shuffle),
        (swin, "shifted_window_attention", _opaque_window),
        (swin, "_patch_merging_pad", _opaque_window),
        (maxvit.WindowPartition, "forward", _opaque_method),
        (maxvit.WindowDepartition, "forward", _opaque_method),
        (maxvit.RelativePositionalMultiHeadAttention, "forward", _opaque_method),
    ]


def _opaque_shuffle(shuffle: Callable[..., Tensor]) -> Callable[..., Tensor]:
    """`shuffle` as a single autograd node (named ...AmcChannelShuffle...), so tracing sees no reshape."""

    class AmcChannelShuffle(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x: Tensor, groups: int) -> Tensor:  # type: ignore[override]
            ctx.groups = groups
            return shuffle(x, groups)

        @staticmethod
        def backward(ctx, grad: Tensor) -> tuple[Tensor, None]:  # type: ignore[override]
            return shuffle(grad, grad.shape[1] // ctx.groups), None

    return lambda x, groups: AmcChannelShuffle.apply(x, groups)


def _opaque_window(function: Callable[..., Tensor]) -> Callable[..., Tensor]:
    """`function(x, ...)` computed without autograd and attached to `x` by one node (named ...AmcWindowed...):
    Torch-Pruning's index mapping through a window partition's reshapes grows without bound (it exhausts memory),
    and only the graph's shape matters while tracing."""

    class AmcWindowed(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x: Tensor, result: Tensor) -> Tensor:  # type: ignore[override]
            return result

        @staticmethod
        def backward(ctx, grad: Tensor) -> tuple[None, Tensor]:  # type: ignore[override]
            return None, grad

    def traced(x: Tensor, *args: object, **kwargs: object) -> Tensor:
        with torch.no_grad():
            result = function(x, *args, **kwargs)
        return AmcWindowed.apply(x, result)

    return traced


def _opaque_method(method: Callable[..., Tensor]) -> Callable[..., Tensor]:
    """`_opaque_window` for a module's forward(self, x, ...)."""
    function = _opaque_window(lambda x, module, *args: method(module, x, *args))
    return lambda module, x, *args: function(x, module, *args)


@contextmanager
def traceable_ops() -> Iterator[None]:
    """Within the block, channel shuffles and windowed attention run as opaque autograd nodes (restored after)."""
    saved = [(owner, name, getattr(owner, name), wrap) for owner, name, wrap in _opaque_sites()]
    for owner, name, function, wrap in saved:
        setattr(owner, name, wrap(function))
    try:
        yield
    finally:
        for owner, name, function, _ in saved:
            setattr(owner, name, function)


def _barrier_tag(node_module: object) -> str:
    if not isinstance(node_module, tp.ops._ElementWiseOp):
        return ""
    return next((tag for tag in _BARRIERS if tag in str(node_module._grad_fn)), "")


def build_dependency_graph(model: nn.Module, example: torch.Tensor) -> tp.DependencyGraph:
    """Torch-Pruning's graph of `model` (which it puts in eval mode), with the opaque ops as dead ends."""
    try:
        with traceable_ops(), torch.enable_grad():
            graph = tp.DependencyGraph().build_dependency(model, example_inputs=example, verbose=False)
    except Exception as error:  # noqa: BLE001 - any tracing failure is the same problem for the user
        raise UserError(
            f"cannot trace {type(model).__name__} to find which layers share channels "
            f"(Torch-Pruning: {type(error).__name__}: {error}).",
            fix="report the model; until then it can be priced and searched only without channel pruning.",
        ) from error
    for node in graph.module2node.values():
        if _barrier_tag(node.module):
            node.dependencies = []
    return graph


def _group_barrier(group: tp.Group) -> str:
    """The tag of the opaque op a Torch-Pruning group's channels reach ("" when none: it can be pruned)."""
    return next((tag for dep, _ in group.items if (tag := _barrier_tag(dep.target.module))), "")


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
        if isinstance(module, nn.MultiheadAttention):  # each head keeps the same number of its own channels
            grouped.append(module.num_heads)
        name = names.get(module)
        if name not in traced or not isinstance(module, (nn.Conv2d, nn.Linear)):
            continue
        is_depthwise = isinstance(module, nn.Conv2d) and module.groups > 1 and module.groups == module.in_channels
        if graph_is_out(dep):
            members.add(name)
            depthwise |= is_depthwise
        elif not is_depthwise:
            consumers[name] = max(1, len(idxs) // channels)
        if isinstance(module, nn.Conv2d) and module.groups > 1 and not is_depthwise:
            grouped.append(module.groups)
    if not members:
        return None
    kinds = []
    if depthwise:
        kinds.append("depthwise")
    if len(members) - int(depthwise) > 1:
        kinds.append("residual")
    barrier = _group_barrier(group)
    reason = ""
    if barrier:
        kind, reason = _BARRIERS[barrier]
        kinds.append(kind)
    divisor = math.lcm(*grouped) if grouped else 1
    return GroupDraft(members, consumers, channels, tuple(kinds), divisor, prunable=not reason, reason=reason)


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
