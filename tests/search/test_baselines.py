"""NetAdapt and the baselines on the smoke config: same budget, same outputs, resume, executors, bad input."""

from __future__ import annotations

import csv
import json
from dataclasses import replace
from pathlib import Path

import pytest

from amc.cli.main import main
from amc.config import load_config
from amc.errors import UserError
from amc.problem import Task, build_task
from amc.pruning import LayerDensities, Strategy
from amc.search.baselines import sensitivity
from amc.search.baselines.common import channel_problem
from amc.search.baselines.sensitivity import keep_at_drop
from amc.search.baselines.uniform import uniform_keep, uniform_kept
from amc.search.methods import run_search
from amc.search.netadapt import ITERATIONS_FILE, iteration_target

SMOKE = "configs/smoke.yaml"
BASELINES = ("netadapt", "uniform", "sensitivity", "random", "bayes")
FAST = {"search.netadapt.step": 0.1, "search.netadapt.finetune_steps": 2}
"""NetAdapt in a handful of iterations on the tiny model."""


def task_for(method: str, **overrides: object) -> Task:
    config = load_config(SMOKE, {"search.method": method, **FAST, **overrides})
    return build_task(config, progress=False, log=lambda _: None)


def search(method: str, run: Path, resume: bool = False, **overrides: object) -> None:
    run_search(task_for(method, **overrides), run, resume=resume, progress=False, log=lambda _: None)


def rows(run: Path) -> list[dict[str, str]]:
    with (run / "episodes.csv").open() as handle:
        return list(csv.DictReader(handle))


def decisions(run: Path) -> list[tuple[str, ...]]:
    """What must repeat exactly: every row but its wall times."""
    return [tuple(value for key, value in row.items() if not key.endswith("_s")) for row in rows(run)]


def scores(run: Path) -> list[tuple[str, str]]:
    return [(row["accuracy"], row["cost"]) for row in rows(run)]


@pytest.mark.parametrize("method", BASELINES)
def test_method_meets_the_budget_and_writes_the_run_folder(method: str, tmp_path: Path) -> None:
    run = tmp_path / "run"
    settings = [f"--set={key}={value}" for key, value in FAST.items()]
    assert main(["search", "--config", SMOKE, "--method", method, "--out", str(run), "--no-progress", *settings]) == 0
    for name in ("config.yaml", "episodes.csv", "best_strategy.json", "best_schedule.yaml", "summary.json",
                 "plots/search_progress.png", "plots/best_keep_ratios.png"):  # fmt: skip
        assert (run / name).is_file(), name
    summary = json.loads((run / "summary.json").read_text())
    best = Strategy.load(run / "best_strategy.json")
    assert summary["method"] == method
    assert best.metadata.cost == summary["best_cost"] <= summary["budget"]["value"]
    within = [float(row["accuracy"]) for row in rows(run) if float(row["cost"]) <= float(row["budget"])]
    assert summary["best_accuracy"] == pytest.approx(max(within), abs=1e-6)
    assert load_config(run / "config.yaml").search.method == method


@pytest.mark.parametrize("method", ["random", "bayes"])
def test_random_and_bayes_search_element_wise_densities(method: str, tmp_path: Path) -> None:
    """Methods that play actions through problem.clip work on any problem, the element-wise one included."""
    run = tmp_path / "run"
    search(method, run, **{"search.granularity": "element", "cost.model": "sparse:macs", "search.episodes": 4})
    densities = LayerDensities.load(run / "best_densities.json")
    summary = json.loads((run / "summary.json").read_text())
    assert len(rows(run)) == 4 and summary["best_cost"] <= summary["budget"]["value"]
    assert densities.densities and all(0.2 - 1e-9 <= d < 1.0 for d in densities.densities.values())
    assert [column for column in rows(run)[0] if column.startswith("keep:")] == [
        "keep:stem.0", "keep:conv1", "keep:conv2", "keep:down.0", "keep:fc",
    ]  # fmt: skip


@pytest.mark.parametrize("method", ["uniform", "sensitivity", "netadapt"])
def test_channel_methods_refuse_element_wise(method: str, tmp_path: Path) -> None:
    with pytest.raises(UserError, match=r"prunes channels.*granularity=element"):
        search(method, tmp_path / "run", **{"search.granularity": "element", "cost.model": "sparse:macs"})


def test_random_trials_resume_to_the_straight_run(tmp_path: Path) -> None:
    search("random", tmp_path / "straight")
    search("random", tmp_path / "run", **{"search.episodes": 3})
    search("random", tmp_path / "run", resume=True)
    assert decisions(tmp_path / "run") == decisions(tmp_path / "straight")


def test_bayes_trials_resume_to_the_straight_run(tmp_path: Path) -> None:
    search("bayes", tmp_path / "straight", **{"search.episodes": 12})  # beyond TPE's 10 random start-up trials
    search("bayes", tmp_path / "run", **{"search.episodes": 11})
    search("bayes", tmp_path / "run", resume=True, **{"search.episodes": 12})
    assert decisions(tmp_path / "run") == decisions(tmp_path / "straight")
    assert (tmp_path / "run" / "study.db").is_file()


def test_netadapt_resumes_from_the_last_finished_iteration(tmp_path: Path) -> None:
    search("netadapt", tmp_path / "straight")
    with pytest.raises(UserError, match=r"netadapt\.max_iterations"):
        search("netadapt", tmp_path / "run", **{"search.netadapt.max_iterations": 1})
    assert (tmp_path / "run" / "netadapt" / "state.pt").is_file()
    search("netadapt", tmp_path / "run", resume=True)
    assert decisions(tmp_path / "run") == decisions(tmp_path / "straight")
    assert (tmp_path / "run" / ITERATIONS_FILE).read_text() == (tmp_path / "straight" / ITERATIONS_FILE).read_text()


