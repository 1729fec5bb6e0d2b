"""Energy-aware pruning on the tiny model: meets an energy budget, cuts in order of energy (oracle: the cost model's
own per-layer prices), resumes to the uninterrupted run, refuses non-energy cost models and bad tolerances."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import pytest

from amc.cli.main import main
from amc.config import load_config
from amc.errors import UserError
from amc.graph import LayerTable
from amc.problem import ChannelProblem, Task, build_task
from amc.pruning import Strategy
from amc.search import energy_aware
from amc.search.energy_aware import CUTS_FILE, STATE_FILE, rank
from amc.search.methods import run_search
from hwmodel import CostModel, LayerSpec
from hwmodel.base import CachedCostModel
from tests.problem_fixtures import tiny_problem

SMOKE = "configs/smoke.yaml"
ENERGY = {"search.method": "energy-aware", "cost.model": "energy:eyeriss"}


def task_for(**overrides: object) -> Task:
    return build_task(load_config(SMOKE, {**ENERGY, **overrides}), progress=False, log=lambda _: None)


def search(run: Path, resume: bool = False, task: Task | None = None) -> None:
    run_search(task or task_for(), run, resume=resume, progress=False, log=lambda _: None)


def rows(run: Path) -> list[dict[str, str]]:
    with (run / "episodes.csv").open() as handle:
        return list(csv.DictReader(handle))


def cuts(run: Path) -> list[dict[str, str]]:
    with (run / CUTS_FILE).open() as handle:
        return list(csv.DictReader(handle))


def decisions(run: Path) -> list[tuple[str, ...]]:
    """What must repeat exactly: every row but its wall times."""
    return [tuple(value for key, value in row.items() if not key.endswith("_s")) for row in rows(run)]


def oracle_energy(table: LayerTable, cost_model: CostModel) -> dict[int, float]:
    """Per prunable group, the dense price of every layer that produces or reads its channels, by the cost model."""
    return {
        group.index: sum(
            cost_model.layer_cost(layer.spec)
            for layer in table.layers
            if layer.out_group == group.index or group.index in [source for source, _ in layer.in_sources]
        )
        for group in table.prunable_groups
    }


def first_cut_leader(run: Path) -> str:
    pruned = [key for key, value in rows(run)[0].items() if key.startswith("keep:") and float(value) < 1]
    assert len(pruned) == 1, pruned
    return pruned[0].removeprefix("keep:")


class ByWidth(CachedCostModel):
    """A stand-in energy model in which wide layers are dear: (in x out channels) squared, so the tiny model's
    last group, not its first, is the most energy-hungry."""

    def __init__(self) -> None:
        super().__init__("by-width", "energy")

    def _price(self, spec: LayerSpec) -> float:
        return 1e-9 * (spec.in_channels * spec.out_channels) ** 2


def test_meets_the_budget_and_writes_the_run_folder(tmp_path: Path) -> None:
    run = tmp_path / "run"
    settings = [f"--set={key}={value}" for key, value in ENERGY.items()]
    assert main(["search", "--config", SMOKE, "--out", str(run), "--no-progress", *settings]) == 0
    for name in ("config.yaml", "episodes.csv", "best_strategy.json", "best_schedule.yaml", "summary.json", STATE_FILE,
                 CUTS_FILE):  # fmt: skip
        assert (run / name).is_file(), name
    summary = json.loads((run / "summary.json").read_text())
    assert summary["method"] == "energy-aware" and summary["budget"]["metric"] == "energy"
    assert Strategy.load(run / "best_strategy.json").metadata.cost == summary["best_cost"] <= summary["budget"]["value"]
    accepted = cuts(run)
    assert float(accepted[-1]["cost"]) <= summary["budget"]["value"] < float(accepted[-2]["cost"])
    for cut in accepted:
        assert float(cut["drop"]) <= float(cut["tolerance"]) == pytest.approx(0.01 * 2 ** (int(cut["pass"]) - 1))
    costs = [float(cut["cost"]) for cut in accepted]
    assert costs == sorted(costs, reverse=True)
    assert len({tuple(row.values())[-3:] for row in rows(run)}) == len(rows(run))  # no variant scored twice


def test_first_cut_is_the_most_energy_hungry_group(tmp_path: Path) -> None:
    task = task_for()
    problem = task.problem
    energy = oracle_energy(problem.table, problem.cost_model)
    search(tmp_path / "run", task=task)
    assert first_cut_leader(tmp_path / "run") == problem.table.groups[max(energy, key=energy.__getitem__)].leader


def test_order_follows_energy_not_step_order(tmp_path: Path) -> None:
    problem = tiny_problem(cost_model="macs")
    problem = ChannelProblem(problem.model, problem.table, problem.scorer, ByWidth(), problem.settings)
    energy = oracle_energy(problem.table, problem.cost_model)
    expected = sorted(energy, key=lambda g: -energy[g])
    assert expected != list(problem.order)  # the oracle tells energy order from step order
    assert rank(problem, {}) == expected
    task = Task(load_config(SMOKE, {**ENERGY, "search.rerank_top": 0}), problem)
    search(tmp_path / "run", task=task)
    assert first_cut_leader(tmp_path / "run") == problem.table.groups[expected[0]].leader
    cut = {expected[0]: problem.candidates[expected[0]][0]}  # re-ranked at other decisions, by their prices
    table, model = problem.table, problem.cost_model
    priced = {
        g: sum(model.layer_cost(table.layers[i].spec.with_channels(*table.layer_channels(i, cut)))
               for i in energy_aware.group_layers(problem, g))
        for g in problem.order
    }  # fmt: skip
    assert rank(problem, cut) == sorted(priced, key=lambda g: -priced[g])


@pytest.mark.parametrize("killed_at", [2, 5])
def test_resume_gives_the_uninterrupted_run(killed_at: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    search(tmp_path / "straight")
    step = energy_aware.step
    calls = {"n": 0}

    def killed(*args, **kwargs):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if calls["n"] == killed_at:
            raise KeyboardInterrupt
        return step(*args, **kwargs)

    monkeypatch.setattr(energy_aware, "step", killed)
    with pytest.raises(KeyboardInterrupt):
        search(tmp_path / "run")
    assert 0 < len(rows(tmp_path / "run")) < len(rows(tmp_path / "straight"))
    monkeypatch.setattr(energy_aware, "step", step)
    search(tmp_path / "run", resume=True)
    assert decisions(tmp_path / "run") == decisions(tmp_path / "straight")
    for name in (CUTS_FILE, Path("best_strategy.json")):
        assert (tmp_path / "run" / name).read_text() == (tmp_path / "straight" / name).read_text()


@pytest.mark.parametrize("cost_model", ["macs", "roofline:rpi4-a72", "sparse:macs"])
def test_a_cost_model_without_energy_is_refused_before_any_work(cost_model: str) -> None:
    with pytest.raises(UserError, match=rf"energy-aware.*{cost_model}.*does not price energy") as error:
        load_config(SMOKE, {**ENERGY, "cost.model": cost_model})
    assert "energy:<preset>" in error.value.fix


def test_a_non_energy_cost_model_object_is_refused(tmp_path: Path) -> None:
    """A caller's own cost model object is not named in the config: the search checks what it prices."""
    task = Task(load_config(SMOKE, {"search.method": "energy-aware"}, check_cost_model=False), tiny_problem())
    with pytest.raises(UserError, match=r"prices macs \(MACs\)"):
        search(tmp_path / "run", task=task)
    assert not (tmp_path / "run" / "episodes.csv").exists()


@pytest.mark.parametrize(
    ("key", "value"),
    [("max_drop", math.nan), ("max_drop", -0.01), ("max_drop", 0.0), ("max_drop", 1.5), ("growth", 1.0),
     ("growth", math.nan), ("growth", math.inf)],
)  # fmt: skip
def test_bad_tolerance_is_refused(key: str, value: float) -> None:
    with pytest.raises(UserError, match=rf"search\.energy_aware\.{key} is {value!r}; it must be"):
        load_config(SMOKE, {**ENERGY, f"search.energy_aware.{key}": value})


def test_energy_models_are_accepted() -> None:
    for name in ("energy:horowitz45", "sparse:energy:eyeriss", "bitserial-energy:bitfusion"):
        assert load_config(SMOKE, {**ENERGY, "cost.model": name}).cost.model == name
