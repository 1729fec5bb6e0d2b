"""A finished smoke search (tiny model, synthetic data, MACs budget) shared by the evaluate and compare tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from amc.cli.main import main

SMOKE = "configs/smoke.yaml"


def smoke_search(out: Path, *extra: str) -> Path:
    assert main(["search", "--config", SMOKE, "--out", str(out), "--no-progress", *extra]) == 0
    return out


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return smoke_search(tmp_path_factory.mktemp("search") / "run")
