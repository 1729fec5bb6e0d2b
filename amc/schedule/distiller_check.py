"""Would Distiller load this schedule? The checks Distiller itself makes, each with the source it comes from.

Distiller (IntelLabs/distiller, archived) builds a schedule in distiller/config.py (dict_config, build_component)
and distiller/scheduler.py (CompressionScheduler.add_policy); its pruners and thinning extensions assert their
own arguments when built or first run. This module repeats those checks on the parsed YAML, without Distiller,
so that every schedule amc writes is one Distiller accepts, and `amc schedule inspect --check` can say why a
user's file would fail. An issue of severity "error" is something Distiller raises on; "warning" is something
it accepts but that needs the user's attention (an `arch` that is not one of Distiller's models).
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeGuard

import yaml

from amc.errors import UserError

ERROR = "error"
WARNING = "warning"

# distiller/pruning/__init__.py, distiller/regularization/__init__.py, distiller/quantization/__init__.py,
# distiller/thinning.py and distiller/learning_rate.py: the classes config.build_component can find by name.
PRUNER_CLASSES = (
    "MagnitudeParameterPruner",
    "AutomatedGradualPruner",
    "L1RankedStructureParameterPruner_AGP",
    "L2RankedStructureParameterPruner_AGP",
    "ActivationAPoZRankedFilterPruner_AGP",
    "ActivationMeanRankedFilterPruner_AGP",
    "GradientRankedFilterPruner_AGP",
    "RandomRankedFilterPruner_AGP",
    "BernoulliFilterPruner_AGP",
    "SparsityLevelParameterPruner",
    "SensitivityPruner",
    "SplicingPruner",
    "StructureParameterPruner",
    "L1RankedStructureParameterPruner",
    "L2RankedStructureParameterPruner",
    "ActivationAPoZRankedFilterPruner",
    "ActivationMeanRankedFilterPruner",
    "GradientRankedFilterPruner",
    "RandomRankedFilterPruner",
    "RandomLevelStructureParameterPruner",
    "BernoulliFilterPruner",
    "FMReconstructionChannelPruner",
    "BaiduRNNPruner",
)
EXTENSION_CLASSES = ("StructureRemover", "FilterRemover", "ChannelRemover")
REGULARIZER_CLASSES = ("L1Regularizer", "GroupLassoRegularizer", "GroupVarianceRegularizer")
QUANTIZER_CLASSES = (
    "PostTrainLinearQuantizer",
    "QuantAwareTrainRangeLinearQuantizer",
    "NCFQuantAwareTrainQuantizer",
    "WRPNQuantizer",
    "DorefaQuantizer",
    "PACTQuantizer",
)
DISTILLER_LR_CLASSES = ("PolynomialLR", "MultiStepMultiGammaLR")
THINNING_FUNCTIONS = ("remove_filters", "remove_channels", "contract_model")  # distiller/thinning.py globals
DATASETS = ("imagenet", "cifar10", "mnist")  # distiller/apputils/data_loaders.py, classification_get_input_shape
GROUP_TYPES = ("3D", "Filters", "Channels", "Rows", "Blocks")  # LpRankedStructureParameterPruner.__init__
AGP_CLASSES = tuple(name for name in PRUNER_CLASSES if name.endswith("_AGP")) + ("AutomatedGradualPruner",)

# Constructor arguments (required, optional) of the classes amc reads and writes, as config.build_component
# matches them (distiller/utils.py, filter_kwargs): an unknown argument is a ValueError, a missing one a TypeError.
_RANKED = (("group_type", "desired_sparsity", "weights"), ("group_dependency", "kwargs", "noise", "group_size"))
_RANKED_AGP = (("initial_sparsity", "final_sparsity", "group_type", "weights"), ("group_dependency", "kwargs"))
SIGNATURES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "L1RankedStructureParameterPruner": (_RANKED[0], (*_RANKED[1], "rounding_fn")),
    "L2RankedStructureParameterPruner": (_RANKED[0], (*_RANKED[1], "rounding_fn")),
    "L1RankedStructureParameterPruner_AGP": _RANKED_AGP,
    "L2RankedStructureParameterPruner_AGP": _RANKED_AGP,
    "AutomatedGradualPruner": (("initial_sparsity", "final_sparsity", "weights"), ("rate_scheduler_factory",)),
    "FilterRemover": (("thinning_func_str", "arch", "dataset"), ()),
    "ChannelRemover": (("thinning_func_str", "arch", "dataset"), ()),
    "StructureRemover": (("thinning_func_str", "arch", "dataset"), ()),
}

# distiller/models/__init__.py: CIFAR10_MODEL_NAMES, MNIST_MODEL_NAMES and the ImageNet models it adds to
# torchvision's (distiller/models/{cifar10,mnist,imagenet}/*.py __all__, lower-case callables only).
DISTILLER_ARCHS = frozenset(
    [
        *(f"resnet{d}_cifar" for d in (20, 32, 44, 56)),
        *(f"resnet{d}_cifar_earlyexit" for d in (20, 32, 44, 56, 110, 1202)),
        *(f"preact_resnet{d}_cifar" for d in (20, 32, 44, 56, 110)),
        *(f"preact_resnet{d}_cifar_conv_ds" for d in (20, 32, 44, 56, 110)),
        *(f"vgg{d}{bn}_cifar" for d in (11, 13, 16, 19) for bn in ("", "_bn")),
        "plain20_cifar",
        "plain20_cifar_nobn",
        "simplenet_cifar",
        "simplenet_mnist",
        "simplenet_v2_mnist",
        "mobilenet",
        "mobilenet_025",
        "mobilenet_050",
        "mobilenet_075",
        "mobilenet_v1_dropout",
        *(f"preact_resnet{d}" for d in (18, 34, 50, 101, 152)),
        "alexnet_bn",
        "resnet50_earlyexit",
    ]
)


@dataclass(frozen=True)
class DistillerIssue:
    """One reason Distiller would refuse (error) or need help with (warning) a schedule."""

    severity: str
    key: str
    problem: str
    fix: str
    rule: str

    def __str__(self) -> str:
        return f"{self.severity}: {self.key}: {self.problem} Fix: {self.fix} [{self.rule}]"


def known_arch(arch: str) -> bool:
    """Whether Distiller's create_model knows `arch` (its own models, or torchvision's by name)."""
    import torchvision

    return arch in DISTILLER_ARCHS or arch in torchvision.models.list_models(module=torchvision.models)


def lr_scheduler_classes() -> tuple[str, ...]:
    """config.py does `from torch.optim.lr_scheduler import *`: every scheduler class torch defines."""
    import torch.optim.lr_scheduler as schedulers

    names = [
        name
        for name, value in vars(schedulers).items()
        if inspect.isclass(value) and (issubclass(value, schedulers.LRScheduler) or name == "ReduceLROnPlateau")
    ]
    return (*names, *DISTILLER_LR_CLASSES)


def check_distiller_text(text: str, source: str = "schedule") -> list[DistillerIssue]:
    """The issues of a schedule's YAML text (malformed YAML is a UserError)."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise UserError(f"{source} is malformed YAML: {error}.", fix="fix the YAML syntax.") from None
    return check_distiller(data)


