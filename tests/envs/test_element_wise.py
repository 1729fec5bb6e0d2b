"""The env over the element-wise problem: one step per layer, weight density as the action, a sparse cost model."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from amc.problem import PruningProblem
from amc.pruning import LayerDensities
from envs import ChannelPruningEnv


def test_one_step_per_layer_and_budget_met(make_problem: Callable[..., PruningProblem]) -> None:
    problem = make_problem("element")
    env = ChannelPruningEnv(problem)
    assert len(problem.order) == len(problem.table.layers)
    rng = np.random.default_rng(0)
    for _ in range(3):
        env.reset(seed=0)
        for action in rng.uniform(-1, 1, size=len(problem.order)):
            _, _, terminated, _, info = env.step(np.array([action], dtype=np.float32))
        assert terminated
        outcome = info["outcome"]
        assert outcome.cost <= problem.budget.value + 1e-9
        assert isinstance(outcome.result, LayerDensities)
        assert all(0.2 - 1e-9 <= d < 1.0 for d in outcome.result.densities.values())
