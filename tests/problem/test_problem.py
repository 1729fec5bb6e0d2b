"""The pruning problem: budget, clipping on the staircase, apply, score and the outcome, for both problems."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from amc.errors import UserError
from amc.graph import build_layer_table
from amc.problem import Bounds, ChannelProblem, DensityProblem, PrunedModel, PruningProblem, density_grid
from amc.problem.accounting import snap_density
from amc.pruning import LayerDensities, Strategy, prune_network

MakeProblem = Callable[..., PruningProblem]


def test_clipping_searches_discrete_counts_not_a_line(make_problem: MakeProblem) -> None:
    """With every later group at its minimum, the first group gets the largest count that still fits."""
    problem = make_problem(budget_ratio=0.3)
    first, *later = problem.order
    chosen = problem.clip(0, {}, 1.0)
    rest = {g: problem.candidates[g][0] for g in later}
    assert problem.cost({**rest, first: chosen}) <= problem.budget.value
    larger = [c for c in problem.candidates[first] if c > chosen]
    assert larger and all(problem.cost({**rest, first: c}) > problem.budget.value for c in larger)


def test_clipping_never_goes_below_the_minimum_or_above_the_wanted(make_problem: MakeProblem) -> None:
    problem = make_problem(budget_ratio=0.9)
    unit = problem.order[0]
    assert problem.clip(0, {}, 0.0) == problem.candidates[unit][0]
    assert problem.clip(0, {}, 0.5) <= problem.snap(unit, 0.5)


def test_infeasible_budget_is_refused_with_the_minimum(make_problem: MakeProblem) -> None:
    with pytest.raises(UserError, match=r"cannot be met.*lbound=0.2.*costs") as error:
        make_problem(budget_ratio=0.01)
    assert "at least" in error.value.fix


@pytest.mark.parametrize(
    ("change", "message"),
    [({"reward": "accuracy"}, "search.reward"), ({"lbound": 0.0}, "lbound"), ({"rbound": 1.5}, "rbound")],
)
def test_bad_settings_are_user_errors(make_problem: MakeProblem, change: dict, message: str) -> None:
    with pytest.raises(UserError, match=message):
        make_problem(**change)


def test_bounds_map_the_normalised_scale_both_ways() -> None:
    bounds = Bounds(0.2, 1.0)
    assert bounds.value(-1.0) == 0.2 and bounds.value(1.0) == 1.0 and bounds.value(5.0) == 1.0
    assert bounds.action(bounds.value(0.25)) == pytest.approx(0.25)
    assert Bounds(0.5, 0.5).action(0.5) == 1.0


def test_score_matches_cost_apply_and_result(make_problem: MakeProblem) -> None:
    problem = make_problem()
    assert isinstance(problem, ChannelProblem)
    decisions = {g: problem.candidates[g][0] for g in problem.order}
    outcome = problem.score(decisions)
    assert outcome.cost == problem.cost(decisions) <= problem.budget.value
    assert outcome.accuracy == problem.accuracy(problem.apply(decisions))
    assert outcome.reward == outcome.accuracy  # reward "acc"
    assert isinstance(outcome.result, Strategy)
    assert outcome.result.kept_channels(problem.table) == decisions
    assert outcome.result.metadata.cost == outcome.cost and outcome.result.metadata.budget == problem.budget.value
    assert outcome.keep_ratios == tuple(decisions[g] / problem.table.groups[g].channels for g in problem.order)
    assert outcome.weights is None and {"cost_s", "prune_s", "eval_s"} <= set(outcome.timings)


def test_apply_thins_for_real_and_leaves_the_model_alone(make_problem: MakeProblem) -> None:
    problem = make_problem()
    before = {name: value.clone() for name, value in problem.model.state_dict().items()}
    decisions = {g: problem.candidates[g][0] for g in problem.order}
    pruned = problem.apply(decisions)
    table = build_layer_table(pruned, problem.table.input_size)
    assert table.total_macs == problem.table.total_macs - (problem.dense_cost - problem.cost(decisions))
    assert all((before[name] == value).all() for name, value in problem.model.state_dict().items())


def test_scoring_from_a_pruned_variant_cuts_only_what_changed(make_problem: MakeProblem) -> None:
    """NetAdapt's path: continue from an already pruned (and tuned) network, one more group cut."""
    problem = make_problem()
    assert isinstance(problem, ChannelProblem)
    first, second, *_ = problem.order
    start_decisions = {first: problem.candidates[first][0]}
    start_model = problem.apply(start_decisions)
    start = PrunedModel(start_decisions, start_model, build_layer_table(start_model, problem.table.input_size))
    decisions = {**start_decisions, second: problem.candidates[second][0]}
    tuned: list[object] = []
    outcome = problem.score(decisions, start=start, tune=tuned.append, keep_weights=True)
    assert len(tuned) == 1 and "tune_s" in outcome.timings
    assert outcome.cost == problem.cost(decisions)
    assert outcome.weights is not None
    expected = problem.apply(decisions)
    assert {k: v.shape for k, v in expected.state_dict().items()} == {k: v.shape for k, v in outcome.weights.items()}


def test_density_problem_zeroes_the_chosen_share(make_problem: MakeProblem) -> None:
    problem = make_problem("element")
    assert isinstance(problem, DensityProblem)
    assert problem.order == tuple(layer.index for layer in problem.table.layers)
    pruned = problem.apply(dict.fromkeys(problem.order, 0.5))
    for layer in problem.table.layers:
        weight = pruned.get_submodule(layer.name).weight
        assert (weight != 0).float().mean().item() == pytest.approx(0.5, abs=0.02)
    outcome = problem.score(dict.fromkeys(problem.order, 0.5))
    assert isinstance(outcome.result, LayerDensities) and set(outcome.result.densities.values()) == {0.5}


def test_density_grid_and_snapping() -> None:
    grid = density_grid(0.2, 1.0)
    assert grid[0] == 0.2 and grid[-1] == 1.0 and len(grid) == 81
    assert snap_density(0.555, grid) == 0.55 and snap_density(0.1, grid) == 0.2


def test_one_apply_function_for_channels_and_masks(make_problem: MakeProblem) -> None:
    problem = make_problem()
    group = problem.order[0]
    leader = problem.table.groups[group].leader
    pruned = prune_network(
        problem.model, problem.table, {group: problem.candidates[group][0]}, {leader: 0.5}, keep_masks=True
    )
    module = pruned.model.get_submodule(leader)
    assert hasattr(module, "weight_mask") and pruned.masked_layers == 1
    assert module.weight.shape[0] == problem.candidates[group][0]


def test_least_squares_on_l2_ranking_gets_calibration_images() -> None:
    """`lstsq-l2` is least squares too: it must be handed the scorer's calibration batches, like `lstsq`."""
    import torch

    from tests.problem_fixtures import StubScorer, tiny_problem

    problem = tiny_problem(selection="lstsq-l2")
    StubScorer.bn_batches = [torch.randn(16, 3, 16, 16)]
    try:
        decisions = {unit: problem.candidates[unit][0] for unit in problem.order}
        pruned = problem.apply(decisions)
    finally:
        StubScorer.bn_batches = []
    assert sum(p.numel() for p in pruned.parameters()) < sum(p.numel() for p in problem.model.parameters())
