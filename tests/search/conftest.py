"""Fixtures for search tests: the tiny model's pruning problem with a stub scorer and the MACs cost model."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from amc.problem import PruningProblem
from tests.problem_fixtures import tiny_problem


@pytest.fixture
def make_problem() -> Callable[..., PruningProblem]:
    return tiny_problem
