"""Mixed-precision (bits) and joint prune + quantize problems: env checkers, clipping, determinism, bad input, runs."""

from __future__ import annotations

import json
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from gymnasium.utils.env_checker import check_env as gym_check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env
from torch import nn

from amc.cli.main import main
from amc.config import load_config
from amc.errors import UserError
from amc.graph import build_layer_table
from amc.models import create_model
from amc.problem import (
    BitPair,
    BitsProblem,
    JointDecision,
    JointProblem,
    JointResult,
    PruningProblem,
    SearchValScorer,
    Settings,
    Task,
    problem_from_objects,
)
from amc.problem.bits import bits_action, haq_bits, lowering
from amc.pruning import Strategy
from amc.quantize import LayerBits
from amc.search.baselines.uniform import uniform_bits, uniform_joint
from amc.search.methods import run_search
from amc.training.base_model import load_base_model, load_data
from envs import ChannelPruningEnv
from hwmodel import create_cost_model
from hwmodel.base import CachedCostModel
from hwmodel.spec import LayerSpec
from tests.problem_fixtures import tiny_problem

INPUT = (3, 16, 16)
SMOKE = "configs/smoke.yaml"


class BitsStub(CachedCostModel):
    """Bits stored and moved: weights at their bits plus input activations at theirs (float: 32)."""

    def __init__(self) -> None:
        super().__init__("stub-bits", "params")

    def _price(self, spec: LayerSpec) -> float:
        return spec.weight_count * spec.weight_bits + spec.input_elements * spec.activation_bits


class OutputScorer:
    """Deterministic stand-in for accuracy: how close the network's logits stay to the float model's."""

    adaptive_bn = False

    def __init__(self, reference: nn.Module) -> None:
        generator = torch.Generator().manual_seed(1)
        self.bn_batches = [torch.randn(8, *INPUT, generator=generator) for _ in range(2)]
        self.images = torch.randn(16, *INPUT, generator=generator)
        with torch.no_grad():
            self.target = reference(self.images)

    def __call__(self, model: nn.Module) -> float:
        with torch.no_grad():
            error = float((model.eval()(self.images) - self.target).norm() / self.target.norm())
        return 1.0 / (1.0 + error)


def make(kind: type[PruningProblem], budget_ratio: float = 0.3, **settings: Any) -> PruningProblem:
    torch.manual_seed(0)
    model = create_model("tiny").eval()
    table = build_layer_table(model, INPUT, "tiny")
    return kind(
        model, table, OutputScorer(model), BitsStub(), Settings(**{"round_to": 4, **settings}), None, None,
        budget_ratio,
    )  # fmt: skip


KINDS = [BitsProblem, JointProblem]


def rollout(env: ChannelPruningEnv, seed: int) -> tuple[list[np.ndarray], float, Any]:
    observation, _ = env.reset(seed=seed)
    env.action_space.seed(seed)
    observations = [observation]
    while True:
        observation, reward, terminated, _, info = env.step(env.action_space.sample())
        observations.append(observation)
        if terminated:
            return observations, float(reward), info["outcome"]


@pytest.mark.parametrize("kind", KINDS)
def test_both_env_checkers_pass(kind: type[PruningProblem]) -> None:
    env = ChannelPruningEnv(make(kind))
    gym_check_env(env, skip_render_check=True)
    sb3_check_env(env, warn=True)
    assert env.action_space.shape == (kind.decision_size,)
    assert env.observation_space.shape == (13 + 2,)


def test_channel_observations_keep_their_thirteen_fields() -> None:
    assert ChannelPruningEnv(tiny_problem()).observation_space.shape == (13,)


@pytest.mark.parametrize("kind", KINDS)
def test_clipping_keeps_every_random_episode_within_budget(kind: type[PruningProblem]) -> None:
    problem = make(kind, budget_ratio=0.2)
    env = ChannelPruningEnv(problem)
    rewards = set()
    for seed in range(25):
        _, reward, outcome = rollout(env, seed)
        assert outcome.cost <= problem.budget.value * (1 + 1e-12)
        assert problem.cost(outcome.decisions) == outcome.cost
        rewards.add(reward)
    assert len(rewards) > 5  # the actions really differ


