"""Read a Distiller schedule as Distiller runs it: every policy at every epoch it names, thinning between.

Semantics, from Distiller's source (IntelLabs/distiller):
- Timing (distiller/scheduler.py, CompressionScheduler.add_policy): a policy fires at each of its `epochs`, or at
  `range(starting_epoch, ending_epoch, frequency)`. Within an epoch, pruners set their masks (on_epoch_begin) and
  thinning extensions then remove zeroed structures (on_minibatch_begin), in the policies' order.
- Counts: a ranked structure pruner masks `floor(sparsity * n)` of the n filters/channels a weight has now
  (distiller/norms.py, num_structs_to_prune); a thinning step removes them, so a pruner that fires again after a
  thinning cuts the smaller layer again: 64 -> 58 -> 53 filters for 10% twice. Element-wise pruners mask
  `int(sparsity * numel)` weights (distiller/pruning/__init__.py, create_mask_level_criterion).
- AGP (distiller/pruning/automated_gradual_pruner.py, AgpPruningRate): the target at epoch t is
  final + (initial - final) * (1 - (t - start) / span)^3, span = ((end - start - 1) // frequency) * frequency.
- One mask per weight tensor (distiller/scheduler.py, ParameterMasker): a later pruner replaces an earlier mask.
- Group types (distiller/pruning/ranked_structures_pruner.py): Filters and 3D rank output filters; Channels and
  Rows both rank input channels (rank_and_prune_channels), which on a linear weight are its input columns
  (distiller/thresholding.py, expand_binary_map: Channels on 2-D is Cols); Blocks masks blocks of weights.
- Mask-only (training-time) pruners leave nothing: a policy with `discard_masks_at_minibatch_end: True` drops its
  masks after every mini-batch (distiller/policy.py, PruningPolicy.on_minibatch_end), as DropFilter
  (BernoulliFilterPruner) and RandomLevelStructureParameterPruner schedules do.

What amc does beyond Distiller, always with a note: with no thinning step at all, the structures left masked at
the end are removed (as a thinning step would); masks after the last thinning stay as weight density; sections
amc does not use (regularizers, lr_schedulers, unscheduled pruners) are named. A quantizer's bit-widths become
the schedule's `bits` (amc/schedule/quantizers.py). Pruners whose result depends on the trained weights' values
(thresholds, sensitivities) are refused: the file does not say what they remove. Every error names the file, the
key, its line, the value and the fix.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import yaml

from amc.errors import UserError
from amc.graph import LayerTable
from amc.pruning.finegrained import LayerDensities
from amc.pruning.strategy import Strategy, StrategyMetadata
from amc.quantize.bits import LayerBits
from amc.schedule.quantizers import read_quantizers
from amc.schedule.schedule import Schedule, warn_notes
from amc.schedule.timeline import BLOCKS, CHANNELS, ELEMENTS, FILTERS, Action, Mask, Step, agp_sparsity
from hwmodel.spec import LayerSpec

# Distiller's pruner classes (distiller/pruning/__init__.py), by what amc does with them.
LP_RANKED = ("L1RankedStructureParameterPruner", "L2RankedStructureParameterPruner")
FILTER_RANKED = (
    "ActivationAPoZRankedFilterPruner",
    "ActivationMeanRankedFilterPruner",
    "GradientRankedFilterPruner",
    "RandomRankedFilterPruner",
)
CHANNEL_RANKED = ("FMReconstructionChannelPruner",)
STRUCTURE_CLASSES = (
    *LP_RANKED,
    *(f"{name}_AGP" for name in LP_RANKED),
    *FILTER_RANKED,
    *(f"{name}_AGP" for name in FILTER_RANKED),
    *CHANNEL_RANKED,
)
ELEMENTWISE_CLASSES = ("AutomatedGradualPruner", "SparsityLevelParameterPruner")
MASK_ONLY_CLASSES = ("BernoulliFilterPruner", "BernoulliFilterPruner_AGP", "RandomLevelStructureParameterPruner")
REFUSED_CLASSES = {
    "MagnitudeParameterPruner": "masks weights below absolute `thresholds`",
    "SensitivityPruner": "masks weights below `sensitivities` times each tensor's standard deviation",
    "SplicingPruner": "masks and revives weights by thresholds on their trained values (network surgery)",
    "StructureParameterPruner": "masks structures whose mean magnitude is below `reg_regims` thresholds",
    "BaiduRNNPruner": "prunes RNN weights by thresholds that grow with training steps",
}
THINNING_CLASSES = ("StructureRemover", "FilterRemover", "ChannelRemover")
THINNING_FUNCTIONS = {
    "remove_filters": (FILTERS,),
    "remove_channels": (CHANNELS,),
    "contract_model": (FILTERS, CHANNELS),
}
POLICY_KINDS = ("pruner", "regularizer", "quantizer", "lr_scheduler", "extension")
SECTIONS = ("version", "pruners", "regularizers", "quantizers", "lr_schedulers", "extensions", "policies")
GROUP_TYPES = {"Filters": FILTERS, "3D": FILTERS, "Channels": CHANNELS, "Rows": CHANNELS, "Blocks": BLOCKS}


def parse_distiller(text: str, table: LayerTable, source: str = "schedule", warn: bool = True) -> Schedule:
    """The structured and element-wise result of a Distiller schedule on `table`, with its timeline and notes.

    With `warn`, every note is also emitted as a DistillerScheduleWarning."""
    schedule = _Reader(text, table, source).parse()
    if warn:
        warn_notes(schedule)
    return schedule


@dataclass
class _Policy:
    index: int
    kind: str
    name: str
    epochs: tuple[int, ...]
    start: int
    end: int
    frequency: int | None
    args: dict[str, Any]
    synthetic: bool = False  # made up by amc for a schedule without policies


@dataclass
class _Pruner:
    name: str
    cls: str
    kind: str  # FILTERS / CHANNELS / BLOCKS (structures), ELEMENTS, or "mask-only"
    weights: list[tuple[str, str, tuple[Any, ...]]]  # (weight as written, layer, YAML path)
    desired: float | None = None
    initial: float | None = None
    final: float | None = None
    levels: dict[str, tuple[str, float, tuple[Any, ...]]] = field(default_factory=dict)
    block: int = 1

    @property
    def agp(self) -> bool:
        return self.final is not None


@dataclass
class _Thinner:
    name: str
    cls: str
    function: str


class _Reader:
    """Parses one schedule text against a layer table; every error names the key and its line."""

    def __init__(self, text: str, table: LayerTable, source: str) -> None:
        self.text, self.table, self.source = text, table, source
        self.layers = {layer.name: layer for layer in table.layers}
        self.notes: list[str] = []
        self.root: yaml.Node | None = None
        self.thinned = False
        self.bits: LayerBits | None = None

    # -------------------------------------------------------------------- errors and notes

    def line(self, path: Sequence[Any]) -> int | None:
        """1-based line of the YAML node at `path` (keys and list indices), or of its deepest existing parent."""
        node = self.root
        if node is None:
            return None
        mark = node.start_mark
        for key in path:
            if isinstance(node, yaml.MappingNode):
                match = next(((k, v) for k, v in node.value if getattr(k, "value", None) == str(key)), None)
                if match is None:
                    break
                mark, node = match[0].start_mark, match[1]  # a mapping entry: the line of its key
            elif isinstance(node, yaml.SequenceNode) and isinstance(key, int) and 0 <= key < len(node.value):
                node = node.value[key]
                mark = node.start_mark
            else:
                break
        return mark.line + 1

    def fail(self, problem: str, path: Sequence[Any] = (), fix: str = "") -> UserError:
        line = self.line(path) if path else None
        where = f" (line {line})" if line else ""
        return UserError(f"{self.source}{where}: {problem}", fix=fix or "correct the schedule.")

    def note(self, text: str) -> None:
        if text not in self.notes:
            self.notes.append(text)

    # -------------------------------------------------------------------- structure

    def parse(self) -> Schedule:
        data = self.load()
        pruners = self.section(data, "pruners")
        extensions = self.section(data, "extensions")
        self.note_unused(data)
        policies = self.policies(data, pruners, extensions)
        scheduled = {policy.name for policy in policies if policy.kind in ("pruner", "extension")}
        unscheduled = [name for name in (*pruners, *extensions) if name not in scheduled]
        if unscheduled:
            self.note(
                f"{self.source}: {', '.join(unscheduled)} appear(s) in no policy, so Distiller never runs them; amc "
                "ignores them."
            )
        defs = {name: self.pruner(name, pruners[name]) for name in pruners if name in scheduled}
        thinners = {
            policy.name: self.thinner(policy.name, extensions[policy.name])
            for policy in policies
            if policy.kind == "extension"
        }
        if not pruners:
            self.note(
                f"{self.source} has no pruners: it trains or quantizes without pruning, so amc reports the dense "
                "network."
            )
        steps = self.simulate(policies, defs, thinners)
        quantizers = {policy.name: policy.index for policy in policies if policy.kind == "quantizer"}
        layers = [layer.name for layer in self.table.layers]
        self.bits = read_quantizers(self.section(data, "quantizers"), quantizers, layers, self.table.model_name, self)
        return self.result(steps)

    def load(self) -> dict[str, Any]:
        try:
            data = yaml.safe_load(self.text)
            self.root = yaml.compose(self.text, Loader=yaml.SafeLoader)
        except yaml.YAMLError as error:
            mark = getattr(error, "problem_mark", None)
            where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
            problem = getattr(error, "problem", None) or str(error).splitlines()[0]
            raise UserError(
                f"{self.source} is malformed YAML{where}: {problem}.",
                fix="fix the YAML syntax (indentation, brackets, colons).",
            ) from None
        if not isinstance(data, dict):
            raise UserError(
                f"{self.source} is not a Distiller schedule (a mapping with 'pruners' and 'policies').",
                fix="see Distiller's examples/ schedules or `amc schedule convert` output.",
            )
        version = data.get("version", 1)
        if version != 1:
            raise self.fail(
                f"key 'version' is {version!r}; Distiller schedules are version 1.",
                ["version"],
                fix="write 'version: 1' (a number) or leave the key out.",
            )
        return data

    def section(self, data: dict[str, Any], key: str) -> dict[str, Any]:
        value = data.get(key)
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise self.fail(
                f"key '{key}' is {type(value).__name__} {value!r}; it must map instance names to their settings.",
                [key],
                fix=f"write '{key}:' followed by indented 'name: {{class: ..., ...}}' entries.",
            )
        return value

    def note_unused(self, data: dict[str, Any]) -> None:
        def members(key: str) -> str:
            section = self.section(data, key)
            return ", ".join(
                f"{name} ({config.get('class', '?')})" if isinstance(config, dict) else str(name)
                for name, config in section.items()
            )

        if data.get("regularizers"):
            self.note(
                f"{self.source}: regularizers {members('regularizers')} are training-time penalties Distiller adds to "
                "the loss; which weights or structures they drive to zero depends on the training run, so amc cannot "
                "count them and reports the network without them (a thinning step after them removes what they "
                "zeroed in Distiller, not in amc's figures)."
            )
        if data.get("lr_schedulers"):
            self.note(
                f"{self.source}: lr_schedulers {members('lr_schedulers')} drive Distiller's training only; amc "
                "ignores them (`amc evaluate` fine-tunes with its own settings)."
            )
        others = [str(key) for key in data if key not in SECTIONS]
        if others:
            self.note(f"{self.source}: key(s) {', '.join(others)} are not Distiller schedule sections; ignored.")

    def policies(self, data: dict[str, Any], pruners: dict[str, Any], extensions: dict[str, Any]) -> list[_Policy]:
        raw = data.get("policies")
        if raw is None:
            if pruners:
                self.note(
                    f"{self.source} has no 'policies', so Distiller would not run it (its config reads "
                    "sched_dict['policies']); amc applies every pruner once, at epoch 0 (AGP pruners at their "
                    "final_sparsity)."
                )
            return [_Policy(i, "pruner", name, (0,), 0, 1, None, {}, synthetic=True) for i, name in enumerate(pruners)]
        if not isinstance(raw, list):
            raise self.fail(
                f"key 'policies' is {type(raw).__name__}; it must be a list.",
                ["policies"],
                fix="write '- pruner: ...'.",
            )
        parsed = []
        for index, policy in enumerate(raw):
            path: list[Any] = ["policies", index]
            if not isinstance(policy, dict):
                raise self.fail(f"policies[{index}] = {policy!r} is not a mapping.", path)
            kind = next((key for key in POLICY_KINDS if key in policy), None)
            if kind is None:
                raise self.fail(
                    f"policies[{index}] names none of {', '.join(POLICY_KINDS)}; Distiller refuses an unknown policy.",
                    path,
                    fix="start the policy with '- pruner:' (or extension, regularizer, quantizer, lr_scheduler).",
                )
            target = policy[kind]
            name = target.get("instance_name") if isinstance(target, dict) else None
            if kind not in ("pruner", "extension"):
                parsed.append(_Policy(index, kind, str(name), (), 0, 0, None, {}))
                continue
            defined = pruners if kind == "pruner" else extensions
            if name not in defined:
                section = "pruners" if kind == "pruner" else "extensions"
                raise self.fail(
                    f"policies: {kind} instance_name {name!r} is not defined under '{section}'.",
                    [*path, kind, "instance_name"],
                    fix=f"use one of {', '.join(map(str, defined)) or '(none defined)'}.",
                )
            args = target.get("args") or {}
            if not isinstance(args, dict):
                raise self.fail(
                    f"policies[{index}].{kind}.args = {args!r} is not a mapping.",
                    [*path, kind, "args"],
                    fix="write e.g. 'args: {discard_masks_at_minibatch_end: True}' under the instance_name.",
                )
            parsed.append(self.timing(index, kind, str(name), policy, args, path))
        return parsed

    def timing(
        self, index: int, kind: str, name: str, policy: dict[str, Any], args: dict[str, Any], path: list[Any]
    ) -> _Policy:
        """The epochs a policy fires at, checked as CompressionScheduler.add_policy asserts them."""
        label = f"policies[{index}] ({kind} {name})"
        if "epochs" in policy:
            epochs = policy["epochs"]
            if (
                not isinstance(epochs, list)
                or not epochs
                or not all(isinstance(e, int) and not isinstance(e, bool) and e >= 0 for e in epochs)
            ):
                raise self.fail(
                    f"{label}: epochs = {epochs!r} is not a non-empty list of epoch numbers.",
                    [*path, "epochs"],
                    fix="write e.g. 'epochs: [0]' or 'epochs: [0, 4]'.",
                )
            return _Policy(index, kind, name, tuple(epochs), epochs[0], epochs[-1] + 1, None, args)
        values = {key: policy.get(key) for key in ("starting_epoch", "ending_epoch", "frequency")}
        missing = [key for key, value in values.items() if value is None]
        if missing:
            raise self.fail(
                f"{label} has neither 'epochs' nor {', '.join(missing)}.",
                path,
                fix="give 'epochs: [...]' or all of starting_epoch, ending_epoch and frequency.",
            )
        numbers: dict[str, int] = {}
        for key, value in values.items():
            if isinstance(value, bool) or not isinstance(value, int):
                raise self.fail(
                    f"{label}: {key} = {value!r} is not an integer.", [*path, key], fix="write a whole epoch number."
                )
            numbers[key] = value
        start, end, frequency = numbers["starting_epoch"], numbers["ending_epoch"], numbers["frequency"]
        if not 0 <= start < end:
            raise self.fail(
                f"{label}: starting_epoch {start} and ending_epoch {end} must satisfy 0 <= starting < ending "
                "(Distiller's CompressionScheduler.add_policy asserts it).",
                [*path, "ending_epoch"],
                fix="end the policy after it starts (ending_epoch is exclusive).",
            )
        if not 0 < frequency <= end - start:
            raise self.fail(
                f"{label}: frequency {frequency} must be in 1..{end - start} (ending_epoch - starting_epoch; "
                "Distiller's CompressionScheduler.add_policy asserts it).",
                [*path, "frequency"],
                fix="use frequency: 1 to fire every epoch.",
            )
        epochs = tuple(range(start, end, frequency))
        return _Policy(index, kind, name, epochs, start, end, frequency, args)

    # -------------------------------------------------------------------- pruners

    def pruner(self, name: str, config: Any) -> _Pruner:
        path: list[Any] = ["pruners", name]
        if not isinstance(config, dict):
            raise self.fail(f"pruners.{name} must be a mapping with class and weights.", path)
        cls = config.get("class")
        if not isinstance(cls, str):
            raise self.fail(f"pruners.{name} has no 'class'.", path, fix="add e.g. 'class: AutomatedGradualPruner'.")
        if cls in REFUSED_CLASSES:
            raise self.fail(
                f"pruners.{name}: class {cls!r} {REFUSED_CLASSES[cls]}, so what it removes depends on the trained "
                "weights' values and is not in the schedule; amc cannot count it.",
                [*path, "class"],
                fix="use the sparsities Distiller reported for it with SparsityLevelParameterPruner (levels) or "
                "AutomatedGradualPruner (final_sparsity).",
            )
        supported = (*STRUCTURE_CLASSES, *ELEMENTWISE_CLASSES, *MASK_ONLY_CLASSES)
        if cls not in supported:
            raise self.fail(
                f"pruners.{name}: class {cls!r} is not supported.",
                [*path, "class"],
                fix="use a Distiller pruner amc reads: L1RankedStructureParameterPruner (or another ranked-structure "
                "pruner, _AGP variants included), AutomatedGradualPruner or SparsityLevelParameterPruner.",
            )
        if cls == "SparsityLevelParameterPruner":
            return self.levels_pruner(name, cls, config.get("levels"), [*path, "levels"])
        weights = self.weights(name, config)
        if cls == "AutomatedGradualPruner":
            initial, final = self.agp_pair(name, config)
            return _Pruner(name, cls, ELEMENTS, weights, initial=initial, final=final)
        if cls in MASK_ONLY_CLASSES:
            return _Pruner(name, cls, "mask-only", weights)
        kind = self.group_type(name, cls, config)
        pruner = _Pruner(name, cls, kind, weights)
        if cls.endswith("_AGP"):
            pruner.initial, pruner.final = self.agp_pair(name, config)
        else:
            pruner.desired = self.sparsity(name, config, "desired_sparsity")
        if kind == BLOCKS:
            pruner.block = self.block_volume(name, config)
        if cls.removesuffix("_AGP") in FILTER_RANKED:
            self.note(
                f"{self.source}: pruners.{name} ({cls}) ranks filters by {self.ranking(cls)}; amc reads how many it "
                "removes, and which ones is amc's channel selection (L1 norm unless told otherwise)."
            )
        return pruner

    @staticmethod
    def ranking(cls: str) -> str:
        base = cls.removesuffix("_AGP")
        return {
            "ActivationAPoZRankedFilterPruner": "the share of zero activations (APoZ)",
            "ActivationMeanRankedFilterPruner": "mean activation",
            "GradientRankedFilterPruner": "weight times gradient",
            "RandomRankedFilterPruner": "a random draw",
        }[base]

    def group_type(self, name: str, cls: str, config: dict[str, Any]) -> str:
        path = ["pruners", name, "group_type"]
        value = config.get("group_type")
        base = cls.removesuffix("_AGP")
        if base in CHANNEL_RANKED:
            if value != "Channels":
                raise self.fail(
                    f"pruners.{name}: {cls} prunes Channels only; group_type is {value!r}.",
                    path,
                    fix="write group_type: Channels.",
                )
            return CHANNELS
        allowed = ("Filters", "3D") if base in FILTER_RANKED else tuple(GROUP_TYPES)
        if value is None:
            raise self.fail(
                f"pruners.{name} ({cls}) has no group_type; Distiller requires it.",
                ["pruners", name],
                fix="add 'group_type: Filters' to remove output filters (or Channels for input channels).",
            )
        if value not in allowed:
            raise self.fail(
                f"pruners.{name}: group_type {value!r} is not one {cls} prunes ({', '.join(allowed)}).",
                path,
                fix="use Filters (or 3D) to remove output filters, Channels (or Rows) to remove input channels"
                + (", Blocks for block sparsity." if base in LP_RANKED else "."),
            )
        return GROUP_TYPES[value]

    def block_volume(self, name: str, config: dict[str, Any]) -> int:
        shape = (config.get("kwargs") or {}).get("block_shape") if isinstance(config.get("kwargs"), dict) else None
        path = ["pruners", name, "kwargs"]
        if (
            not isinstance(shape, list)
            or len(shape) != 4
            or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in shape)
            or shape[2:] != [1, 1]
        ):
            raise self.fail(
                f"pruners.{name}: group_type Blocks needs kwargs.block_shape = [repetitions, depth, 1, 1]; it is "
                f"{shape!r} (Distiller's rank_and_prune_blocks supports only height = width = 1).",
                path,
                fix="write 'kwargs: {block_shape: [1, 8, 1, 1]}'.",
            )
        return shape[0] * shape[1]

    def agp_pair(self, name: str, config: dict[str, Any]) -> tuple[float, float]:
        final = self.sparsity(name, config, "final_sparsity")
        initial = self.sparsity(name, config, "initial_sparsity")
        if not final > initial:
            raise self.fail(
                f"pruners.{name}: final_sparsity {final} must be greater than initial_sparsity {initial} "
                "(Distiller's AgpPruningRate asserts final_sparsity > initial_sparsity).",
                ["pruners", name, "final_sparsity"],
                fix="for a one-shot sparsity use SparsityLevelParameterPruner with 'levels', or start the ramp lower.",
            )
        return initial, final

    def sparsity(self, pruner: str, config: dict[str, Any], key: str, path: Sequence[Any] = ()) -> float:
        path = list(path) or ["pruners", pruner, key]
        label = ".".join(str(part) for part in path)
        if key not in config:
            hint = " (or use the class's _AGP variant with initial_sparsity and final_sparsity)"
            raise self.fail(
                f"pruners.{pruner} has no {key}.",
                path[:2],
                fix=f"add '{key}: <share removed>'" + (hint if key == "desired_sparsity" else "") + ".",
            )
        value = config[key]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
            raise self.fail(f"{label} = {value!r} is not a number.", path, fix="use a sparsity in [0, 1).")
        if not 0.0 <= value < 1.0:
            raise self.fail(
                f"{label} = {value} is outside [0, 1).",
                path,
                fix="use a sparsity in [0, 1): the share of weights or channels removed.",
            )
        return float(value)

    def weights(self, pruner: str, config: dict[str, Any]) -> list[tuple[str, str, tuple[Any, ...]]]:
        weights = config.get("weights")
        path: tuple[Any, ...] = ("pruners", pruner, "weights")
        items = [weights] if isinstance(weights, str) else weights
        if not isinstance(items, list) or not items or not all(isinstance(w, str) for w in items):
            raise self.fail(
                f"pruners.{pruner}.weights must be a parameter name or a list of them.",
                path if "weights" in config else path[:2],
                fix="list the weights, e.g. 'weights: [module.layer1.0.conv1.weight]'.",
            )
        out = []
        for index, weight in enumerate(items):
            where = path if isinstance(weights, str) else (*path, index)
            out.append((weight, self.layer_of(pruner, weight, where), where))
        return out

    def levels_pruner(self, name: str, cls: str, levels: Any, path: list[Any]) -> _Pruner:
        if not isinstance(levels, dict) or not levels:
            raise self.fail(
                f"pruners.{name}.levels must map weights to sparsities.",
                path,
                fix="write 'levels: {module.layer1.0.conv1.weight: 0.5}'.",
            )
        pruner = _Pruner(name, cls, ELEMENTS, [])
        default = None
        for weight in levels:
            where = (*path, str(weight))
            sparsity = self.sparsity(name, levels, weight, path=where)
            if weight == "*":
                default = sparsity
                continue
            layer = self.layer_of(name, str(weight), where)
            pruner.levels[layer] = (str(weight), sparsity, where)
        if default:
            self.note(
                f"{self.source}: pruners.{name} gives every other parameter sparsity {default:g} ('*'); amc applies it "
                "to the conv/linear weights it lists, while Distiller also masks biases and BatchNorm parameters."
            )
            for layer in self.layers:
                pruner.levels.setdefault(layer, (f"{layer}.weight", default, (*path, "*")))
        pruner.weights = [(weight, layer, where) for layer, (weight, _, where) in pruner.levels.items()]
        return pruner

    def layer_of(self, pruner: str, weight: str, path: Sequence[Any]) -> str:
        """The layer a parameter name belongs to; DataParallel's `module.` may appear anywhere in the name."""
        name = weight.removesuffix(".weight")
        if name not in self.layers:
            stripped = ".".join(part for part in name.split(".") if part != "module")
            name = stripped if stripped in self.layers else ""
        if not weight.endswith(".weight") or not name:
            raise self.fail(
                f"pruners.{pruner}.weights: {weight!r} is not the weight of a conv/linear layer of "
                f"{self.table.model_name}.",
                path,
                fix=f"use names from `amc inspect {self.table.model_name}` ending in '.weight' (with or without "
                "DataParallel's 'module.', e.g. module.layer1.0.conv1.weight or features.module.0.weight).",
            )
        return name

    def thinner(self, name: str, config: Any) -> _Thinner:
        path: list[Any] = ["extensions", name]
        cls = config.get("class") if isinstance(config, dict) else None
        if cls not in THINNING_CLASSES:
            self.note(
                f"{self.source}: extension {name} ({cls}) is not a Distiller thinning extension "
                f"({', '.join(THINNING_CLASSES)}); amc ignores it."
            )
            return _Thinner(name, str(cls), "")
        function = config.get("thinning_func_str")
        if function not in THINNING_FUNCTIONS:
            raise self.fail(
                f"extensions.{name}: thinning_func_str {function!r} is not one of Distiller's thinning functions.",
                [*path, "thinning_func_str"],
                fix=f"use one of {', '.join(THINNING_FUNCTIONS)} (remove_filters for filter pruning).",
            )
        return _Thinner(name, str(cls), str(function))

    # -------------------------------------------------------------------- the timeline

    def simulate(
        self, policies: list[_Policy], pruners: Mapping[str, _Pruner], thinners: Mapping[str, _Thinner]
    ) -> list[Step]:
        firings: dict[int, list[_Policy]] = {}
        for policy in policies:
            if policy.kind in ("pruner", "extension"):
                for epoch in policy.epochs:
                    firings.setdefault(epoch, []).append(policy)
        kept = {group.index: group.channels for group in self.table.groups}
        masks: dict[str, Mask] = {}
        steps: list[Step] = []
        for epoch in sorted(firings):
            specs = self.table.specs(kept)
            claims: dict[Any, tuple[Any, str, str]] = {}
            actions: list[Action] = []
            for policy in firings[epoch]:
                if policy.kind == "extension":
                    thinner = thinners[policy.name]
                    if thinner.function:
                        actions.append(self.thin(thinner, kept, masks))
                        specs = self.table.specs(kept)
                    continue
                pruner = pruners[policy.name]
                actions.append(self.fire(pruner, policy, epoch, specs, kept, masks, claims))
            steps.append(Step(epoch, tuple(actions), dict(kept), dict(masks)))
        self.finish(steps, kept, masks)
        return steps

    def fire(
        self,
        pruner: _Pruner,
        policy: _Policy,
        epoch: int,
        specs: list[LayerSpec],
        kept: dict[int, int],
        masks: dict[str, Mask],
        claims: dict[Any, tuple[Any, str, str]],
    ) -> Action:
        discard = policy.args.get("discard_masks_at_minibatch_end") is True
        if pruner.kind == "mask-only" or discard:
            return self.mask_only(pruner, discard)
        if "levels" in policy.args and pruner.cls == "SparsityLevelParameterPruner":
            pruner = self.levels_pruner(
                pruner.name, pruner.cls, policy.args["levels"], ["policies", policy.index, "pruner", "args", "levels"]
            )
        sparsity = pruner.desired
        if pruner.agp and policy.synthetic:
            sparsity = pruner.final
        elif pruner.agp:
            if policy.frequency is None:
                raise self.fail(
                    f"policies[{policy.index}] schedules the AGP pruner {pruner.name} with 'epochs'; Distiller's "
                    "AgpPruningRate.step needs the policy's frequency, which an epoch list leaves as None.",
                    ["policies", policy.index, "epochs"],
                    fix="give the policy starting_epoch, ending_epoch and frequency instead of epochs.",
                )
            if ((policy.end - policy.start - 1) // policy.frequency) * policy.frequency <= 0:
                raise self.fail(
                    f"policies[{policy.index}] ({pruner.name}): starting_epoch {policy.start}, ending_epoch "
                    f"{policy.end}, frequency {policy.frequency} leave AGP no span (((ending - starting - 1) // "
                    "frequency) * frequency must be > 0; Distiller's AgpPruningRate.step asserts it).",
                    ["policies", policy.index, "ending_epoch"],
                    fix="let the policy fire at least twice, e.g. ending_epoch = starting_epoch + 2 * frequency.",
                )
            assert pruner.initial is not None and pruner.final is not None
            sparsity = agp_sparsity(pruner.initial, pruner.final, epoch, policy.start, policy.end, policy.frequency)
        if pruner.kind == ELEMENTS:
            for weight, layer, path in pruner.weights:
                value = pruner.levels[layer][1] if pruner.levels else sparsity
                assert value is not None
                self.claim(claims, ("elements", layer), value, weight, pruner.name, path, layer)
                if value > 0:
                    masks[layer] = Mask(ELEMENTS, pruner.name, epoch, sparsity=value)
            if pruner.levels:  # a sparsity per layer: the layer table lists them
                return Action(pruner.name, pruner.cls, "element-wise levels")
            return Action(pruner.name, pruner.cls, f"element-wise {sparsity:.4g}", sparsity)
        assert sparsity is not None
        counts = []
        for weight, layer, path in pruner.weights:
            counts.append(self.structure(pruner, weight, layer, path, sparsity, epoch, specs, kept, masks, claims))
        what = {FILTERS: "filters", CHANNELS: "channels", BLOCKS: "blocks"}[pruner.kind]
        removed = sorted(set(counts))
        count_text = f" ({'/'.join(map(str, removed))} masked per layer)" if pruner.kind != BLOCKS else ""
        return Action(pruner.name, pruner.cls, f"{what} {sparsity:.4g}{count_text}", sparsity)

    def mask_only(self, pruner: _Pruner, discard: bool) -> Action:
        if discard:
            self.note(
                f"{self.source}: pruners.{pruner.name} ({pruner.cls}) runs with discard_masks_at_minibatch_end: True, "
                "so Distiller drops its masks after every mini-batch (DropFilter-style training-time regularization): "
                "nothing is removed or left zero, and amc reports those layers dense."
            )
        else:
            self.note(
                f"{self.source}: pruners.{pruner.name} ({pruner.cls}) masks randomly chosen structures while training "
                "(DropFilter-style regularization); without discard_masks_at_minibatch_end the last random mask stays "
                "on the weights, which no schedule can say in advance, so amc reports those layers dense."
            )
        return Action(pruner.name, pruner.cls, "mask-only (training-time regularization, nothing removed)")

    def claim(
        self,
        claims: dict[Any, tuple[Any, str, str]],
        key: Any,
        value: Any,
        weight: str,
        pruner: str,
        path: Sequence[Any],
        layer: str,
    ) -> None:
        """Two pruners setting different masks on the same weights (or coupled channels) in one epoch: refused."""
        previous = claims.get(key)
        if previous is None or previous[0] == value or previous[2] == pruner:
            claims[key] = (value, weight, pruner)
            return
        if key[0] == "elements":
            raise self.fail(
                f"layer {layer} gets element-wise sparsity {previous[0]:g} from pruner {previous[2]} and {value:g} "
                f"from pruner {pruner} at the same epoch.",
                path,
                fix="give each weight to one pruner per epoch.",
            )
        group = self.table.groups[key[1]]
        raise self.fail(
            f"pruners.{pruner}: {weight} shares its channels with {previous[1]} (coupling group {group.index}: "
            f"{'+'.join(group.kinds)}), which keeps {previous[0]} channels, not {value}.",
            path,
            fix="give coupled layers the same sparsity.",
        )

    def structure(
        self,
        pruner: _Pruner,
        weight: str,
        name: str,
        path: Sequence[Any],
        sparsity: float,
        epoch: int,
        specs: list[LayerSpec],
        kept: dict[int, int],
        masks: dict[str, Mask],
        claims: dict[Any, tuple[Any, str, str]],
    ) -> int:
        """Mask `floor(sparsity * n)` filters or channels of one weight (n: as many as it has now)."""
        layer = self.layers[name]
        spec = specs[layer.index]
        linear = spec.op == "linear"
        if pruner.kind == BLOCKS:
            volume = spec.weight_count
            if linear or volume % pruner.block:
                raise self.fail(
                    f"pruners.{pruner.name}: {weight} ({spec.op}, {volume} weights) cannot be split into blocks of "
                    f"{pruner.block} (Distiller's rank_and_prune_blocks needs a conv whose weight divides exactly).",
                    path,
                    fix="prune this layer with another group_type or leave it out.",
                )
            if sparsity > 0:
                masks[name] = Mask(BLOCKS, pruner.name, epoch, sparsity=sparsity, block=pruner.block)
            return 0
        if pruner.kind == FILTERS:
            if linear:
                raise self.fail(
                    f"pruners.{pruner.name}: {weight} is a linear layer's weight; Distiller ranks Filters/3D of 4-D "
                    "(conv) weights only (rank_and_prune_filters asserts it).",
                    path,
                    fix="use group_type Rows or Channels, which mask a linear layer's input columns.",
                )
            group_index = layer.out_group
            count = math.floor(sparsity * spec.out_channels)
            if count >= spec.out_channels:
                count = spec.out_channels - 1  # Distiller never removes every filter (num_structs_to_prune)
            if group_index is not None:
                count = self.check_group(pruner.name, weight, path, group_index, kept, count, claims)
        else:
            inputs = spec.in_channels // spec.groups
            count = min(math.floor(sparsity * inputs), inputs - 1)
            group_index = self.feeding_group(pruner.name, weight, name, path, linear)
            if group_index is not None and not linear:
                count = self.check_group(pruner.name, weight, path, group_index, kept, count, claims)
            elif group_index is not None:  # columns of a linear layer: removable only as whole, free channels
                group = self.table.groups[group_index]
                if not group.prunable or (kept[group_index] - count) % group.divisor:
                    group_index = None
        if count > 0:  # Distiller sets no new mask when the fraction prunes nothing
            masks[name] = Mask(pruner.kind, pruner.name, epoch, sparsity=sparsity, count=count, group=group_index)
        return count

    def check_group(
        self,
        pruner: str,
        weight: str,
        path: Sequence[Any],
        index: int,
        kept: dict[int, int],
        count: int,
        claims: dict[Any, tuple[Any, str, str]],
    ) -> int:
        group = self.table.groups[index]
        if not group.prunable:
            if count == 0:
                return 0
            raise self.fail(
                f"pruners.{pruner}: the channels of {weight} cannot be removed: {group.reason}.",
                path,
                fix="leave this layer out of structured pruning.",
            )
        left = kept[index] - count
        if left % group.divisor:
            raise self.fail(
                f"pruners.{pruner}: {weight} would keep {left} of {kept[index]} channels, but its group must keep a "
                f"multiple of {group.divisor} (grouped convolution).",
                path,
                fix="choose a sparsity that leaves a multiple of the conv's group count.",
            )
        self.claim(claims, ("group", index), left, weight, pruner, path, group.leader)
        return count

    def feeding_group(self, pruner: str, weight: str, name: str, path: Sequence[Any], linear: bool) -> int | None:
        """The one group whose channels a Channels/Rows mask on `name` removes (None: a linear layer's columns
        that are not whole channels of one group, which stay masked)."""
        layer = self.layers[name]
        sources = layer.in_sources
        if len(sources) == 1 and not layer.in_fixed and (not linear or sources[0][1] == 1):
            return sources[0][0]
        if linear:
            return None
        raise self.fail(
            f"pruners.{pruner}: layer {name} reads {len(sources)} pruned groups"
            f"{' and fixed channels' if layer.in_fixed else ''}, so which channels its 'Channels' pruning removes "
            "is ambiguous.",
            path,
            fix="prune the Filters of the layers that produce its input instead.",
        )

    def thin(self, thinner: _Thinner, kept: dict[int, int], masks: dict[str, Mask]) -> Action:
        """A thinning step: remove the structures whose masks it handles, in every layer they span."""
        kinds = THINNING_FUNCTIONS[thinner.function]
        self.thinned = True
        removals = self.removals(masks, kinds)
        for index, (count, layers) in removals.items():
            kept[index] -= count
            for layer in layers:
                del masks[layer]
        removed = sum(count for count, _ in removals.values())
        return Action(thinner.name, thinner.cls, f"thinning {thinner.function}: {removed} channels removed")

    def removals(self, masks: Mapping[str, Mask], kinds: Iterable[str]) -> dict[int, tuple[int, list[str]]]:
        removals: dict[int, tuple[int, list[str]]] = {}
        for layer, mask in masks.items():
            if mask.kind not in kinds or mask.group is None or not mask.count:
                continue
            count, layers = removals.get(mask.group, (mask.count, []))
            if count != mask.count:
                group = self.table.groups[mask.group]
                raise UserError(
                    f"{self.source}: at thinning, the layers of coupling group {group.index} ({group.leader}: "
                    f"{'+'.join(group.kinds)}) have {count} and {mask.count} masked channels (pruners "
                    f"{masks[layers[0]].pruner} and {mask.pruner}), so no consistent thinning exists.",
                    fix="prune coupled layers with one pruner (group_dependency: Leader) or the same sparsity.",
                )
            removals[mask.group] = (count, [*layers, layer])
        return removals

    def finish(self, steps: list[Step], kept: dict[int, int], masks: dict[str, Mask]) -> None:
        """Masked structures left at the end: removed when the schedule never thins (with a note), else kept as
        zeros (weight density, with a note)."""
        pending = {layer: mask for layer, mask in masks.items() if mask.kind in (FILTERS, CHANNELS)}
        if not pending or not steps:
            return
        pruners = sorted({mask.pruner for mask in pending.values()})
        if not self.thinned:
            removals = self.removals(pending, (FILTERS, CHANNELS))
            for index, (count, layers) in removals.items():
                kept[index] -= count
                for layer in layers:
                    del masks[layer]
            stay = sorted(layer for layer in pending if layer in masks)
            self.note(
                f"{self.source} has no thinning extension, so Distiller would leave the structures masked by "
                f"{', '.join(pruners)} zeroed in place (same dense size); amc removes them, as a thinning step "
                "(FilterRemover/ChannelRemover with remove_filters/remove_channels) at the end would"
                + (f", except the masked input columns of {', '.join(stay)}, counted as weight density" if stay else "")
                + ". Add such an extension and its policy to make Distiller remove them too."
            )
            last = steps[-1]
            removed = sum(count for count, _ in removals.values())
            action = Action("(amc)", "", f"removes the {removed} masked channels (the schedule never thins)")
            steps[-1] = Step(last.epoch, (*last.actions, action), dict(kept), dict(masks))
            return
        self.note(
            f"{self.source}: the structures masked by {', '.join(pruners)} (layers {', '.join(sorted(pending))}) are "
            "not removed by any later thinning step, so Distiller leaves them zeroed in place; amc counts them as "
            "weight density, not removed channels."
        )

    # -------------------------------------------------------------------- result

    def result(self, steps: list[Step]) -> Schedule:
        final = steps[-1] if steps else Step(0, ())
        kept = {
            index: count
            for index, count in final.kept.items()
            if count != self.table.groups[index].channels and self.table.groups[index].prunable
        }
        strategy = None
        if kept:
            meta = StrategyMetadata(
                model=self.table.model_name, input_size=self.table.input_size, notes=f"imported from {self.source}"
            )
            strategy = Strategy.from_kept_channels(self.table, kept, round_to=1, metadata=meta)
        densities = None
        if final.masks:
            specs = self.table.specs(final.kept)
            values = {name: mask.density(specs[self.layers[name].index]) for name, mask in final.masks.items()}
            densities = LayerDensities(values, self.table.model_name)
        return Schedule(strategy, densities, tuple(self.notes), tuple(steps), bits=self.bits)
