"""Network slimming: the L1 term on BatchNorm scales, bn_scale selection, the global-threshold method, bad input."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from torch import nn

import amc.training.loop as loop
from amc.cli.main import main
from amc.config import load_config
from amc.errors import UserError
from amc.graph import build_layer_table
from amc.models import create_model
from amc.problem import ChannelProblem, problem_from_objects
from amc.pruning import thin
from amc.pruning.selection import BatchNormScale
from amc.search.slimming import group_scales, kept_above, slimming_threshold
from amc.training.loop import TrainHooks, TrainSettings, add_bn_l1_subgradient_, train
from hwmodel import create_cost_model
from tests.problem_fixtures import StubScorer, tiny_problem

SMOKE = "configs/smoke.yaml"


def _gammas(model: nn.Module) -> torch.Tensor:
    return torch.cat([m.weight.detach().abs().flatten() for m in model.modules() if isinstance(m, nn.BatchNorm2d)])


def _trained(synthetic_bundle, slimming_l1: float) -> nn.Module:
    torch.manual_seed(0)
    model = create_model("tiny")
    settings = TrainSettings(epochs=1, lr=0.05, slimming_l1=slimming_l1)
    train(model, synthetic_bundle.train, synthetic_bundle.search_val, settings, progress=False, log=lambda _: None,
          hooks=TrainHooks(max_steps_per_epoch=6))  # fmt: skip
    return model


def test_the_l1_subgradient_is_lambda_times_the_sign_of_gamma() -> None:
    model = create_model("tiny")
    model.bn1.weight.data = torch.linspace(-1.0, 1.0, 16)
    for parameter in model.parameters():
        parameter.grad = torch.zeros_like(parameter)
    add_bn_l1_subgradient_(model, 0.25)
    assert torch.equal(model.bn1.weight.grad, 0.25 * torch.sign(model.bn1.weight.detach()))
    assert torch.equal(model.stem[1].weight.grad, torch.full((16,), 0.25))  # gammas start at 1
    assert not model.conv1.weight.grad.any() and not model.bn1.bias.grad.any()


def test_the_l1_term_moves_bn_scales_towards_zero(synthetic_bundle) -> None:
    plain, slimmed = _trained(synthetic_bundle, 0.0), _trained(synthetic_bundle, 0.05)
    assert _gammas(slimmed).sum() < _gammas(plain).sum() - 0.5
    assert (_gammas(slimmed) < _gammas(plain)).float().mean() > 0.9


def test_slimming_l1_zero_runs_no_extra_code(synthetic_bundle, monkeypatch: pytest.MonkeyPatch) -> None:
    reference = _trained(synthetic_bundle, 0.0)

    def refuse(*args: object) -> None:
        raise AssertionError("slimming_l1 0 must not touch the gradients")

    monkeypatch.setattr(loop, "add_bn_l1_subgradient_", refuse)
    again = _trained(synthetic_bundle, 0.0)
    for (name, value), other in zip(reference.state_dict().items(), again.state_dict().values()):
        assert torch.equal(value, other), name


def test_bn_scale_ranks_by_abs_gamma_summed_over_members() -> None:
    torch.manual_seed(0)
    model = create_model("tiny").eval()
    table = build_layer_table(model, (3, 16, 16), "tiny")
    single, residual = table.group_of("conv1"), table.group_of("conv2")
    assert single is not None and residual is not None and set(residual.layers) == {"stem.0", "conv2"}
    gamma = torch.tensor([0.5, -3.0, 0.1, 2.0, -0.2, 1.0, 0.0, -0.7, 0.3, 0.9, -1.5, 0.05, 0.6, 0.4, -0.8, 1.2])
    model.bn1.weight.data = gamma.clone()
    assert torch.equal(BatchNormScale().scores(single, model), gamma.abs().double())
    model.stem[1].weight.data = gamma.flip(0)
    expected = model.stem[1].weight.detach().abs().double() + model.bn2.weight.detach().abs().double()
    assert torch.allclose(BatchNormScale().scores(residual, model), expected)
    thinned = thin(model, table, {single.index: 4}, selection="bn_scale")
    assert sorted(thinned.bn1.weight.detach().abs().tolist()) == sorted(gamma.abs().topk(4).values.tolist())


def test_slimming_threshold_is_the_lowest_that_meets_the_budget() -> None:
    problem = tiny_problem(selection="bn_scale", round_to=1)
    assert isinstance(problem, ChannelProblem)
    torch.manual_seed(1)
    for module in problem.model.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.weight.data = torch.rand(module.num_features)
    scales = group_scales(problem)
    found = slimming_threshold(problem, scales)
    budget = problem.budget.value
    assert problem.cost(found.kept) <= budget
    lower = [value for value in torch.cat(list(scales.values())).tolist() if value < found.threshold]
    assert lower, "the dense network should not meet a 50% budget"
    assert problem.cost(kept_above(problem, scales, max(lower))) > budget
    for group, count in found.kept.items():  # round_to 1: exactly the channels above the threshold
        above = int((scales[group] > found.threshold).sum())
        assert count == max(above, problem.candidates[group][0])


def test_slimming_search_meets_the_budget_and_writes_the_run_folder(tmp_path: Path) -> None:
    run = tmp_path / "run"
    args = ["search", "--config", SMOKE, "--method", "slimming", "--set", "search.selection=bn_scale",
            "--set", "train.slimming_l1=0.01", "--out", str(run), "--no-progress"]  # fmt: skip
    assert main(args) == 0
    summary = json.loads((run / "summary.json").read_text())
    assert summary["method"] == "slimming" and summary["best_cost"] <= summary["budget"]["value"]
    assert (run / "best_strategy.json").is_file() and (run / "best_schedule.yaml").is_file()
    assert load_config(run / "config.yaml").train.slimming_l1 == 0.01


@pytest.mark.parametrize("value", [-0.1, math.nan, math.inf])
def test_bad_slimming_l1_is_refused(value: float) -> None:
    with pytest.raises(UserError, match="train.slimming_l1"):
        load_config(SMOKE, {"train.slimming_l1": value})


def test_slimming_needs_bn_scale_selection() -> None:
    with pytest.raises(UserError, match="bn_scale"):
        load_config(SMOKE, {"search.method": "slimming", "search.selection": "l1"})


def test_bn_scale_on_a_model_without_batchnorm_is_refused_when_the_problem_is_built() -> None:
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3, padding=1), nn.ReLU(),
                          nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 10))  # fmt: skip
    config = load_config(SMOKE, {"search.selection": "bn_scale"})
    with pytest.raises(UserError, match="not followed by a BatchNorm"):
        problem_from_objects(config, model, (3, 16, 16), StubScorer(), create_cost_model("macs"), progress=False)