def check_distiller(data: Any) -> list[DistillerIssue]:
    """Every check Distiller makes while loading and first running `data` (a parsed schedule)."""
    issues: list[DistillerIssue] = []

    def add(key: str, problem: str, fix: str, rule: str, severity: str = ERROR) -> None:
        issues.append(DistillerIssue(severity, key, problem, fix, rule))

    if not isinstance(data, dict):
        add(
            "(file)",
            "the schedule is not a mapping.",
            "write sections such as pruners: and policies:.",
            "distiller/config.py dict_config",
        )
        return issues
    if not isinstance(data.get("policies"), list):
        # dict_config iterates sched_dict['policies']: KeyError without it, TypeError if it is not a list.
        add(
            "policies",
            f"is {'missing' if 'policies' not in data else repr(data['policies'])}; Distiller needs a "
            "list of policies.",
            "add 'policies:' with one '- pruner: {instance_name: ...}' entry per pruner.",
            "distiller/config.py dict_config",
        )
    sections = {
        "pruners": PRUNER_CLASSES,
        "regularizers": REGULARIZER_CLASSES,
        "quantizers": QUANTIZER_CLASSES,
        "extensions": EXTENSION_CLASSES,
        "lr_schedulers": lr_scheduler_classes(),
    }
    for section, classes in sections.items():
        members = data.get(section) or {}
        if not isinstance(members, dict):
            add(
                section,
                f"is {type(members).__name__}, not a mapping of instance names.",
                f"write '{section}:' followed by 'name: {{class: ...}}' entries.",
                "distiller/config.py __factory",
            )
            continue
        for name, config in members.items():
            _check_component(add, section, str(name), config, classes)
    quantizers = data.get("quantizers")
    if isinstance(quantizers, dict) and len(quantizers) > 1:
        add("quantizers", "holds more than one quantizer.", "keep one.", "distiller/config.py dict_config")
    policies = data.get("policies")
    for index, policy in enumerate(policies if isinstance(policies, list) else []):
        _check_policy(add, data, index, policy)
    return issues


