"""A tiny pruning problem for env, problem and agent tests: the 4-layer model, a stub scorer, MACs as the cost."""

from __future__ import annotations

from typing import Any

import torch

from amc.graph import build_layer_table
from amc.models import create_model
from amc.problem import ChannelProblem, DensityProblem, PruningProblem, Settings
from hwmodel import create_cost_model


class StubScorer:
    """Deterministic stand-in for search-val accuracy: more kept weight magnitude scores higher."""

    bn_batches: list[torch.Tensor] = []
    adaptive_bn = False

    def __call__(self, model: torch.nn.Module) -> float:
        total = sum(p.abs().sum().item() for p in model.parameters())
        return total / (total + 100.0)


def tiny_problem(
    granularity: str = "channel", cost_model: str | None = None, budget_ratio: float | None = 0.5,
    budget_value: float | None = None, **settings: Any,
) -> PruningProblem:  # fmt: skip
    """The tiny model's problem; `settings` override Settings fields (round_to 4 by default)."""
    torch.manual_seed(0)
    model = create_model("tiny").eval()
    table = build_layer_table(model, (3, 16, 16), "tiny")
    kind = ChannelProblem if granularity == "channel" else DensityProblem
    costs = create_cost_model(cost_model or ("macs" if granularity == "channel" else "sparse:macs"))
    return kind(
        model, table, StubScorer(), costs, Settings(**{"round_to": 4, **settings}), None, budget_value, budget_ratio
    )
