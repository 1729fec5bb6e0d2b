"""Everything a search needs, built once from a config: data, base model, layer table, cost model, evaluator.

All search methods (AMC, NetAdapt and the baselines) consume the same `SearchTask`, so they are compared on
the same budget, priced by the same cost model and scored on the same search-val images.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from amc.config import ExperimentConfig
from amc.data import DataBundle
from amc.experiment import load_base_model, load_data
from amc.graph import LayerTable, build_layer_table
from amc.pruning import StrategyMetadata
from amc.search.costs import make_cost_model
from amc.search.evaluator import SearchEvaluator
from hwmodel import CostModel


@dataclass
class SearchTask:
    config: ExperimentConfig
    bundle: DataBundle
    model: nn.Module
    table: LayerTable
    cost_model: CostModel
    evaluator: SearchEvaluator

    @property
    def metadata(self) -> StrategyMetadata:
        return StrategyMetadata(
            model=self.config.model.name,
            dataset=self.bundle.name,
            input_size=self.bundle.input_size,
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
        }


def build_task(config: ExperimentConfig, progress: bool = True, log: Callable[[str], None] = print) -> SearchTask:
    torch.set_num_threads(config.experiment.threads)
    bundle = load_data(config)
    model = load_base_model(config, bundle, progress=progress, log=log)
    table = build_layer_table(model, bundle.input_size, config.model.name)
    cost_model = make_cost_model(config, model, table, progress=progress, log=log)
    search = config.search
    evaluator = SearchEvaluator.from_datasets(
        bundle.train, bundle.search_val, search.eval_images, search.bn_images, search.adaptive_bn,
        config.data.batch_size, config.experiment.seed,
    )  # fmt: skip
    return SearchTask(config, bundle, model, table, cost_model, evaluator)
