"""One factory for the pruning problem: from a config (the CLI) or from the Python API's own objects.

`problem_from_objects` takes a ready model and scorer; `build_task(config)` first loads the configured data and
base model (trained and cached on demand) and builds the search-val scorer. Both name the problem class by
`search.granularity` and bind the cost model to the network it prices. `build_task` then moves the base model and
the scorer's images to experiment.device, once for the whole search (the cost model is built on the CPU model
first: a measured LUT prices CPU deployment).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from amc.config import ExperimentConfig, resolve_round_to
from amc.costs.registry import bound_to, make_cost_model
from amc.data import DataBundle
from amc.device import check_compute, resolve_device, to_device
from amc.errors import UserError
from amc.graph import LayerTable, build_layer_table
from amc.models.layout import use_fast_layout_
from amc.problem.base import PruningProblem, Settings
from amc.problem.bits import BitsProblem
from amc.problem.channel import ChannelProblem
from amc.problem.density import DensityProblem
from amc.problem.joint import JointProblem
from amc.problem.scoring import Scorer, SearchValScorer
from amc.pruning import StrategyMetadata
from amc.pruning.granularity import NM, MaskPattern
from amc.pruning.selection import check_selection
from amc.training.base_model import load_base_model, load_data
from hwmodel import CostModel

PROBLEMS: dict[str, type[PruningProblem]] = {
    "channel": ChannelProblem,
    "element": DensityProblem,
    "bits": BitsProblem,
    "joint": JointProblem,
    "vector": DensityProblem,
    "kernel": DensityProblem,
    "filter": DensityProblem,
    "nm": DensityProblem,
}
"""The problem each `search.granularity` names (a DensityProblem masks in the granularity's groups)."""


@dataclass(frozen=True)
class Task:
    """A configured problem: the settings it came from, the problem, and the configured data (None when the
    caller brought their own scoring through the Python API)."""

    config: ExperimentConfig
    problem: PruningProblem
    data: DataBundle | None = None

    @property
    def input_size(self) -> tuple[int, int, int]:
        return self.problem.table.input_size

    @property
    def dataset(self) -> str:
        return self.problem.metadata.dataset


def settings_of(config: ExperimentConfig) -> Settings:
    search = config.search
    low, high = search.bits_range
    return Settings(
        search.lbound, search.rbound, resolve_round_to(config), search.reward, search.selection, (low, high)
    )


def problem_from_objects(
    config: ExperimentConfig,
    model: nn.Module,
    input_size: Sequence[int],
    scorer: Scorer,
    cost_model: CostModel | None = None,
    dataset: str = "",
    progress: bool = True,
    log: Callable[[str], None] = print,
    table: LayerTable | None = None,
) -> PruningProblem:
    """The problem `config.search.granularity` names on a ready model and scorer; `cost_model` defaults to the
    one `config.cost.model` names; `table` to the model's own layer table (a detector's view passes one that
    prunes its backbone only)."""
    granularity = config.search.granularity
    if granularity not in PROBLEMS:
        raise UserError(f"search.granularity {granularity!r} is not known.", fix=f"use one of {', '.join(PROBLEMS)}.")
    size = (int(input_size[0]), int(input_size[1]), int(input_size[2]))
    model = model.eval()
    table = table if table is not None else build_layer_table(model, size, config.model.name)
    check_selection(config.search.selection, model, table)
    if cost_model is None:
        cost_model = make_cost_model(config, model, table, progress=progress, log=log)
    cost_model = bound_to(cost_model, table)
    metadata = StrategyMetadata(
        model=config.model.name, dataset=dataset, input_size=size, cost_model=cost_model.name,
        selection=config.search.selection,
    )  # fmt: skip
    args = (model, table, scorer, cost_model, settings_of(config), metadata, config.budget.value, config.budget.ratio)
    if PROBLEMS[granularity] is DensityProblem:
        return DensityProblem(*args, pattern=MaskPattern(granularity, NM(*config.search.nm)))
    return PROBLEMS[granularity](*args)


def build_task(config: ExperimentConfig, progress: bool = True, log: Callable[[str], None] = print) -> Task:
    """The configured data, base model (trained and cached on demand) and search-val scorer, as a task on
    experiment.device (the task's config names the device resolved: cuda -> cuda:0, auto -> what it found)."""
    config = check_compute(config)
    experiment = config.experiment
    device = resolve_device(experiment.device)
    torch.set_num_threads(experiment.threads)
    bundle = load_data(config)
    model = use_fast_layout_(load_base_model(config, bundle, progress=progress, log=log))
    search = config.search
    scorer = SearchValScorer.from_datasets(
        bundle.train, bundle.search_val, search.eval_images, search.bn_images, search.adaptive_bn,
        config.data.batch_size, experiment.seed, device, experiment.amp,
    )  # fmt: skip
    problem = problem_from_objects(config, model, bundle.input_size, scorer, None, bundle.name, progress, log)
    to_device(problem.model, device, experiment.channels_last)
    return Task(config, problem, bundle)