def _check_component(add: Any, section: str, name: str, config: Any, classes: tuple[str, ...]) -> None:
    key = f"{section}.{name}"
    if not isinstance(config, dict) or not isinstance(config.get("class"), str):
        add(key, "has no 'class'.", "add 'class: <Distiller class name>'.", "distiller/config.py build_component")
        return
    cls = config["class"]
    if cls not in classes:
        add(
            f"{key}.class",
            f"{cls!r} is not a class Distiller defines for {section}.",
            f"use one of {', '.join(classes[:6])}, ...",
            "distiller/config.py build_component (globals()[class_name])",
        )
        return
    if cls in SIGNATURES:
        required, optional = SIGNATURES[cls]
        given = set(config) - {"class"}
        unknown = sorted(given - set(required) - set(optional))
        if unknown:
            add(
                key,
                f"{cls} does not accept {', '.join(unknown)}.",
                "remove them.",
                "distiller/config.py build_component (filter_kwargs: 'does not accept the following arguments')",
            )
        missing = [arg for arg in required if arg not in config]
        if missing:
            add(
                key,
                f"{cls} needs {', '.join(missing)}.",
                f"add {', '.join(missing)}.",
                f"{cls}.__init__ (TypeError: missing required argument)",
            )
    if "weights" in config and not config["weights"]:
        add(
            f"{key}.weights",
            "is empty.",
            "list the weights to prune.",
            "distiller/pruning/ranked_structures_pruner.py and automated_gradual_pruner.py: assert self.params_names",
        )
    if cls in AGP_CLASSES:
        initial, final = config.get("initial_sparsity"), config.get("final_sparsity")
        if _number(initial) and _number(final) and not final > initial:
            add(
                key,
                f"final_sparsity {final} is not greater than initial_sparsity {initial}.",
                "use SparsityLevelParameterPruner (levels) for a one-shot sparsity, or start the ramp lower.",
                "distiller/pruning/automated_gradual_pruner.py AgpPruningRate.__init__: "
                "assert final_sparsity > initial_sparsity",
            )
        if cls == "AutomatedGradualPruner" and initial == 0:
            add(
                key,
                "initial_sparsity 0 masks no weight at the first step, and Distiller then indexes an empty top-k.",
                "start at a small positive sparsity, e.g. 0.05.",
                "distiller/pruning/__init__.py create_mask_level_criterion (bottomk.data[-1])",
            )
    if cls in ("L1RankedStructureParameterPruner", "L2RankedStructureParameterPruner") or cls in (
        "L1RankedStructureParameterPruner_AGP",
        "L2RankedStructureParameterPruner_AGP",
    ):
        group_type = config.get("group_type")
        if group_type not in GROUP_TYPES:
            add(
                f"{key}.group_type",
                f"{group_type!r} is not one of {', '.join(GROUP_TYPES)}.",
                "use Filters to remove output filters, Channels to remove input channels.",
                "distiller/pruning/ranked_structures_pruner.py LpRankedStructureParameterPruner.__init__",
            )
        elif group_type == "Blocks" and "block_shape" not in (config.get("kwargs") or {}):
            add(
                f"{key}.kwargs",
                "group_type Blocks needs kwargs.block_shape.",
                "add 'kwargs: {block_shape: [1, 8, 1, 1]}'.",
                "distiller/pruning/ranked_structures_pruner.py LpRankedStructureParameterPruner.__init__",
            )
    if cls == "SparsityLevelParameterPruner" and not config.get("levels"):
        add(
            f"{key}.levels",
            "is missing or empty.",
            "map weights to sparsities.",
            "distiller/pruning/level_pruner.py SparsityLevelParameterPruner.__init__: assert self.levels",
        )
    if cls in EXTENSION_CLASSES:
        function = config.get("thinning_func_str")
        if function not in THINNING_FUNCTIONS:
            add(
                f"{key}.thinning_func_str",
                f"{function!r} is not one of Distiller's thinning functions.",
                f"use one of {', '.join(THINNING_FUNCTIONS)}.",
                "distiller/thinning.py StructureRemover.__init__ (globals()[thinning_func_str])",
            )
        dataset = config.get("dataset")
        if dataset not in DATASETS:
            add(
                f"{key}.dataset",
                f"{dataset!r} gives Distiller no input shape for the thinning's dummy input.",
                f"use one of {', '.join(DATASETS)} (the one whose image size the network takes).",
                "distiller/thinning.py _create_graph -> distiller/utils.py get_dummy_input -> "
                "distiller/apputils/data_loaders.py classification_get_input_shape",
            )
        arch = config.get("arch")
        if isinstance(arch, str) and not known_arch(arch):
            add(
                f"{key}.arch",
                f"{arch!r} is not one of Distiller's models, so `compress_classifier.py -a {arch}` "
                "cannot build the network this schedule is for.",
                "register the model with distiller.models.register_user_model under this name first.",
                "distiller/models/__init__.py create_model ('Could not recognize dataset and arch pair')",
                WARNING,
            )


