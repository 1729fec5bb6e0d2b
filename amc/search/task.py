"""Everything a search needs: the base model, its layer table, a cost model, an evaluator and the settings.

All search methods (AMC, NetAdapt and the baselines) consume the same `SearchTask`, so they are compared on
the same budget, priced by the same cost model and scored on the same images. `task_from_objects` builds one
from plain objects (the Python API's path: your model, your `evaluate(model) -> float`); `build_task(config)`
is the CLI's path and goes through it after loading the configured data and base model.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from amc.config import ExperimentConfig
from amc.data import DataBundle
from amc.experiment import load_base_model, load_data
from amc.graph import LayerTable, build_layer_table
from amc.pruning import StrategyMetadata, adaptive_bn_
from amc.search.costs import bound_to, make_cost_model
from amc.search.evaluator import SearchEvaluator
from hwmodel import CostModel


@dataclass
class CallbackEvaluator:
    """A user's `score(model) -> accuracy in [0, 1]`, with optional BN re-estimation on `bn_batches` first.

    Same interface as `SearchEvaluator` (`bn_batches` also feed least-squares channel selection)."""

    score: Callable[[nn.Module], float]
    bn_batches: list[Tensor]
    adaptive_bn: bool = True

    def __call__(self, model: nn.Module) -> float:
        if self.adaptive_bn and self.bn_batches:
            adaptive_bn_(model, self.bn_batches, num_images=sum(len(batch) for batch in self.bn_batches))
        model.eval()
        return float(self.score(model))


Evaluator = SearchEvaluator | CallbackEvaluator


@dataclass
class SearchTask:
    config: ExperimentConfig
    model: nn.Module
    table: LayerTable
    cost_model: CostModel
    evaluator: Evaluator
    input_size: tuple[int, int, int]
    dataset: str = ""
    bundle: DataBundle | None = None
    """The configured data (CLI path); None when the caller brought their own evaluation."""

    @property
    def metadata(self) -> StrategyMetadata:
        return StrategyMetadata(
            model=self.config.model.name,
            dataset=self.dataset,
            input_size=self.input_size,
            cost_model=self.cost_model.name,
            selection=self.config.search.selection,
        )

    def env_kwargs(self) -> dict:
        """Arguments of ChannelPruningEnv for this task."""
        search, budget = self.config.search, self.config.budget
        return {
            "model": self.model,
            "table": self.table,
            "evaluator": self.evaluator,
            "cost_model": self.cost_model,
            "budget": budget.value,
            "budget_ratio": budget.ratio,
            "lbound": search.lbound,
            "rbound": search.rbound,
            "round_to": search.round_to,
            "reward": search.reward,
            "selection": search.selection,
            "calibration": self.evaluator.bn_batches if search.selection == "lstsq" else None,
            "metadata": self.metadata,
            "granularity": search.granularity,
        }


def task_from_objects(
    config: ExperimentConfig,
    model: nn.Module,
    input_size: Sequence[int],
    evaluator: Evaluator,
    cost_model: CostModel | None = None,
    dataset: str = "",
    bundle: DataBundle | None = None,
    progress: bool = True,
    log: Callable[[str], None] = print,
) -> SearchTask:
    """A task on a ready model and evaluator; `cost_model` defaults to the one `config.cost.model` names."""
    size = (int(input_size[0]), int(input_size[1]), int(input_size[2]))
    model = model.eval()
    table = build_layer_table(model, size, config.model.name)
    if cost_model is None:
        cost_model = make_cost_model(config, model, table, progress=progress, log=log)
    cost_model = bound_to(cost_model, table)
    return SearchTask(config, model, table, cost_model, evaluator, size, dataset, bundle)


def build_task(config: ExperimentConfig, progress: bool = True, log: Callable[[str], None] = print) -> SearchTask:
    """The configured data, base model (trained and cached on demand) and search-val evaluator, as a task."""
    torch.set_num_threads(config.experiment.threads)
    bundle = load_data(config)
    model = load_base_model(config, bundle, progress=progress, log=log)
    search = config.search
    evaluator = SearchEvaluator.from_datasets(
        bundle.train, bundle.search_val, search.eval_images, search.bn_images, search.adaptive_bn,
        config.data.batch_size, config.experiment.seed,
    )  # fmt: skip
    return task_from_objects(config, model, bundle.input_size, evaluator, None, bundle.name, bundle, progress, log)
