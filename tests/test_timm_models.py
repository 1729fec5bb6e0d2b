"""timm models by name (`timm:<name>`): built without downloads, unknown names and a missing extra are clear
UserErrors, and a small timm network thins, saves and reloads to the same outputs."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

pytest.importorskip("timm")

from amc.config import load_config  # noqa: E402
from amc.deliver.export import export  # noqa: E402
from amc.errors import UserError  # noqa: E402
from amc.graph import build_layer_table  # noqa: E402
from amc.models import (  # noqa: E402
    create_model,
    list_models,
    model_info,
    timm_zoo,  # noqa: E402
)
from amc.optional import check_config  # noqa: E402
from amc.pruning import Strategy, StrategyMetadata, prune_network  # noqa: E402
from amc.pruning.export import load_thinned  # noqa: E402
from amc.pruning.exported import read_manifest
from amc.schedule import Schedule  # noqa: E402


def test_timm_model_by_name_maps_channels_and_classes() -> None:
    model = create_model("timm:resnet10t", in_channels=1, num_classes=7).eval()
    with torch.no_grad():
        assert model(torch.randn(2, 1, 64, 64)).shape == (2, 7)
    assert model_info("timm:resnet10t").input_size == (3, 176, 176)  # timm's default config, not a guess
    assert "timm:efficientnet_b0" in {info.name for info in list_models()}


def test_unknown_timm_name_suggests_the_close_one() -> None:
    with pytest.raises(UserError, match="Did you mean 'efficientnet_b0'") as error:
        create_model("timm:efficientnet-b0")
    assert "amc list models" in str(error.value)


def test_missing_timm_is_one_error_naming_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    timm_zoo.names.cache_clear()
    monkeypatch.setitem(sys.modules, "timm", None)  # import timm now fails as if it were not installed
    try:
        with pytest.raises(UserError, match=r"amc-toolkit\[timm\]"):
            create_model("timm:resnet10t")
    finally:
        timm_zoo.names.cache_clear()
    monkeypatch.setattr("amc.optional.installed", lambda package: package != "timm")
    with pytest.raises(UserError, match=r"model timm:resnet10t needs timm.*amc-toolkit\[timm\]"):
        check_config(load_config(None, {"model.name": "timm:resnet10t"}))
    monkeypatch.setattr("amc.models.timm_zoo.installed", lambda package: False)
    assert not any(info.name.startswith("timm:") for info in list_models())


@pytest.mark.parametrize("name", ["timm:resnet10t", "timm:mobilenetv3_small_050"])
def test_small_timm_model_prunes_saves_and_reloads_equal(name: str, tmp_path: Path) -> None:
    size = (3, 64, 64)
    torch.manual_seed(0)
    model = create_model(name).eval()
    table = build_layer_table(model, size, name)
    strategy = Strategy.uniform(table, 0.5, 8, StrategyMetadata(model=name, input_size=size, selection="l1"))
    thinned = prune_network(model, table, strategy.kept_channels(table), selection="l1").model.eval()
    assert sum(p.numel() for p in thinned.parameters()) < sum(p.numel() for p in model.parameters())
    export(thinned, tmp_path, Schedule(strategy), size, name)
    manifest = read_manifest(tmp_path)
    assert manifest is not None
    # timm's BatchNormAct2d holds its activation: architecture.json cannot rebuild it, torch.export holds it
    assert (manifest.format == "torch.export") == any(type(m).__name__ == "BatchNormAct2d" for m in thinned.modules())
    reloaded = load_thinned(tmp_path)
    example = torch.randn(2, *size)
    with torch.no_grad():
        torch.testing.assert_close(reloaded(example), thinned(example), rtol=1e-4, atol=1e-5)