def _check_policy(add: Any, data: Mapping[str, Any], index: int, policy: Any) -> None:
    key = f"policies[{index}]"
    rule = "distiller/config.py dict_config"
    if not isinstance(policy, dict):
        add(key, "is not a mapping.", "write '- pruner: {instance_name: ...}' and its epochs.", rule)
        return
    kinds = {
        "pruner": "pruners",
        "regularizer": "regularizers",
        "quantizer": "quantizers",
        "lr_scheduler": "lr_schedulers",
        "extension": "extensions",
    }
    kind = next((name for name in kinds if name in policy), None)
    if kind is None:
        add(
            key,
            "names no pruner, regularizer, quantizer, lr_scheduler or extension.",
            "name one.",
            f"{rule} ('unknown policy')",
        )
        return
    target = policy[kind]
    name = target.get("instance_name") if isinstance(target, dict) else None
    defined = data.get(kinds[kind]) or {}
    if not isinstance(defined, dict) or name not in defined:
        add(
            f"{key}.{kind}.instance_name",
            f"{name!r} is not defined under '{kinds[kind]}'.",
            "define it, or name one that is.",
            f"{rule} (assert instance_name in {kinds[kind]})",
        )
    args = target.get("args") if isinstance(target, dict) else None
    if isinstance(args, dict) and args.get("mask_gradients") and not args.get("mask_on_forward_only"):
        add(
            f"{key}.{kind}.args",
            "mask_gradients needs mask_on_forward_only.",
            "set mask_on_forward_only: True.",
            "distiller/policy.py PruningPolicy.__init__ (ValueError)",
        )
    frequency = _check_timing(add, key, policy)
    config = defined.get(name) if isinstance(defined, dict) else None
    if kind == "pruner" and isinstance(config, dict) and config.get("class") in AGP_CLASSES:
        start, end = policy.get("starting_epoch"), policy.get("ending_epoch")
        if "epochs" in policy:
            add(
                f"{key}.epochs",
                "schedules an AGP pruner by an epoch list, which leaves its frequency None.",
                "give starting_epoch, ending_epoch and frequency.",
                "distiller/scheduler.py add_policy (frequency = None) -> AgpPruningRate.step (// freq)",
            )
        elif frequency and _integer(start) and _integer(end) and ((end - start - 1) // frequency) * frequency <= 0:
            add(
                key,
                f"starting_epoch {start}, ending_epoch {end}, frequency {frequency} give AGP a span of 0.",
                "let the policy fire at least twice (ending_epoch >= starting_epoch + 2 * frequency).",
                "distiller/pruning/automated_gradual_pruner.py AgpPruningRate.step: assert span > 0",
            )


def _check_timing(add: Any, key: str, policy: Mapping[str, Any]) -> int | None:
    """CompressionScheduler.add_policy's asserts; returns the frequency when it is valid."""
    rule = "distiller/scheduler.py CompressionScheduler.add_policy"
    if "epochs" in policy:
        epochs = policy["epochs"]
        if not isinstance(epochs, list) or not epochs or not all(_integer(e) for e in epochs):
            add(f"{key}.epochs", f"{epochs!r} is not a non-empty list of epochs.", "write e.g. 'epochs: [0]'.", rule)
        return None
    start, end, frequency = (policy.get(k) for k in ("starting_epoch", "ending_epoch", "frequency"))
    if not (_integer(start) and _integer(end) and _integer(frequency)):
        add(
            key,
            "needs 'epochs' or integer starting_epoch, ending_epoch and frequency.",
            "give epochs: [...] or all three.",
            f"{rule} and distiller/config.py add_policy_to_scheduler",
        )
        return None
    if not 0 <= start < end:
        add(
            key,
            f"starting_epoch {start} / ending_epoch {end} break 0 <= starting < ending.",
            "end the policy after it starts.",
            rule,
        )
        return None
    if not 0 < frequency <= end - start:
        add(f"{key}.frequency", f"{frequency} is outside 1..{end - start}.", "use frequency: 1.", rule)
        return None
    return frequency


def _number(value: Any) -> TypeGuard[float]:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _integer(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def errors(issues: list[DistillerIssue]) -> list[DistillerIssue]:
    return [issue for issue in issues if issue.severity == ERROR]


def require_loadable(text: str, source: str) -> list[DistillerIssue]:
    """The warnings of `text`; a UserError naming every error when Distiller would refuse it."""
    issues = check_distiller_text(text, source)
    bad = errors(issues)
    if bad:
        first = bad[0]
        more = f" ({len(bad) - 1} more: {'; '.join(f'{i.key}: {i.problem}' for i in bad[1:])})" if len(bad) > 1 else ""
        raise UserError(
            f"{source}: Distiller would refuse it: {first.key}: {first.problem} [{first.rule}]{more}", fix=first.fix
        )
    return issues
