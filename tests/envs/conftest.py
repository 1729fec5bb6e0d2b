"""Fixtures for env tests: the tiny model's pruning problem (see tests/problem_fixtures.py)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from amc.problem import PruningProblem
from tests.problem_fixtures import tiny_problem


@pytest.fixture
def make_problem() -> Callable[..., PruningProblem]:
    return tiny_problem
