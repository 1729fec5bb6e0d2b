"""Shared fixtures: one CPU thread, a private model cache, tiny models and the synthetic dataset."""

from __future__ import annotations

import pytest
import torch

torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def private_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Never read or write the user's ~/.cache/amc from tests."""
    monkeypatch.setenv("AMC_CACHE", str(tmp_path_factory.getbasetemp() / "amc-cache"))


@pytest.fixture(scope="session")
def synthetic_bundle():
    from amc.data import load_dataset

    return load_dataset("synthetic", search_val_size=256)
