"""Re-ranking before choosing: the best few candidates re-scored on the whole search-val split."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from torch import nn

from amc.config import load_config
from amc.problem import build_task
from amc.pruning import Strategy
from amc.search.candidates import row_decisions
from amc.search.methods import run_search
from amc.search.rerank import rerank
from amc.search.run_folder import EpisodeRow

SMOKE = "configs/smoke.yaml"


def search(run: Path, **overrides: object) -> tuple[dict, list[str]]:
    settings = {"search.method": "random", "search.episodes": 10, "budget.ratio": 0.6, **overrides}
    task = build_task(load_config(SMOKE, settings), progress=False, log=lambda _: None)
    lines: list[str] = []
    run_search(task, run, progress=False, log=lines.append)
    return json.loads((run / "summary.json").read_text()), lines


def test_the_best_candidates_are_re_scored_on_the_whole_split(tmp_path: Path) -> None:
    summary, lines = search(tmp_path / "run")
    ranking = summary["rerank"]
    config = load_config(SMOKE)
    assert ranking["images"] == config.data.search_val_size > ranking["search_images"] == config.search.eval_images
    candidates = ranking["candidates"]
    assert 2 <= len(candidates) <= 5
    # the search's order (episodes.csv keeps six digits)
    assert candidates[0]["search_accuracy"] == pytest.approx(max(c["search_accuracy"] for c in candidates), abs=1e-6)
    chosen = candidates[ranking["chosen"]]
    assert chosen["accuracy"] == max(c["accuracy"] for c in candidates)
    assert summary["best_episode"] == chosen["episode"]
    assert summary["best_accuracy"] == pytest.approx(chosen["search_accuracy"], abs=1e-6)  # both scores kept
    assert summary["best_accuracy_whole_split"] == chosen["accuracy"]
    assert any(line.startswith("re-ranked the best") for line in lines)
    kept = tmp_path / "run" / "best_by_search_score_strategy.json"
    assert kept.exists() == (ranking["chosen"] != 0)


def test_re_ranking_is_off_at_zero(tmp_path: Path) -> None:
    summary, _ = search(tmp_path / "run", **{"search.rerank_top": 0})
    assert "rerank" not in summary and "best_accuracy_whole_split" not in summary


def test_the_whole_split_score_is_the_plain_score_of_the_same_variant(tmp_path: Path) -> None:
    """The re-scored accuracy is the scorer's on every search-val image, same BN images, same channel selection."""
    summary, _ = search(tmp_path / "run", **{"search.rerank_top": 2})
    task = build_task(load_config(SMOKE, {"budget.ratio": 0.6}), progress=False, log=lambda _: None)
    problem, data = task.problem, task.data
    assert data is not None
    best = Strategy.load(tmp_path / "run" / "best_strategy.json")
    kept = best.kept_channels(problem.table)
    decisions = {unit: kept[unit] for unit in problem.order}
    whole = problem.scorer.on_whole(data.search_val)  # type: ignore[attr-defined]
    assert whole.images == len(data.search_val)  # type: ignore[arg-type]
    assert whole.bn_batches is problem.scorer.bn_batches
    expected = summary["best_accuracy_whole_split"]
    assert whole(problem.apply(decisions)) == pytest.approx(expected, abs=1e-12)


def _params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def test_rerank_picks_the_best_on_the_whole_split_and_breaks_ties_in_search_order(make_problem) -> None:
    problem = make_problem()
    candidates = []
    for episode, share in enumerate((1.0, 0.75, 0.5)):
        decisions = {unit: max(v for v in problem.candidates[unit] if problem.ratio(unit, v) <= share)
                     for unit in problem.order}  # fmt: skip
        accuracy = 0.9 - 0.1 * episode
        row = EpisodeRow(episode, accuracy, accuracy, problem.cost(decisions), problem.budget.value,
                         problem.keep_ratios(decisions), 0.0)  # fmt: skip
        assert row_decisions(problem, row) == decisions
        candidates.append((row, None, decisions))
    whole = (0.70, 0.80, 0.80)  # episodes 1 and 2 tie on the whole split: the search's order decides
    by_size = {_params(problem.apply(d)): acc for (_, _, d), acc in zip(candidates, whole)}
    assert len(by_size) == 3

    ranking = rerank(problem, candidates, lambda model: by_size[_params(model)], 10)  # type: ignore[arg-type]
    assert ranking.chosen == 1 and ranking.order == [1, 2, 0]
    assert [c.accuracy for c in ranking.candidates] == list(whole)
    assert [c.search_accuracy for c in ranking.candidates] == [0.9, 0.8, 0.7]
    assert "episode 1 is best" in ranking.verdict()
