"""Masks at each granularity (Mao et al. 2017): each has the pattern it claims, hits its density within one group,
survives optimiser steps, travels in LayerDensities, and drives a DensityProblem; bad settings are refused."""

from __future__ import annotations

import itertools
import json
import math
from pathlib import Path
from typing import cast

import pytest
import torch
from torch import nn

from amc.config import load_config
from amc.errors import UserError
from amc.graph import build_layer_table
from amc.models import create_model
from amc.problem import DensityProblem, Settings
from amc.problem.factory import problem_from_objects
from amc.pruning import LayerDensities, apply_masks_, magnitude_masks, prune_network, remove_masks_
from amc.pruning.granularity import NM, MaskPattern
from hwmodel import create_cost_model
from hwmodel.sparse import group_length
from hwmodel.spec import LayerSpec
from tests.problem_fixtures import StubScorer

SMOKE = Path(__file__).resolve().parents[2] / "configs" / "smoke.yaml"


def weight(shape: tuple[int, ...] = (6, 8, 3, 3), seed: int = 0) -> torch.Tensor:
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed))


def weight_of(model: nn.Module, name: str) -> torch.Tensor:
    return cast(torch.Tensor, model.get_submodule(name).weight)


def l1_ranked_keep(scores: list[float], drop: int) -> list[bool]:
    """Oracle: keep every group but the `drop` with the smallest L1 (scores distinct with random weights)."""
    dropped = set(sorted(range(len(scores)), key=lambda i: scores[i])[:drop])
    return [i not in dropped for i in range(len(scores))]


def test_element_mask_drops_the_smallest_magnitudes() -> None:
    w = weight()
    mask = MaskPattern("element").mask(w, 0.3)
    drop = round(0.3 * w.numel())
    assert int((~mask).sum()) == drop
    assert w.abs()[~mask].max() < w.abs()[mask].min()


def test_vector_mask_zeroes_whole_kernel_rows_of_smallest_l1() -> None:
    w = weight()
    mask = MaskPattern("vector").mask(w, 0.5)
    rows = list(itertools.product(range(6), range(8), range(3)))
    for o, i, r in rows:
        assert mask[o, i, r].all() or not mask[o, i, r].any()  # one 1 x kw row is kept or zeroed whole
    expected = l1_ranked_keep([float(w[o, i, r].abs().sum()) for o, i, r in rows], round(0.5 * len(rows)))
    assert [bool(mask[o, i, r, 0]) for o, i, r in rows] == expected


def test_kernel_mask_zeroes_whole_kernels_of_smallest_l1() -> None:
    w = weight()
    mask = MaskPattern("kernel").mask(w, 0.4)
    kernels = list(itertools.product(range(6), range(8)))
    for o, i in kernels:
        assert mask[o, i].all() or not mask[o, i].any()
    expected = l1_ranked_keep([float(w[o, i].abs().sum()) for o, i in kernels], round(0.4 * len(kernels)))
    assert [bool(mask[o, i, 0, 0]) for o, i in kernels] == expected


def test_filter_mask_zeroes_whole_output_channels_and_keeps_the_shape() -> None:
    w = weight()
    mask = MaskPattern("filter").mask(w, 0.5)
    assert mask.shape == w.shape
    assert [bool(mask[o].all()) or not bool(mask[o].any()) for o in range(6)] == [True] * 6
    assert [bool(mask[o, 0, 0, 0]) for o in range(6)] == l1_ranked_keep([float(w[o].abs().sum()) for o in range(6)], 3)


@pytest.mark.parametrize(("n", "m"), [(2, 4), (1, 4), (3, 8)])
def test_nm_mask_keeps_exactly_n_largest_of_every_m_input_channels(n: int, m: int) -> None:
    w = weight((4, 16, 3, 3))
    mask = MaskPattern("nm", NM(n, m)).mask(w, 1 - n / m)
    for o, kh, kw, start in itertools.product(range(4), range(3), range(3), range(0, 16, m)):
        group = w[o, start : start + m, kh, kw].abs()
        kept = mask[o, start : start + m, kh, kw]
        assert int(kept.sum()) == n  # exactly N non-zeros in every group of M
        assert set(torch.topk(group, n).indices.tolist()) == set(kept.nonzero().flatten().tolist())
    assert float(mask.float().mean()) == pytest.approx(n / m)


def test_nm_on_a_linear_layer_groups_consecutive_inputs() -> None:
    w = weight((3, 8))
    mask = MaskPattern("nm").mask(w, 0.5)
    assert mask.reshape(3, 2, 4).sum(dim=2).tolist() == [[2, 2]] * 3