@pytest.mark.parametrize("kind", KINDS)
def test_same_seed_same_episode(kind: type[PruningProblem]) -> None:
    first, second = ChannelPruningEnv(make(kind)), ChannelPruningEnv(make(kind))
    a, b = rollout(first, 3), rollout(second, 3)
    assert all(np.array_equal(x, y) for x, y in zip(a[0], b[0]))
    assert a[1] == b[1] and a[2].decisions == b[2].decisions
    assert rollout(first, 4)[2].decisions != a[2].decisions


def test_haq_mapping_spreads_actions_evenly_and_inverts() -> None:
    actions = np.linspace(-1.0, 1.0, 7001)
    counts = np.bincount([haq_bits(float(a), 2, 8) for a in actions], minlength=9)[2:]
    assert counts.min() > 0.95 * counts.max()  # each of 2..8 gets a seventh of the action range
    assert haq_bits(-1.0, 2, 8) == 2 and haq_bits(1.0, 2, 8) == 8 and haq_bits(5.0, 3, 6) == 6
    assert all(haq_bits(bits_action(bits, 3, 6), 3, 6) == bits for bits in range(3, 7))


def price(problem: PruningProblem, trial: dict[int, BitPair], unit: int, pair: BitPair) -> float:
    return problem.cost({**trial, unit: pair})


def test_clip_stops_at_the_first_feasible_bits_on_the_lowering_path() -> None:
    problem = make(BitsProblem, budget_ratio=0.15)
    assert isinstance(problem, BitsProblem)
    decided: dict[int, BitPair] = {}
    low = problem.bits_range[0]
    for step, unit in enumerate(problem.order):
        later = {other: BitPair(low, low) for other in problem.order[step + 1 :]}
        path = list(lowering(BitPair(8, 7), low, partial(price, problem, {**decided, **later}, unit)))
        assert path[-1] == BitPair(low, low) and all(sum(a) - sum(b) == 1 for a, b in zip(path, path[1:]))
        chosen = problem.clip(step, decided, BitPair(8, 7))
        for pair in path[: path.index(chosen)]:  # everything wanted more was infeasible, by the cost model itself
            assert problem.cost({**decided, unit: pair, **later}) > problem.budget.value
        decided[unit] = chosen
    assert problem.cost(decided) <= problem.budget.value
    assert len(set(decided.values())) > 1  # the budget bites on some layers, not all


class WeightsOnly(BitsStub):
    """Prices weight bits only (a size model): activation bits cost nothing."""

    def _price(self, spec: LayerSpec) -> float:
        return spec.weight_count * spec.weight_bits


def test_clip_keeps_the_bits_the_cost_model_does_not_price() -> None:
    torch.manual_seed(0)
    model = create_model("tiny").eval()
    table = build_layer_table(model, INPUT, "tiny")
    problem = BitsProblem(model, table, OutputScorer(model), WeightsOnly(), Settings(), None, None, 0.15)
    decided: dict[int, BitPair] = {}
    for step, unit in enumerate(problem.order):
        decided[unit] = problem.clip(step, decided, BitPair(6, 8))
    assert {pair.activation for pair in decided.values()} == {8}
    assert min(pair.weight for pair in decided.values()) < 6  # the budget did bite, on the weights


def test_joint_clip_cuts_channels_before_bits() -> None:
    problem = make(JointProblem, budget_ratio=0.2)
    assert isinstance(problem, JointProblem)
    wanted = problem.wanted(0, [1.0, 1.0, 1.0])
    chosen = problem.clip(0, {}, wanted)
    if chosen.bits != wanted.bits:
        assert chosen.kept == problem.counts(problem.order[0])[0]


