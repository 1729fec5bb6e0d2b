"""Fixtures for env and search tests: the tiny model with a stub evaluator and the MACs cost model."""

from __future__ import annotations

import pytest
import torch

from amc.graph import build_layer_table
from amc.models import create_model
from hwmodel import create_cost_model


class StubEvaluator:
    """Deterministic stand-in for search-val accuracy: more kept weight magnitude scores higher."""

    def __call__(self, model: torch.nn.Module) -> float:
        total = sum(p.abs().sum().item() for p in model.parameters())
        return total / (total + 100.0)


@pytest.fixture
def tiny_env_kwargs() -> dict:
    torch.manual_seed(0)
    model = create_model("tiny").eval()
    table = build_layer_table(model, (3, 16, 16), "tiny")
    return {
        "model": model,
        "table": table,
        "evaluator": StubEvaluator(),
        "cost_model": create_cost_model("macs"),
        "budget_ratio": 0.5,
        "round_to": 4,
    }