@pytest.mark.parametrize("granularity", ["element", "vector", "kernel", "filter"])
@pytest.mark.parametrize("sparsity", [0.1, 0.37, 0.5, 0.83])
def test_density_is_hit_within_one_group(granularity: str, sparsity: float) -> None:
    w = weight((16, 8, 3, 3))
    groups = {"element": w.numel(), "vector": 16 * 8 * 3, "kernel": 16 * 8, "filter": 16}[granularity]
    density = float(MaskPattern(granularity).mask(w, sparsity).float().mean())
    assert abs(density - (1 - sparsity)) <= 1 / groups


def test_group_sizes_match_what_hwmodel_prices() -> None:
    """The zero groups the masks make are the groups hwmodel.sparse prices (group_length along a filter row)."""
    w = weight((6, 8, 3, 3))
    spec = LayerSpec("conv", 8, 6, (3, 3), in_hw=(8, 8), padding=(1, 1))
    for granularity in ("element", "vector", "kernel", "filter"):
        flat = MaskPattern(granularity).mask(w, 0.5).reshape(6, -1)  # each filter's (in, kh, kw) row
        length = group_length(granularity, spec)
        runs = flat.reshape(6, -1, length)
        assert bool(((runs.all(dim=2)) | (~runs.any(dim=2))).all()), granularity


def test_linear_and_1x1_layers_fall_back_to_single_weights_for_vector_and_kernel() -> None:
    w = weight((5, 7))
    for granularity in ("vector", "kernel"):
        mask = MaskPattern(granularity).mask(w, 0.4)
        assert torch.equal(mask, MaskPattern("element").mask(w, 0.4))


@pytest.mark.parametrize(
    "pattern", [MaskPattern("vector"), MaskPattern("kernel"), MaskPattern("filter"), MaskPattern("nm")]
)
def test_masks_survive_optimiser_steps_and_baking(pattern: MaskPattern) -> None:
    torch.manual_seed(0)
    model = create_model("tiny")
    sparsity = 0.5
    layers = ["conv1", "conv2", "down.0"]
    masks = magnitude_masks(model, dict.fromkeys(layers, sparsity), pattern=pattern)
    apply_masks_(model, masks)
    optimiser = torch.optim.SGD(model.parameters(), lr=0.5, momentum=0.9)
    for _ in range(3):
        optimiser.zero_grad()
        nn.functional.cross_entropy(model(torch.randn(4, 3, 16, 16)), torch.tensor([0, 1, 2, 3])).backward()
        optimiser.step()
    remove_masks_(model)
    for name in layers:
        w = weight_of(model, name)
        assert torch.equal(w != 0, masks[name]), name  # the zeros are exactly the mask's, after training
        assert not hasattr(model.get_submodule(name), "weight_mask")


def test_nm_for_the_whole_model_skips_layers_without_whole_groups() -> None:
    model = create_model("tiny")  # stem has 3 input channels: not a multiple of 4
    masks = magnitude_masks(model, 0.5, pattern=MaskPattern("nm"))
    assert "stem.0" not in masks and set(masks) == {"conv1", "conv2", "down.0", "fc"}
    with pytest.raises(UserError, match="not a multiple of M=4"):
        magnitude_masks(model, {"stem.0": 0.5}, pattern=MaskPattern("nm"))


@pytest.mark.parametrize(("n", "m"), [(4, 2), (2, 2), (0, 4), (-1, 4), (2.0, 4), (True, 4)])
def test_bad_nm_is_refused(n: object, m: object) -> None:
    with pytest.raises(UserError, match="N < M"):
        NM(n, m)  # type: ignore[arg-type]


@pytest.mark.parametrize("value", [[4, 2], [2, 2], [0, 4], [2], [2, 4, 8], [2.5, 4], "2:4"])
def test_config_refuses_bad_search_nm(value: object) -> None:
    with pytest.raises(UserError, match=r"search\.nm"):
        load_config(SMOKE, {"search.nm": value})


def test_bad_mask_requests_are_refused() -> None:
    w = weight((4, 8, 3, 3))
    with pytest.raises(UserError, match="granularity 'row'"):
        MaskPattern("row")
    for bad in (1.0, -0.1, math.nan):
        with pytest.raises(UserError, match="outside"):
            MaskPattern("kernel").mask(w, bad)
    with pytest.raises(UserError, match="fixes a layer's sparsity at 0.5"):
        MaskPattern("nm").mask(w, 0.3)
    assert bool(MaskPattern("nm").mask(w, 0.0).all())  # 0: the layer is left dense


def test_densities_carry_their_pattern_through_json(tmp_path: Path) -> None:
    path = tmp_path / "d.json"
    nm = LayerDensities({"conv1": 0.5}, "tiny", MaskPattern("nm", NM(1, 2)))
    nm.save(path)
    data = json.loads(path.read_text())
    assert data["_version"] == 2 and data["granularity"] == "nm" and data["nm"] == [1, 2]
    assert LayerDensities.load(path) == nm
    element = LayerDensities({"conv1": 0.5}, "tiny")
    assert element.to_dict()["_version"] == 1 and "granularity" not in element.to_dict()  # as before
    assert LayerDensities.from_dict(element.to_dict()) == element
    for bad in ({"granularity": "row"}, {"nm": [4, 2]}, {"nm": None}, {"nm": [2.0, 4.0]}):
        with pytest.raises(UserError, match="densities"):
            LayerDensities.from_dict({**nm.to_dict(), **bad})
    with pytest.raises(UserError, match="format version 3"):
        LayerDensities.from_dict({**nm.to_dict(), "_version": 3})


