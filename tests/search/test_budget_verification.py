"""After a search priced by a LUT measured here: the best candidates re-measured, and a fallback when the best
misses the budget on the device."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

import pytest
from torch import nn

from amc.config import load_config
from amc.costs.latency_tables import Grid, build_lut, load_network
from amc.problem import build_task
from amc.pruning import Strategy
from amc.search.methods import run_search
from amc.search.verify import BY_COST_MODEL_FILE
from hwmodel.lut import Measurement

SMOKE = "configs/smoke.yaml"


@pytest.fixture(scope="module")
def lut_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("lut") / "tiny.json"
    build_lut(load_network("tiny"), path, "torch", 1, Grid(4, 0.2), warmup=1, repeats=3, calibrate=2,
              progress=False, log=lambda _: None, rounds=1)  # fmt: skip
    return path


class ScriptedBackend:
    """Times networks as scripted: dense first, then the candidates in the order they are handed over."""

    def __init__(self, times: list[float]) -> None:
        self.times = times
        self.calls: list[int] = []

    def measure_networks(self, models: Iterable[nn.Module], input_shape: tuple[int, ...], rounds: int = 3):
        count = len(list(models))
        self.calls.append(count)
        return [Measurement(self.times[min(i, len(self.times) - 1)], 0.0, 0.0, 1) for i in range(count)]


def search(lut: Path, run: Path, backend: ScriptedBackend | None = None, **overrides: object) -> dict:
    settings = {"search.method": "random", "search.episodes": 8, "cost.model": f"lut:{lut}", "budget.ratio": 0.8,
                **overrides}  # fmt: skip
    task = build_task(load_config(SMOKE, settings), progress=False, log=lambda _: None)
    if backend is not None:
        task.problem.cost_model._shared.backend = backend  # type: ignore[attr-defined]
    lines: list[str] = []
    run_search(task, run, progress=False, log=lines.append)
    summary = json.loads((run / "summary.json").read_text())
    summary["log"] = lines
    return summary


def test_the_best_is_re_measured_beside_dense_and_the_verdict_said(lut_path: Path, tmp_path: Path) -> None:
    summary = search(lut_path, tmp_path / "run")
    check = summary["budget_check"]
    assert 1 <= len(check["candidates"]) <= 5
    assert check["candidates"][0]["episode"] == summary["best_episode"] or check["chosen"] not in (0, None)
    assert all(c["predicted"] <= check["budget_ms"] + 1e-12 for c in check["candidates"])
    assert check["dense_measured_ms"] == summary["dense_latency_ms"] > 0
    assert any(line.startswith("budget check on torch, 1 thread(s)") for line in summary["log"])
    ranked = summary["rerank"]["candidates"]
    by_whole_split = sorted(range(len(ranked)), key=lambda i: (-ranked[i]["accuracy"], i))
    # measured in the re-ranked order: best on the whole search-val split first
    assert [c["episode"] for c in check["candidates"]] == [ranked[i]["episode"] for i in by_whole_split][:5]


def test_without_re_ranking_the_most_rewarding_are_measured_first(lut_path: Path, tmp_path: Path) -> None:
    summary = search(lut_path, tmp_path / "run", **{"search.rerank_top": 0})
    assert "rerank" not in summary
    rewards = [c["reward"] for c in summary["budget_check"]["candidates"]]
    assert rewards == sorted(rewards, reverse=True)


def test_a_best_that_misses_when_measured_falls_back_to_one_that_meets(lut_path: Path, tmp_path: Path) -> None:
    first = search(lut_path, tmp_path / "first")
    if len(first["budget_check"]["candidates"]) < 2:
        pytest.skip("the search found a single candidate within the budget")
    dense = first["budget_check"]["dense_predicted_ms"]
    # dense measures as predicted; the cost model's best measures at twice the dense time; the rest far under
    backend = ScriptedBackend([dense, 2 * dense, 0.1 * dense])
    run = tmp_path / "run"
    summary = search(lut_path, run, backend)
    check = summary["budget_check"]
    assert backend.calls == [len(check["candidates"]) + 1]
    assert not check["candidates"][0]["meets"] and check["chosen"] == 1
    fallback = check["candidates"][1]
    assert summary["best_episode"] == fallback["episode"] and summary["best_accuracy"] == fallback["accuracy"]
    kept = Strategy.load(run / BY_COST_MODEL_FILE)
    returned = Strategy.load(run / "best_strategy.json")
    assert kept != returned
    assert returned.metadata.accuracy == fallback["accuracy"] and returned.metadata.cost == fallback["predicted"]
    assert any("MISSES it" in line and f"episode {fallback['episode']}" in line for line in summary["log"])


def test_nothing_meets_keeps_the_best_and_says_so(lut_path: Path, tmp_path: Path) -> None:
    dense_run = search(lut_path, tmp_path / "first")
    dense = dense_run["budget_check"]["dense_predicted_ms"]
    summary = search(lut_path, tmp_path / "run", ScriptedBackend([dense, 5 * dense]))
    assert summary["budget_check"]["chosen"] is None
    assert summary["best_episode"] == dense_run["budget_check"]["candidates"][0]["episode"]  # the cost model's best
    assert not (tmp_path / "run" / BY_COST_MODEL_FILE).exists()
    assert any("and so do the other" in line for line in summary["log"])


def test_verify_top_zero_skips_the_check(lut_path: Path, tmp_path: Path) -> None:
    assert "budget_check" not in search(lut_path, tmp_path / "run", **{"search.verify_top": 0})


def test_a_macs_budget_has_nothing_to_measure(tmp_path: Path) -> None:
    task = build_task(load_config(SMOKE, {"search.method": "random"}), progress=False, log=lambda _: None)
    run_search(task, tmp_path / "run", progress=False, log=lambda _: None)
    assert "budget_check" not in json.loads((tmp_path / "run" / "summary.json").read_text())
