"""Distiller schedule YAML: export a strategy (and densities) for Distiller, import Distiller schedules.

Export. Channels removed become `L1RankedStructureParameterPruner` instances (`group_type: Filters`,
`desired_sparsity` = 1 - kept/channels): one per coupled group with `group_dependency: Leader` (the layers
sharing channels through a residual add rank together), and one per distinct sparsity for the lone layers;
then a `FilterRemover` thinning extension; every policy at epoch 0. Densities become `AutomatedGradualPruner`s
whose initial and final sparsity are equal (one-shot). Parameter names carry the `module.` prefix Distiller's
DataParallel models have.

Import. Filters / Rows pruners (any ranked-structure or filter-ranking pruner class, `desired_sparsity` or,
for the AGP variants, `final_sparsity`) remove that share of a layer's output channels, `Channels` pruners
of its input channels (i.e. of the one group that feeds it). Distiller removes int(sparsity * channels)
structures; we do the same (with a 1e-6 tolerance so an exported 0.375 of 16 channels reads back as 6).
Rows of the classifier cannot be removed (they are the classes), so Distiller only masks them; so do we, as a
density. `AutomatedGradualPruner` (`final_sparsity`) and `SparsityLevelParameterPruner` (`levels`) give
densities. Only pruners named in `policies` count (all of them when there are no policies). Names are taken
with or without the `module.` prefix. Errors name the key and the line.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import yaml

from amc.errors import UserError
from amc.graph import LayerTable
from amc.pruning.finegrained import LayerDensities
from amc.pruning.strategy import Strategy, StrategyMetadata
from amc.schedule.schedule import Schedule

STRUCTURED_CLASS = "L1RankedStructureParameterPruner"
ELEMENTWISE_CLASS = "AutomatedGradualPruner"
LEVELS_CLASS = "SparsityLevelParameterPruner"
STRUCTURED_GROUP_TYPES = ("Filters", "Rows", "Channels")


# ------------------------------------------------------------------------------------------------ export


def strategy_to_distiller(strategy: Strategy, prefix: str = "module.") -> dict[str, Any]:
    """The Distiller schedule (as a dict) that removes the channels `strategy` removes."""
    return _schedule_dict(Schedule(strategy=strategy), prefix)


def strategy_to_distiller_yaml(strategy: Strategy, prefix: str = "module.") -> str:
    return schedule_to_distiller_yaml(Schedule(strategy=strategy), prefix)


def schedule_to_distiller_yaml(schedule: Schedule, prefix: str = "module.") -> str:
    return _header(schedule) + yaml.safe_dump(_schedule_dict(schedule, prefix), sort_keys=False, width=100)


def _header(schedule: Schedule) -> str:
    lines = ["# Pruning schedule written by amc (Distiller format)."]
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
        lines.append("# desired_sparsity = share of output channels (filters) removed; thinning at epoch 0.")
    return "\n".join(lines) + "\n"


def _schedule_dict(schedule: Schedule, prefix: str) -> dict[str, Any]:
    pruners: dict[str, Any] = {}
    policies: list[dict[str, Any]] = []
    if schedule.strategy:
        for name, pruner in _structured_pruners(schedule.strategy, prefix):
            pruners[name] = pruner
            policies.append({"pruner": {"instance_name": name}, "epochs": [0]})
    if schedule.densities:
        by_sparsity: dict[float, list[str]] = {}
        for layer, density in schedule.densities.densities.items():
            by_sparsity.setdefault(round(1.0 - density, 6), []).append(f"{prefix}{layer}.weight")
        for index, (sparsity, weights) in enumerate(sorted(by_sparsity.items(), reverse=True)):
            name = f"fine_pruner_{index}"
            pruners[name] = {
                "class": ELEMENTWISE_CLASS,
                "initial_sparsity": sparsity,
                "final_sparsity": sparsity,
                "weights": weights,
            }
            policies.append({"pruner": {"instance_name": name}, "starting_epoch": 0, "ending_epoch": 1, "frequency": 1})
    data: dict[str, Any] = {"version": 1, "pruners": pruners}
    if schedule.strategy and any(layer.kept < layer.channels for layer in schedule.strategy.layers):
        meta = schedule.strategy.metadata
        data["extensions"] = {
            "net_thinner": {
                "class": "FilterRemover",
                "thinning_func_str": "remove_filters",
                "arch": meta.model,
                "dataset": meta.dataset,
            }
        }
        policies.append({"extension": {"instance_name": "net_thinner"}, "epochs": [0]})
    data["policies"] = policies
    return data


def _structured_pruners(strategy: Strategy, prefix: str) -> Iterable[tuple[str, dict[str, Any]]]:
    groups: dict[int, list[str]] = {}
    sparsity: dict[int, float] = {}
    for layer in strategy.layers:
        if layer.kept < layer.channels:
            groups.setdefault(layer.group, []).append(f"{prefix}{layer.name}.weight")
            sparsity[layer.group] = layer.sparsity
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
            {
                "class": STRUCTURED_CLASS,
                "group_type": "Filters",
                "desired_sparsity": value,
                "weights": weights,
            },
        )


# ------------------------------------------------------------------------------------------------ import


class _Reader:
    """Parses one schedule text against a layer table; every error names the key and its line."""

    def __init__(self, text: str, table: LayerTable, source: str) -> None:
        self.text, self.table, self.source = text, table, source
        self.lines = text.splitlines()
        self.layers = {layer.name: layer for layer in table.layers}
        self.kept: dict[int, tuple[int, str]] = {}
        self.densities: dict[str, tuple[float, str]] = {}
        self.structured = False

    def fail(self, problem: str, *needles: str, fix: str = "") -> UserError:
        line = self.line_of(*needles)
        where = f" (line {line})" if line else ""
        return UserError(f"{self.source}{where}: {problem}", fix=fix or "correct the schedule.")

    def line_of(self, *needles: str) -> int | None:
        """1-based line of the last needle, searching each needle after the previous one's line."""
        start, found = 0, None
        for needle in needles:
            for number in range(start, len(self.lines)):
                if needle in self.lines[number].split("#", 1)[0]:
                    start, found = number, number + 1
                    break
        return found

    # -------------------------------------------------------------------- structure

    def parse(self) -> Schedule:
        try:
            data = yaml.safe_load(self.text)
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
                f"{self.source} is not a Distiller schedule (a mapping with 'pruners').",
                fix="see Distiller's examples/ schedules or `amc schedule` output.",
            )
        version = data.get("version", 1)
        if version != 1:
            raise self.fail(f"key 'version' is {version!r}; Distiller schedules are version 1.", "version")
        pruners = data.get("pruners")
        if not isinstance(pruners, dict) or not pruners:
            raise self.fail("key 'pruners' must map pruner names to their settings.", "pruners")
        for name in self.active_pruners(data, pruners):
            self.pruner(name, pruners[name])
        return self.result()

    def active_pruners(self, data: dict[str, Any], pruners: dict[str, Any]) -> list[str]:
        policies = data.get("policies")
        if policies is None:
            return list(pruners)
        if not isinstance(policies, list):
            raise self.fail("key 'policies' must be a list.", "policies")
        active = []
        for policy in policies:
            if not isinstance(policy, dict):
                raise self.fail("every entry of 'policies' must be a mapping.", "policies")
            pruner = policy.get("pruner")
            if pruner is None:
                continue
            name = pruner.get("instance_name") if isinstance(pruner, dict) else None
            if name not in pruners:
                raise self.fail(
                    f"policies: pruner instance_name {name!r} is not defined under 'pruners'.",
                    "policies",
                    str(name),
                    fix=f"use one of {', '.join(map(str, pruners))}.",
                )
            if name not in active:
                active.append(name)
        return active

    def pruner(self, name: str, config: Any) -> None:
        if not isinstance(config, dict):
            raise self.fail(f"pruners.{name} must be a mapping with class and weights.", "pruners", f"{name}:")
        cls = config.get("class")
        if not isinstance(cls, str):
            raise self.fail(f"pruners.{name} has no 'class'.", "pruners", f"{name}:")
        if cls == ELEMENTWISE_CLASS:
            sparsity = self.sparsity(name, config, "final_sparsity")
            for weight in self.weights(name, config):
                self.add_density(name, weight, sparsity)
        elif cls == LEVELS_CLASS:
            levels = config.get("levels")
            if not isinstance(levels, dict):
                raise self.fail(f"pruners.{name}.levels must map weights to sparsities.", f"{name}:", "levels")
            for weight in levels:
                self.add_density(name, str(weight), self.sparsity(name, levels, str(weight), key_label="levels"))
        elif "Structure" in cls or "Filter" in cls or "Channel" in cls:
            self.add_structured(name, config, cls)
        else:
            raise self.fail(
                f"pruners.{name}: class {cls!r} is not supported.",
                f"{name}:",
                "class",
                fix=f"use {STRUCTURED_CLASS} (or another ranked-structure pruner), {ELEMENTWISE_CLASS} or "
                f"{LEVELS_CLASS}.",
            )

    def sparsity(self, pruner: str, config: dict[str, Any], *keys: str, key_label: str = "") -> float:
        for key in keys:
            if key in config:
                value = config[key]
                label = f"pruners.{pruner}.{key_label + '.' if key_label else ''}{key}"
                if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
                    raise self.fail(f"{label} = {value!r} is not a number.", f"{pruner}:", key)
                if not 0.0 <= value < 1.0:
                    raise self.fail(
                        f"{label} = {value} is outside [0, 1).",
                        f"{pruner}:",
                        key,
                        fix="use a sparsity in [0, 1): the share of weights or channels removed.",
                    )
                return float(value)
        raise self.fail(f"pruners.{pruner} has no {' or '.join(keys)}.", f"{pruner}:")

    def weights(self, pruner: str, config: dict[str, Any]) -> list[str]:
        weights = config.get("weights")
        if isinstance(weights, str):
            weights = [weights]
        if not isinstance(weights, list) or not weights or not all(isinstance(w, str) for w in weights):
            raise self.fail(
                f"pruners.{pruner}.weights must be a parameter name or a list of them.", f"{pruner}:", "weights"
            )
        return weights

    def layer_of(self, pruner: str, weight: str) -> str:
        name = weight[len("module.") :] if weight.startswith("module.") else weight
        name = name.removesuffix(".weight")
        if name not in self.layers:
            raise self.fail(
                f"pruners.{pruner}.weights: {weight!r} is not the weight of a conv/linear layer of "
                f"{self.table.model_name}.",
                f"{pruner}:",
                weight,
                fix=f"use names from `amc inspect {self.table.model_name}` (with or without 'module.', "
                "ending in '.weight').",
            )
        return name

    # -------------------------------------------------------------------- element-wise

    def add_density(self, pruner: str, weight: str, sparsity: float) -> None:
        name = self.layer_of(pruner, weight)
        previous = self.densities.get(name)
        if previous and not math.isclose(previous[0], 1.0 - sparsity):
            raise self.fail(
                f"layer {name} gets element-wise sparsity {1 - previous[0]:g} from pruner "
                f"{previous[1]} and {sparsity:g} from pruner {pruner}.",
                f"{pruner}:",
                weight,
            )
        self.densities[name] = (1.0 - sparsity, pruner)

    # -------------------------------------------------------------------- structured

    def add_structured(self, pruner: str, config: dict[str, Any], cls: str) -> None:
        group_type = config.get("group_type", "Filters")
        if group_type not in STRUCTURED_GROUP_TYPES:
            raise self.fail(
                f"pruners.{pruner}.group_type {group_type!r} cannot be thinned by amc.",
                f"{pruner}:",
                "group_type",
                fix=f"use one of {', '.join(STRUCTURED_GROUP_TYPES)} (or an element-wise pruner).",
            )
        sparsity = self.sparsity(pruner, config, "desired_sparsity", "final_sparsity")
        self.structured = True
        for weight in self.weights(pruner, config):
            name = self.layer_of(pruner, weight)
            layer = self.layers[name]
            if group_type == "Channels":
                index = self.feeding_group(pruner, weight, name)
            elif layer.out_group is None:
                self.add_density(pruner, weight, sparsity)  # classifier rows are classes: mask, never remove
                continue
            else:
                index = layer.out_group
            self.add_kept(pruner, weight, index, sparsity)

    def feeding_group(self, pruner: str, weight: str, name: str) -> int:
        sources = self.layers[name].in_sources
        if len(sources) != 1 or self.layers[name].in_fixed:
            raise self.fail(
                f"pruners.{pruner}: layer {name} reads {len(sources)} pruned groups"
                f"{' and fixed channels' if self.layers[name].in_fixed else ''}, so which channels its "
                "'Channels' pruning removes is ambiguous.",
                f"{pruner}:",
                weight,
                fix="prune the Filters of the layers that produce its input instead.",
            )
        return sources[0][0]

    def add_kept(self, pruner: str, weight: str, index: int, sparsity: float) -> None:
        group = self.table.groups[index]
        if not group.prunable:
            if sparsity == 0.0:
                return
            raise self.fail(
                f"pruners.{pruner}: the channels of {weight} cannot be removed: {group.reason}.",
                f"{pruner}:",
                weight,
                fix="leave this layer out of structured pruning.",
            )
        kept = group.channels - math.floor(sparsity * group.channels + 1e-6)
        if kept % group.divisor:
            raise self.fail(
                f"pruners.{pruner}: {weight} would keep {kept} of {group.channels} channels, but its group must "
                f"keep a multiple of {group.divisor} (grouped convolution).",
                f"{pruner}:",
                weight,
                fix="choose a sparsity that leaves a multiple of the conv's group count.",
            )
        previous = self.kept.get(index)
        if previous and previous[0] != kept:
            raise self.fail(
                f"pruners.{pruner}: {weight} shares its channels with {previous[1]} (coupling group {index}: "
                f"{'+'.join(group.kinds)}), which keeps {previous[0]} channels, not {kept}.",
                f"{pruner}:",
                weight,
                fix="give coupled layers the same sparsity.",
            )
        self.kept[index] = (kept, weight)

    def result(self) -> Schedule:
        strategy = None
        if self.structured:
            kept = {index: count for index, (count, _) in self.kept.items()}
            meta = StrategyMetadata(
                model=self.table.model_name, input_size=self.table.input_size, notes=f"imported from {self.source}"
            )
            strategy = Strategy.from_kept_channels(self.table, kept, round_to=1, metadata=meta)
        densities = None
        if self.densities:
            densities = LayerDensities(
                {name: value for name, (value, _) in self.densities.items()}, self.table.model_name
            )
        return Schedule(strategy, densities)


def parse_distiller(text: str, table: LayerTable, source: str = "schedule") -> Schedule:
    """The structured and element-wise parts of a Distiller schedule, checked against `table`."""
    return _Reader(text, table, source).parse()