def test_netadapt_targets_decay_and_are_met(tmp_path: Path) -> None:
    assert iteration_target(100.0, 200.0, 1, 0.025, 0.96, 10.0) == pytest.approx(95.0)
    assert iteration_target(100.0, 200.0, 3, 0.025, 0.96, 10.0) == pytest.approx(100.0 - 5.0 * 0.96**2)
    assert iteration_target(12.0, 200.0, 1, 0.025, 0.96, 10.0) == 10.0  # never below the budget
    search("netadapt", tmp_path / "run")
    with (tmp_path / "run" / ITERATIONS_FILE).open() as handle:
        iterations = list(csv.DictReader(handle))
    assert len(iterations) >= 2
    for line in iterations:
        assert float(line["cost"]) <= float(line["target"])
    costs = [float(line["cost"]) for line in iterations]
    assert costs == sorted(costs, reverse=True)


def test_sensitivity_sweep_resumes_after_a_kill(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    search("sensitivity", tmp_path / "straight")
    score_point = sensitivity.score_point
    calls = {"n": 0}

    def killed_at_the_fourth_point(env, point):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if calls["n"] == 4:
            raise KeyboardInterrupt
        return score_point(env, point)

    monkeypatch.setattr(sensitivity, "score_point", killed_at_the_fourth_point)
    with pytest.raises(KeyboardInterrupt):
        search("sensitivity", tmp_path / "run")
    with (tmp_path / "run" / "sensitivity.csv").open() as handle:
        assert len(list(csv.DictReader(handle))) == 3
    monkeypatch.setattr(sensitivity, "score_point", score_point)
    search("sensitivity", tmp_path / "run", resume=True)
    for name in ("sensitivity.csv", "best_strategy.json"):
        assert (tmp_path / "run" / name).read_text() == (tmp_path / "straight" / name).read_text()
    assert (tmp_path / "run" / "plots" / "sensitivity.png").is_file()


def test_keep_at_drop_interpolates_the_curve() -> None:
    curve = [(1.0, 0.9), (0.5, 0.8), (0.25, 0.4)]
    assert keep_at_drop(curve, 0.9) == 1.0
    assert keep_at_drop(curve, 0.85) == pytest.approx(0.75)
    assert keep_at_drop(curve, 0.6) == pytest.approx(0.375)
    assert keep_at_drop(curve, 0.1) == 0.25


def test_uniform_bisection_meets_the_budget_tightly() -> None:
    problem = channel_problem(task_for("uniform", **{"search.round_to": 1}))
    keep = uniform_keep(problem)
    budget = problem.budget.value
    assert problem.cost(uniform_kept(problem, keep)) <= budget < problem.cost(uniform_kept(problem, keep + 1e-6))


@pytest.mark.parametrize("method", BASELINES)
def test_infeasible_budget_is_refused(method: str, tmp_path: Path) -> None:
    with pytest.raises(UserError, match="cannot be met"):
        search(method, tmp_path / "run", **{"budget.ratio": 0.01})


@pytest.mark.parametrize("method", ["random", "netadapt"])
def test_worker_processes_give_the_serial_results(method: str, tmp_path: Path) -> None:
    search(method, tmp_path / "serial")
    search(method, tmp_path / "workers", **{"search.workers": 2})
    assert scores(tmp_path / "workers") == scores(tmp_path / "serial")


@pytest.mark.slow
def test_ray_gives_the_serial_results(tmp_path: Path) -> None:
    ray = pytest.importorskip("ray", reason="ray is not installed (pip install 'amc-toolkit[ray]')")
    search("random", tmp_path / "serial")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        search("random", tmp_path / "ray", **{"search.workers": 2, "search.executor": "ray"})
    finally:
        ray.shutdown()
    assert scores(tmp_path / "ray") == scores(tmp_path / "serial")


def test_netadapt_without_training_data_needs_no_fine_tune(tmp_path: Path) -> None:
    task = replace(task_for("netadapt"), data=None)  # the Python API's path: a model and an evaluator only
    with pytest.raises(UserError, match=r"netadapt\.finetune_steps=0"):
        run_search(task, tmp_path / "a", progress=False, log=lambda _: None)
    task = replace(task, config=load_config(SMOKE, {"search.method": "netadapt", "search.netadapt.step": 0.1,
                                                    "search.netadapt.finetune_steps": 0}))  # fmt: skip
    assert run_search(task, tmp_path / "b", progress=False, log=lambda _: None).best_cost <= task_budget(tmp_path / "b")


def task_budget(run: Path) -> float:
    return json.loads((run / "summary.json").read_text())["budget"]["value"]


@pytest.mark.parametrize(
    ("override", "message"),
    [("search.method=annealing", "search.method"), ("search.executor=dask", "search.executor"),
     ("search.workers=0", "search.workers")],
)  # fmt: skip
def test_bad_settings_exit_2_with_a_clear_message(override: str, message: str, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture) -> None:  # fmt: skip
    method = [] if override.startswith("search.method") else ["--method", "random"]
    code = main(
        ["search", "--config", SMOKE, *method, "--out", str(tmp_path / "run"), "--no-progress", "--set", override]
    )
    err = " ".join(capsys.readouterr().err.split())
    assert code == 2 and message in err and "Traceback" not in err
