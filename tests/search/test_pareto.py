"""Budget-conditioned AMC (agent.budget_range), `amc pareto` and policy transfer, on the smoke config."""

from __future__ import annotations

import csv
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from amc.config import load_config
from amc.errors import UserError
from amc.problem import build_task
from amc.pruning import Strategy
from amc.search.methods import run_search
from amc.search.pareto import COLUMNS, parse_budgets, read_pareto, run_pareto
from envs import ChannelPruningEnv

SMOKE = Path(__file__).resolve().parents[2] / "configs" / "smoke.yaml"
CONDITIONED = {"agent.budget_range": [0.3, 0.8]}


def _search(out: Path, **overrides: object) -> Path:
    config = load_config(SMOKE, {**CONDITIONED, **overrides})
    run_search(build_task(config, progress=False, log=lambda _: None), out, progress=False, log=lambda _: None)
    return out


def _episodes(run: Path) -> list[dict[str, str]]:
    with (run / "episodes.csv").open() as handle:
        return [{key: value for key, value in row.items() if not key.endswith("_s")} for row in csv.DictReader(handle)]


@pytest.fixture(scope="module")
def conditioned_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _search(tmp_path_factory.mktemp("pareto") / "run")


def test_budget_field_only_when_conditioned() -> None:
    task = build_task(load_config(SMOKE), progress=False, log=lambda _: None)
    plain = ChannelPruningEnv(task.problem)
    assert plain.reset()[0].shape == (13,)
    configured = task.problem.budget
    env = ChannelPruningEnv(task.problem, (0.3, 0.8), seed=7)
    first = [env.reset()[0][-1] for _ in range(4)]
    assert env.observation_space.shape == (14,)
    expected = [np.random.default_rng((7, episode)).uniform(0.3, 0.8) for episode in range(4)]
    assert first == pytest.approx(expected, abs=1e-6)  # the observed budget is the drawn one, from (seed, episode)
    assert task.problem.budget.ratio == pytest.approx(expected[-1])
    assert len({round(value, 6) for value in first}) == 4
    task.problem.budget = configured
    fixed = ChannelPruningEnv(task.problem, observe_budget=True)
    assert fixed.reset()[0][-1] == pytest.approx(configured.ratio)


def test_conditioned_run_records_each_budget_and_best_meets_the_configs(conditioned_run: Path) -> None:
    rows = _episodes(conditioned_run)
    summary = json.loads((conditioned_run / "summary.json").read_text())
    dense = summary["budget"]["dense_cost"]
    ratios = [float(row["budget"]) / dense for row in rows]
    assert all(0.3 <= ratio <= 0.8 for ratio in ratios) and len(set(ratios)) == len(ratios)
    assert all(float(row["cost"]) <= float(row["budget"]) * (1 + 1e-6) for row in rows)
    assert summary["conditioned"]["budget_range"] == [0.3, 0.8]
    assert summary["best_cost"] <= summary["budget"]["value"]  # the best meets budget.ratio, whatever it drew


def test_conditioned_run_resumes_bit_identically(conditioned_run: Path, tmp_path: Path) -> None:
    _search(tmp_path / "split", **{"search.episodes": 4})
    config = load_config(SMOKE, CONDITIONED)
    task = build_task(config, progress=False, log=lambda _: None)
    run_search(task, tmp_path / "split", resume=True, progress=False, log=lambda _: None)
    assert _episodes(tmp_path / "split") == _episodes(conditioned_run)


def test_budget_range_refused_when_out_of_range_or_unreachable(tmp_path: Path) -> None:
    for bad in ([0.8, 0.3], [0.0, 0.5], [0.3, 1.5], [0.5], [float("nan"), 0.5]):
        with pytest.raises(UserError, match="agent.budget_range"):
            load_config(SMOKE, {"agent.budget_range": bad})
    with pytest.raises(UserError, match="agent.budget_range starts at 0.01"):
        _search(tmp_path / "low", **{"agent.budget_range": [0.01, 0.5]})


def test_pareto_strategies_meet_their_budgets(conditioned_run: Path, tmp_path: Path) -> None:
    run_config = load_config(conditioned_run / "config.yaml")
    task = build_task(run_config, progress=False, log=lambda _: None)
    out = tmp_path / "pareto"
    budgets = (0.35, 0.5, 0.7)
    rows = run_pareto(task, conditioned_run / "agent" / "agent.pt", run_config.agent, budgets, out, refine=2,
                      progress=False, log=lambda _: None)  # fmt: skip
    written = read_pareto(out / "pareto.csv")
    assert tuple(written[0]) == COLUMNS and len(written) == 3 and (out / "pareto.png").is_file()
    problem = task.problem
    assert problem.budget.ratio == pytest.approx(0.5)  # restored after the sweep
    for row, ratio in zip(rows, budgets):
        strategy = Strategy.load(out / row.strategy)
        cost = problem.cost(problem.decisions_of(strategy))
        assert cost == pytest.approx(row.cost) and cost <= ratio * problem.dense_cost
        assert row.uniform_cost <= ratio * problem.dense_cost
        assert (out / row.schedule).read_text().startswith(("version", "#", "pruners"))
    assert [float(r["budget"]) for r in written] == list(budgets)


def test_pareto_transfers_to_another_network(conditioned_run: Path, tmp_path: Path) -> None:
    run_config = load_config(conditioned_run / "config.yaml")
    target = load_config(SMOKE, {"model.name": "mobilenetv2", "model.checkpoint": "none", "search.eval_images": 64})
    task = build_task(target, progress=False, log=lambda _: None)
    rows = run_pareto(task, conditioned_run / "agent" / "agent.pt", run_config.agent, (0.5,), tmp_path / "t",
                      progress=False, log=lambda _: None)  # fmt: skip
    strategy = Strategy.load(tmp_path / "t" / rows[0].strategy)
    assert strategy.metadata.model == "mobilenetv2"
    assert task.problem.cost(task.problem.decisions_of(strategy)) <= 0.5 * task.problem.dense_cost


def test_pareto_refuses_a_policy_of_another_observation(conditioned_run: Path, tmp_path: Path) -> None:
    run_config = load_config(conditioned_run / "config.yaml")
    task = build_task(run_config, progress=False, log=lambda _: None)
    unconditioned = replace(run_config.agent, budget_range=None)  # the env then has no budget field: 13 vs 14
    with pytest.raises(UserError, match="reads 14 numbers per step, but this problem's observation has 13"):
        run_pareto(task, conditioned_run / "agent" / "agent.pt", unconditioned, (0.5,), tmp_path / "x",
                   progress=False, log=lambda _: None)  # fmt: skip


@pytest.mark.parametrize("text", ["", "0,0.5", "0.5,1.5", "half", "nan", "0.5,-0.1"])
def test_bad_budgets_refused(text: str) -> None:
    with pytest.raises(UserError, match="--budgets"):
        parse_budgets(text)


def test_budgets_parsed_sorted_and_distinct() -> None:
    assert parse_budgets(" 0.7,0.3,0.5,0.3 ") == (0.3, 0.5, 0.7)


def test_cli_pareto_writes_the_front(conditioned_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from amc.cli.main import main

    assert main(["pareto", str(conditioned_run), "--budgets", "0.4,0.6", "--out", str(tmp_path), "--no-progress"]) == 0
    assert [row["budget"] for row in read_pareto(tmp_path / "pareto.csv")] == ["0.4", "0.6"]
    assert main(["pareto", str(conditioned_run), "--budgets", "0.4,2"]) == 2
    assert "--budgets: 2 is outside (0, 1]" in capsys.readouterr().err
