"""Iterative pruning (`search.stages`): stage budgets, the composed strategy, resume, `amc evaluate`, bad values."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from amc.cli.main import main
from amc.config import load_config
from amc.errors import UserError
from amc.graph import build_layer_table
from amc.problem import build_task
from amc.pruning import Strategy
from amc.pruning.export import load_thinned
from amc.search import methods
from amc.search.methods import run_search
from amc.search.stages import stage_budgets

SMOKE = "configs/smoke.yaml"
SETTINGS = {
    "search.method": "random", "search.episodes": 4, "search.stages": 2, "budget.ratio": 0.3,
    "search.rerank_top": 0, "search.verify_top": 0, "finetune.epochs": 1,
}  # fmt: skip


def staged(out: Path, resume: bool = False, **more: object) -> dict:
    config = load_config(SMOKE, {**SETTINGS, **more})
    run_search(build_task(config, progress=False), out, resume=resume, progress=False, log=lambda _: None)
    return json.loads((out / "summary.json").read_text())


def test_stage_budgets_are_geometric() -> None:
    assert stage_budgets(100.0, 25.0, 2) == pytest.approx([50.0, 25.0])
    assert stage_budgets(8.0, 1.0, 3) == pytest.approx([4.0, 2.0, 1.0])


def test_two_stages_meet_the_budget_and_compose(tmp_path: Path) -> None:
    run = tmp_path / "run"
    summary = staged(run)
    dense = summary["dense_cost"]
    assert summary["stages"] == 2 and summary["budget"] == pytest.approx(0.3 * dense)
    budgets = [stage["budget"] for stage in summary["stage"]]
    assert budgets == pytest.approx([math.sqrt(0.3) * dense, 0.3 * dense])
    for stage in summary["stage"]:
        assert stage["cost"] <= stage["budget"] * (1 + 1e-9)
    assert summary["final"]["cost"] <= 0.3 * dense * (1 + 1e-9)
    assert summary["stage"][0]["search_val_after"] is not None and summary["stage"][1]["search_val_after"] is None
    # stage 2 searched stage 1's fine-tuned network, whose cost is what stage 1 reached
    assert summary["stage"][1]["input_cost"] == pytest.approx(summary["stage"][0]["cost"])
    for number in (1, 2):
        assert (run / f"stage_{number}" / "best_strategy.json").is_file()
        assert load_config(run / f"stage_{number}" / "config.yaml").budget.value == pytest.approx(budgets[number - 1])
    assert (run / "stage_1" / "finetuned" / "architecture.json").is_file()
    # composed keep per layer = product of the stages' kept shares = final channels / original channels
    first = Strategy.load(run / "stage_1" / "best_strategy.json").keep_ratios()
    second = Strategy.load(run / "stage_2" / "best_strategy.json").keep_ratios()
    composed = Strategy.load(run / "composed_strategy.json")
    final = build_layer_table(load_thinned(run / "final"), (3, 32, 32))
    for layer in composed.layers:
        assert layer.kept / layer.channels == pytest.approx(first[layer.name] * second[layer.name])
        assert final.layer(layer.name).spec.out_channels == layer.kept
    assert summary["final"]["keep_ratios"] == pytest.approx(composed.keep_ratios())


def test_resume_after_stage_one_equals_uninterrupted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    whole = staged(tmp_path / "whole")
    real, description = methods.METHODS["random"]
    calls: list[Path] = []

    def killed_in_stage_two(task, out, **kwargs):  # type: ignore[no-untyped-def]
        calls.append(Path(out))
        if Path(out).name == "stage_2":
            raise KeyboardInterrupt
        return real(task, out, **kwargs)

    monkeypatch.setitem(methods.METHODS, "random", (killed_in_stage_two, description))
    with pytest.raises(KeyboardInterrupt):
        staged(tmp_path / "killed")
    assert (tmp_path / "killed" / "stage_1" / "stage.json").is_file()
    assert not (tmp_path / "killed" / "summary.json").exists()
    with pytest.raises(UserError, match="already holds a staged search"):
        staged(tmp_path / "killed")  # without --resume
    calls.clear()

    def counted(task, out, **kwargs):  # type: ignore[no-untyped-def]
        calls.append(Path(out))
        return real(task, out, **kwargs)

    monkeypatch.setitem(methods.METHODS, "random", (counted, description))
    resumed = staged(tmp_path / "killed", resume=True)
    assert [path.name for path in calls] == ["stage_2"]  # stage 1 not redone
    for key in ("stage", "final", "dense_cost", "budget"):
        assert _without_times(resumed[key]) == _without_times(whole[key])
    assert resumed["final"]["kept_channels"] == whole["final"]["kept_channels"]
    with pytest.raises(UserError, match="budget.ratio"):
        staged(tmp_path / "killed", resume=True, **{"budget.ratio": 0.4})


VARYING = ("wall_s", "_ms", "evaluate")
"""Summary keys that differ between two runs of the same search: times and the run folder's path."""


def _without_times(value: object) -> object:
    if isinstance(value, dict):
        return {
            key: _without_times(item) for key, item in value.items() if not key.endswith(("wall_s", "_ms", "evaluate"))
        }
    if isinstance(value, list):
        return [_without_times(item) for item in value]
    return value


def test_evaluate_takes_the_final_network(tmp_path: Path) -> None:
    run = tmp_path / "run"
    summary = staged(run)
    out = tmp_path / "evaluate"
    assert main(["evaluate", str(run), "--out", str(out), "--no-onnx", "--no-progress", "--finetune-epochs", "1"]) == 0
    evaluation = json.loads((out / "evaluation.json").read_text())
    size = tuple(json.loads((run / "final" / "architecture.json").read_text())["input_size"])
    final = build_layer_table(load_thinned(run / "final"), size)
    assert evaluation["macs"] == final.total_macs  # the final stage's network, not a strategy on the base model
    assert evaluation["cost"] == pytest.approx(summary["final"]["cost"])


@pytest.mark.parametrize("stages", [0, 11])
def test_stages_out_of_range_refused(stages: int) -> None:
    with pytest.raises(UserError, match="search.stages"):
        load_config(SMOKE, {"search.stages": stages})


def test_stages_refuse_granularities_that_do_not_thin() -> None:
    with pytest.raises(UserError, match="search.stages"):
        load_config(SMOKE, {"search.stages": 2, "search.granularity": "element", "cost.model": "sparse:macs"})


def test_unfinished_staged_run_is_refused_by_evaluate(tmp_path: Path) -> None:
    (tmp_path / "stage_1").mkdir()
    assert main(["evaluate", str(tmp_path), "--no-progress"]) == 2
