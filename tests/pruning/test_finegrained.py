"""Element-wise magnitude masks: exact counts, kept as masks through training, densities for the cost model."""

from __future__ import annotations

import pytest
import torch

from amc.errors import UserError
from amc.graph import build_layer_table
from amc.models import create_model
from amc.pruning.finegrained import (
    LayerDensities,
    apply_masks_,
    magnitude_masks,
    mask_densities,
    remove_masks_,
    weight_densities,
)


def test_masks_drop_exactly_the_smallest_weights() -> None:
    model = create_model("tiny")
    masks = magnitude_masks(model, {"conv1": 0.75, "fc": 0.5})
    weight = model.conv1.weight.detach().abs().flatten()
    mask = masks["conv1"].flatten()
    assert int((~mask).sum()) == round(0.75 * weight.numel())
    assert weight[~mask].max() <= weight[mask].min()
    assert mask_densities(masks).densities == {"conv1": 0.25, "fc": 0.5}


def test_masks_survive_a_training_step_and_bake_into_plain_weights() -> None:
    model = create_model("tiny")
    apply_masks_(model, magnitude_masks(model, 0.5))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    model(torch.randn(2, 3, 16, 16)).sum().backward()
    optimizer.step()
    model(torch.randn(2, 3, 16, 16))
    assert float((model.conv1.weight == 0).float().mean()) == pytest.approx(0.5, abs=1e-3)
    remove_masks_(model)
    assert "conv1.weight" in model.state_dict() and "conv1.weight_mask" not in model.state_dict()
    table = build_layer_table(model, (3, 16, 16), "tiny")
    measured = weight_densities(model, table)
    assert measured.densities["conv1"] == pytest.approx(0.5, abs=1e-3)


def test_densities_feed_layer_specs_with_ideal_macs() -> None:
    table = build_layer_table(create_model("tiny"), (3, 16, 16), "tiny")
    densities = LayerDensities({"conv1": 0.2})
    specs = densities.specs(table)
    conv1 = table.layer("conv1")
    assert specs[conv1.index].ideal_macs == pytest.approx(0.2 * conv1.macs)
    assert specs[conv1.index].sparsity_pattern == "element"
    assert specs[0] == table.layers[0].spec
    thinned = densities.specs(table, {table.group_of("conv1").index: 8})
    assert thinned[conv1.index].out_channels == 8 and thinned[conv1.index].weight_density == 0.2
    with pytest.raises(UserError, match="'nope'"):
        LayerDensities({"nope": 0.5}).specs(table)


@pytest.mark.parametrize("sparsity", [1.0, -0.1])
def test_sparsity_outside_unit_interval_is_an_error(sparsity: float) -> None:
    with pytest.raises(UserError, match="outside"):
        magnitude_masks(create_model("tiny"), {"conv1": sparsity})


def test_densities_json_round_trip(tmp_path) -> None:
    densities = LayerDensities({"conv1": 0.25, "fc": 0.5}, "tiny")
    densities.save(tmp_path / "d.json")
    import json

    assert LayerDensities.from_dict(json.loads((tmp_path / "d.json").read_text())) == densities
    with pytest.raises(UserError, match="version"):
        LayerDensities.from_dict({**densities.to_dict(), "_version": 9})