def test_results_are_layer_bits_and_joint_results() -> None:
    bits = make(BitsProblem)
    outcome = bits.score({unit: BitPair(4, 6) for unit in bits.order})
    assert isinstance(outcome.result, LayerBits)
    assert set(outcome.result.weights.values()) == {4} and set(outcome.result.activations.values()) == {6}
    assert outcome.cost == BitsStub().network_cost(outcome.result.specs(bits.table))
    joint = make(JointProblem)
    decisions = {unit: joint.candidates[unit][len(joint.candidates[unit]) // 2] for unit in joint.order}
    result = joint.score(decisions).result
    assert isinstance(result, JointResult)
    kept = result.strategy.kept_channels(joint.table)
    assert joint.cost(decisions) == BitsStub().network_cost(result.bits.specs(joint.table, kept))
    assert "fc" not in result.bits.weights  # in no prunable group: stays float


def test_joint_result_round_trips(tmp_path: Path) -> None:
    joint = make(JointProblem)
    decisions = {unit: JointDecision(joint.counts(unit)[0], 3, 5) for unit in joint.order}
    result = joint.score(decisions).result
    assert isinstance(result, JointResult)
    result.save(tmp_path / "best_strategy.json")
    assert (tmp_path / "best_bits.json").is_file()
    assert JointResult.load(tmp_path / "best_strategy.json") == result


def test_uniform_bits_is_the_largest_single_width_meeting_the_budget() -> None:
    problem = make(BitsProblem, budget_ratio=0.15)
    assert isinstance(problem, BitsProblem)
    decisions = uniform_bits(problem)
    (pair,) = set(decisions.values())
    assert pair.weight == pair.activation and problem.cost(decisions) <= problem.budget.value
    higher = {unit: BitPair(pair.weight + 1, pair.weight + 1) for unit in problem.order}
    assert problem.cost(higher) > problem.budget.value
    joint = make(JointProblem, budget_ratio=0.1)
    assert isinstance(joint, JointProblem)
    found = uniform_joint(joint, 4)
    assert found is not None and joint.cost(found) <= joint.budget.value


@pytest.mark.parametrize("bits_range", [[1, 8], [2, 9], [8, 2], [2.5, 8], [2], [2, 4, 8], 4, [True, 8]])
def test_bad_bits_range_is_refused_naming_the_key(bits_range: Any) -> None:
    with pytest.raises(UserError, match="search.bits_range"):
        load_config(SMOKE, {"search.bits_range": bits_range})
    if isinstance(bits_range, list) and len(bits_range) == 2:
        with pytest.raises(UserError, match="search.bits_range"):
            Settings(bits_range=tuple(bits_range))  # type: ignore[arg-type]


def test_a_cost_model_blind_to_bits_is_refused() -> None:
    torch.manual_seed(0)
    model = create_model("tiny").eval()
    table = build_layer_table(model, INPUT, "tiny")
    with pytest.raises(UserError, match="does not price bit-widths"):
        BitsProblem(model, table, OutputScorer(model), create_cost_model("macs"), Settings(), None, None, 0.5)


def test_calibration_reads_training_images_only(synthetic_bundle, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[list[torch.Tensor]] = []
    import amc.problem.bits as bits_module

    calibrate = bits_module.calibrate

    def spy(model: nn.Module, names: list[str], batches: list[torch.Tensor], *args: Any) -> Any:
        seen.append(batches)
        return calibrate(model, names, batches, *args)

    monkeypatch.setattr(bits_module, "calibrate", spy)
    torch.manual_seed(0)
    model = create_model("tiny").eval()
    scorer = SearchValScorer.from_datasets(synthetic_bundle.train, synthetic_bundle.search_val, 64, 64)
    problem = BitsProblem(
        model, build_layer_table(model, INPUT, "tiny"), scorer, BitsStub(), Settings(), None, None, 0.3
    )
    problem.score({unit: BitPair(4, 4) for unit in problem.order})
    (batches,) = seen
    train, test = synthetic_bundle.train, synthetic_bundle.test
    seen_in_train = {tuple(image.flatten().tolist()) for image in train.normalise(train.images)}
    held_out = {tuple(image.flatten().tolist()) for image in test.normalise(test.images)}
    images = [tuple(image.flatten().tolist()) for batch in batches for image in batch]
    assert len(images) == 64 and all(image in seen_in_train and image not in held_out for image in images)


def smoke_task(granularity: str, method: str, tmp_path: Path) -> Task:
    config = load_config(
        SMOKE,
        {"search.granularity": granularity, "search.method": method, "search.episodes": 4, "budget.ratio": 0.25,
         "agent.warmup_episodes": 2},
    )  # fmt: skip
    bundle = load_data(config)
    model = load_base_model(config, bundle, progress=False, log=lambda _: None)
    search = config.search
    scorer = SearchValScorer.from_datasets(bundle.train, bundle.search_val, search.eval_images, search.bn_images)
    problem = problem_from_objects(config, model, bundle.input_size, scorer, BitsStub(), bundle.name, False)
    return Task(config, problem, bundle)


@pytest.mark.parametrize("method", ["amc", "random", "uniform", "bayes"])
def test_bits_search_writes_best_bits_within_budget(method: str, tmp_path: Path) -> None:
    task = smoke_task("bits", method, tmp_path)
    run = tmp_path / "run"
    result = run_search(task, run, progress=False, log=lambda _: None)
    best = LayerBits.load(run / "best_bits.json")
    assert best == result.best
    assert BitsStub().network_cost(best.specs(task.problem.table)) <= task.problem.budget.value
    summary = json.loads((run / "summary.json").read_text())
    assert summary["best_cost"] <= summary["budget"]["value"]
    assert (run / "plots" / "best_bits.png").is_file()
    assert not (run / "best_strategy.json").exists()


@pytest.mark.parametrize("method", ["amc", "random", "uniform"])
def test_joint_search_writes_strategy_and_bits(method: str, tmp_path: Path) -> None:
    task = smoke_task("joint", method, tmp_path)
    run = tmp_path / "run"
    result = run_search(task, run, progress=False, log=lambda _: None)
    assert isinstance(result.best, JointResult)
    assert Strategy.load(run / "best_strategy.json") == result.best.strategy
    assert LayerBits.load(run / "best_bits.json") == result.best.bits
    kept = result.best.strategy.kept_channels(task.problem.table)
    assert BitsStub().network_cost(result.best.bits.specs(task.problem.table, kept)) <= task.problem.budget.value


@pytest.mark.parametrize("method", ["sensitivity", "netadapt"])
def test_channel_only_methods_refuse_bits(method: str, tmp_path: Path) -> None:
    task = smoke_task("bits", method, tmp_path)
    with pytest.raises(UserError, match="granularity=bits"):
        run_search(task, tmp_path / "run", progress=False, log=lambda _: None)


def test_random_bits_search_resumes_to_the_same_result(tmp_path: Path) -> None:
    task = smoke_task("bits", "random", tmp_path)
    straight = run_search(task, tmp_path / "straight", progress=False, log=lambda _: None)
    short = replace(task, config=replace(task.config, search=replace(task.config.search, episodes=2)))
    run_search(short, tmp_path / "resumed", progress=False, log=lambda _: None)
    resumed = run_search(task, tmp_path / "resumed", resume=True, progress=False, log=lambda _: None)
    assert resumed.best == straight.best  # accuracy too, to the 6 digits episodes.csv keeps
    assert resumed.best_accuracy == pytest.approx(straight.best_accuracy, abs=1e-6)


@pytest.mark.parametrize(
    ("granularity", "cost_model", "files"),
    [
        ("bits", "size", ("best_bits.json",)),
        ("joint", "bitserial:bitfusion", ("best_strategy.json", "best_bits.json", "best_schedule.yaml")),
    ],
)
def test_amc_search_cli_with_a_bit_aware_cost_model(
    granularity: str, cost_model: str, files: tuple[str, ...], tmp_path: Path
) -> None:
    run = tmp_path / "run"
    arguments = ["search", "--config", SMOKE, "--out", str(run), "--no-progress", "--cost-model", cost_model]
    overrides = [f"search.granularity={granularity}", "search.episodes=4", "agent.warmup_episodes=2"]
    assert main([*arguments, *(item for override in overrides for item in ("--set", override))]) == 0
    for name in files:
        assert (run / name).is_file(), name
    summary = json.loads((run / "summary.json").read_text())
    assert summary["best_cost"] <= summary["budget"]["value"] and summary["cost_model"].startswith(cost_model)