def test_density_specs_carry_the_pattern() -> None:
    model = create_model("tiny")
    table = build_layer_table(model, (3, 16, 16), "tiny")
    specs = LayerDensities({"conv1": 0.5}, "tiny", MaskPattern("kernel")).specs(table)
    patterns = {layer.name: spec.sparsity_pattern for layer, spec in zip(table.layers, specs)}
    assert patterns["conv1"] == "kernel" and patterns["conv2"] == "dense"


def density_problem(pattern: MaskPattern, cost: str = "sparse@scnn-mao:macs") -> DensityProblem:
    torch.manual_seed(0)
    model = create_model("tiny").eval()
    table = build_layer_table(model, (3, 16, 16), "tiny")
    return DensityProblem(
        model, table, StubScorer(), create_cost_model(cost), Settings(round_to=4), None, None, 0.7, pattern=pattern
    )


def test_a_kernel_problem_prices_and_applies_kernels() -> None:
    problem = density_problem(MaskPattern("kernel"))
    decisions = dict.fromkeys(problem.order, 0.5)
    # scnn-mao: kernel eta 1 -> a layer at density 0.5 costs half its MACs; element (eta 0.5) would cost them all.
    assert problem.cost(decisions) == pytest.approx(0.5 * problem.accountant.dense_cost)
    element = density_problem(MaskPattern("element"))
    assert element.cost(decisions) == pytest.approx(element.accountant.dense_cost)
    pruned = problem.apply(decisions)
    for layer in problem.table.layers[:4]:  # the convs: whole kernels zeroed, half of them
        w = weight_of(pruned, layer.name)
        per_kernel = (w != 0).flatten(2).any(dim=2)
        assert torch.equal(per_kernel, (w != 0).flatten(2).all(dim=2)) and float(per_kernel.float().mean()) == 0.5
    result = problem.result(decisions, problem.metadata)
    assert result.pattern == MaskPattern("kernel") and set(result.densities.values()) == {0.5}


def test_an_nm_problem_is_a_per_layer_on_off_choice() -> None:
    problem = density_problem(MaskPattern("nm"), "sparse@ampere-sparse-tensor-core:macs")
    names = [layer.name for layer in problem.table.layers]
    candidates = {name: problem.candidates[index] for index, name in zip(problem.order, names)}
    assert candidates["stem.0"] == [1.0] and candidates["conv1"] == [0.5, 1.0] and candidates["fc"] == [0.5, 1.0]
    on = {index: problem.candidates[index][0] for index in problem.order}
    dense_stem = problem.accountant.dense_layer_costs[0]
    assert problem.cost(on) == pytest.approx(dense_stem + 0.5 * (problem.accountant.dense_cost - dense_stem))
    pruned = problem.apply(on)
    w = weight_of(pruned, "conv1")
    assert (w != 0).movedim(1, -1).reshape(-1, 4).sum(dim=1).eq(2).all()


def test_the_factory_builds_each_masked_granularity() -> None:
    model = create_model("tiny").eval()
    for granularity in ("vector", "kernel", "filter", "nm"):
        config = load_config(SMOKE, {"search.granularity": granularity, "search.nm": [1, 4], "model.name": "tiny"})
        problem = problem_from_objects(config, model, (3, 16, 16), StubScorer(), create_cost_model("sparse:macs"))
        assert isinstance(problem, DensityProblem) and problem.pattern.granularity == granularity
        assert problem.pattern.nm == NM(1, 4)


def test_a_saved_kernel_result_is_re_applied_with_its_pattern_outside_the_search() -> None:
    """`amc evaluate` / `amc prune` / export re-apply densities through prune_network with the result's pattern:
    the same masks the search scored, never element masks at the same density."""
    problem = density_problem(MaskPattern("kernel"))
    decisions = dict.fromkeys(problem.order, 0.5)
    result = problem.result(decisions, problem.metadata)
    searched = problem.apply(decisions)
    again = prune_network(problem.model, problem.table, densities=result.densities, pattern=result.pattern).model
    for layer in problem.table.layers[:4]:
        assert torch.equal(weight_of(again, layer.name), weight_of(searched, layer.name))
    element = prune_network(problem.model, problem.table, densities=result.densities).model
    assert not torch.equal(weight_of(element, "conv1") != 0, weight_of(searched, "conv1") != 0)
