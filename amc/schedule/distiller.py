"""Distiller schedule YAML: export a strategy (and densities) in the form Distiller loads; import Distiller's.

Export: the one-shot form Distiller uses for thinned networks (its examples/pruning_filters_for_efficient_convnets).
Channels removed become `L1RankedStructureParameterPruner` instances (`group_type: Filters`), one per coupled group
with `group_dependency: Leader` (the layers sharing channels through a residual add rank together) and one per
distinct sparsity for the lone layers, every one at `epochs: [0]`, then a `FilterRemover` thinning extension
(`remove_filters`) at epoch 0 with the network's Distiller `arch` and a `dataset` Distiller can infer the input
shape from. Each `desired_sparsity` is chosen so that Distiller's `floor(sparsity * filters)` removes exactly the
filters amc removed. Densities become one `SparsityLevelParameterPruner` (`levels`: weight -> sparsity) at epoch
0, or at epoch 1 after the thinning when there is one (so the levels apply to the thinned weights): AGP cannot
express a one-shot sparsity (Distiller asserts final_sparsity > initial_sparsity and a span > 0). Parameter names
carry DataParallel's `module.` where Distiller puts it: first (`module.layer1.0.conv1.weight`), or inside
`features` for AlexNet and VGG (`features.module.0.weight`). amc/schedule/distiller_check.py checks the result
against Distiller's own asserts.

Bit-widths (the schedule's `bits`) become one `quantizers:` instance, QuantAwareTrainRangeLinearQuantizer with
its policy by default or PostTrainLinearQuantizer (no policy: Distiller applies it at evaluation); see
amc/schedule/quantizers.py.

Import: amc/schedule/distiller_read.py (`parse_distiller`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

import yaml

from amc.errors import UserError
from amc.pruning.strategy import Strategy
from amc.schedule.distiller_read import parse_distiller
from amc.schedule.quantizers import QAT_CLASS, QUANTIZER_NAME, bits_to_quantizer, quantizer_policy
from amc.schedule.schedule import Schedule

__all__ = [
    "distiller_arch",
    "distiller_dataset",
    "distiller_param",
    "parse_distiller",
    "schedule_to_distiller",
    "schedule_to_distiller_yaml",
    "strategy_to_distiller",
    "strategy_to_distiller_yaml",
]

STRUCTURED_CLASS = "L1RankedStructureParameterPruner"
LEVELS_CLASS = "SparsityLevelParameterPruner"
THINNER = "net_thinner"
# distiller/apputils/data_loaders.py, classification_get_input_shape: the shape each dataset name stands for.
DATASET_SHAPES: dict[tuple[int, ...], str] = {(3, 224, 224): "imagenet", (3, 32, 32): "cifar10", (1, 28, 28): "mnist"}


def distiller_arch(model: str) -> str:
    """Distiller's name for amc's `model` (resnet20 -> resnet20_cifar, torchvision:resnet50 -> resnet50); "" if none."""
    from amc.models import model_info

    try:
        return model_info(model).distiller_arch if model else ""
    except UserError:
        return ""


def distiller_dataset(input_size: tuple[int, ...] | None, arch: str) -> str:
    """The dataset name that gives Distiller's thinning the network's input shape, else the one for `arch`
    (Distiller's classification_dataset_str_from_arch: 'cifar' -> cifar10, 'mnist' -> mnist, else imagenet)."""
    if input_size is not None and tuple(input_size) in DATASET_SHAPES:
        return DATASET_SHAPES[tuple(input_size)]
    return "cifar10" if "cifar" in arch else "mnist" if "mnist" in arch else "imagenet"


def distiller_param(layer: str, arch: str, prefix: str = "module.") -> str:
    """The weight's name in Distiller's DataParallel model: create_model wraps `features` alone for AlexNet/VGG."""
    if not prefix:
        return f"{layer}.weight"
    if arch.startswith(("alexnet", "vgg")):
        head, dot, rest = layer.partition(".")
        return f"{head}.{prefix}{rest}.weight" if head == "features" and dot else f"{layer}.weight"
    return f"{prefix}{layer}.weight"


def exact_sparsity(removed: int, total: int) -> float:
    """A short sparsity s with Distiller's floor(s * total) == removed (r/total itself can floor one lower)."""
    share = removed / total
    for digits in (4, 6, 9):
        for value in (round(share, digits), math.ceil(share * 10**digits) / 10**digits):
            if math.floor(value * total) == removed:
                return value
    return (removed + 0.5) / total


def strategy_to_distiller(strategy: Strategy, prefix: str = "module.") -> dict[str, Any]:
    """The Distiller schedule (as a dict) that removes the channels `strategy` removes."""
    return schedule_to_distiller(Schedule(strategy=strategy), prefix)


def strategy_to_distiller_yaml(strategy: Strategy, prefix: str = "module.") -> str:
    return schedule_to_distiller_yaml(Schedule(strategy=strategy), prefix)


def schedule_to_distiller_yaml(
    schedule: Schedule,
    prefix: str = "module.",
    model: str = "",
    input_size: tuple[int, int, int] | None = None,
    quantizer: str = QAT_CLASS,
    layers: Sequence[str] = (),
) -> str:
    """The schedule as Distiller YAML; `model`/`input_size` default to the strategy's metadata."""
    data = schedule_to_distiller(schedule, prefix, model, input_size, quantizer, layers)
    return _header(schedule, model, input_size, quantizer) + yaml.safe_dump(data, sort_keys=False, width=100)


def _model_of(schedule: Schedule, model: str, input_size: tuple[int, int, int] | None) -> tuple[str, Any]:
    meta = schedule.strategy.metadata if schedule.strategy else None
    name = model or (meta.model if meta else "") or (schedule.densities.model if schedule.densities else "")
    return name, input_size or (meta.input_size if meta else None)


def _header(schedule: Schedule, model: str, input_size: tuple[int, int, int] | None, quantizer: str = QAT_CLASS) -> str:
    name, size = _model_of(schedule, model, input_size)
    arch = distiller_arch(name)
    lines = ["# Pruning schedule written by amc, in Distiller's one-shot form (pruners and thinning at epoch 0)."]
    if schedule.strategy:
        meta = schedule.strategy.metadata
        facts = [
            f"model {meta.model}" if meta.model else "",
            f"dataset {meta.dataset}" if meta.dataset else "",
            f"cost model {meta.cost_model}" if meta.cost_model else "",
            f"accuracy {meta.accuracy}" if meta.accuracy is not None else "",
        ]
        if any(facts):
            lines.append("# " + ", ".join(fact for fact in facts if fact) + ".")
        lines.append("# desired_sparsity = share of output filters removed: Distiller removes floor(sparsity * n).")
    if schedule.densities:
        lines.append("# levels = share of each weight tensor masked (element-wise): Distiller masks int(s * numel).")
        granularity = schedule.densities.pattern.granularity
        if granularity != "element":
            lines.append(
                f"# WARNING: amc pruned these layers {granularity}-wise; Distiller's levels pruner masks element-wise, "
                "so this file gives the same sparsity per layer, not the same masks. Apply amc's own result "
                "(best_densities.json) with `amc prune` / `amc evaluate` / `amc finetune` to keep the pattern."
            )
    if schedule.bits and quantizer == QAT_CLASS:
        lines.append("# quantizers: bit-widths per layer (null: full precision); set the quantizer policy's")
        lines.append("# ending_epoch to your fine-tuning length.")
    elif schedule.bits:
        lines.append("# quantizers: bit-widths per layer (null: full precision); Distiller applies this post-training")
        lines.append("# quantizer with `--quantize-eval --qe-config-file` on this file.")
    if name and not arch:
        lines.append(
            f"# Distiller has no model named {name!r}: register yours with distiller.models.register_user_model "
            "under the arch below before using this schedule."
        )
    if schedule.strategy and size is not None and tuple(size) not in DATASET_SHAPES:
        dataset = distiller_dataset(size, arch or name)
        lines.append(
            f"# The network was pruned at input {'x'.join(map(str, size))}; Distiller's thinning traces it at the "
            f"'{dataset}' input shape, which any fully convolutional network accepts."
        )
    return "\n".join(lines) + "\n"


def schedule_to_distiller(
    schedule: Schedule,
    prefix: str = "module.",
    model: str = "",
    input_size: tuple[int, int, int] | None = None,
    quantizer: str = QAT_CLASS,
    layers: Sequence[str] = (),
) -> dict[str, Any]:
    """The schedule as the dict Distiller's config.dict_config reads; bit-widths as a `quantizer` instance (with
    `layers`, every conv/linear layer's name, the quantizer's defaults are the most common bit-widths)."""
    name, size = _model_of(schedule, model, input_size)
    arch = distiller_arch(name) or name or "unknown"
    pruners: dict[str, Any] = {}
    policies: list[dict[str, Any]] = []
    thinned = False
    if schedule.strategy:
        for pruner_name, pruner in _structured_pruners(schedule.strategy, arch, prefix):
            pruners[pruner_name] = pruner
            policies.append({"pruner": {"instance_name": pruner_name}, "epochs": [0]})
        thinned = bool(pruners)
    levels = {}
    if schedule.densities:
        for layer, density in schedule.densities.densities.items():
            sparsity = min(round(1.0 - density, 6), 0.999999)
            if sparsity > 0:
                levels[distiller_param(layer, arch, prefix)] = sparsity
    if levels:
        pruners["fine_pruner"] = {"class": LEVELS_CLASS, "levels": levels}
        policies.append({"pruner": {"instance_name": "fine_pruner"}, "epochs": [1 if thinned else 0]})
    data: dict[str, Any] = {"version": 1, "pruners": pruners}
    if thinned:
        data["extensions"] = {
            THINNER: {
                "class": "FilterRemover",
                "thinning_func_str": "remove_filters",
                "arch": arch,
                "dataset": distiller_dataset(size, arch),
            }
        }
        policies.insert(len(policies) - bool(levels), {"extension": {"instance_name": THINNER}, "epochs": [0]})
    if schedule.bits and (schedule.bits.weights or schedule.bits.activations):
        data["quantizers"] = {QUANTIZER_NAME: bits_to_quantizer(schedule.bits, layers, quantizer)}
        policies.extend(quantizer_policy(quantizer))
    data["policies"] = policies
    return data


def _structured_pruners(strategy: Strategy, arch: str, prefix: str) -> Iterable[tuple[str, dict[str, Any]]]:
    groups: dict[int, list[str]] = {}
    sparsity: dict[int, float] = {}
    for layer in strategy.layers:
        if layer.kept < layer.channels:
            groups.setdefault(layer.group, []).append(distiller_param(layer.name, arch, prefix))
            sparsity[layer.group] = exact_sparsity(layer.channels - layer.kept, layer.channels)
    singles: dict[float, list[str]] = {}
    for group, weights in groups.items():
        if len(weights) > 1:
            yield (
                f"coupled_pruner_{group}",
                {
                    "class": STRUCTURED_CLASS,
                    "group_type": "Filters",
                    "desired_sparsity": sparsity[group],
                    "group_dependency": "Leader",
                    "weights": weights,
                },
            )
        else:
            singles.setdefault(sparsity[group], []).extend(weights)
    for index, (value, weights) in enumerate(sorted(singles.items(), reverse=True)):
        yield (
            f"filter_pruner_{index}",
            {"class": STRUCTURED_CLASS, "group_type": "Filters", "desired_sparsity": value, "weights": weights},
        )
