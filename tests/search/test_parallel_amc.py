"""Parallel AMC episodes (search.workers > 1) on the smoke config: deterministic for a fixed number of workers
whatever the executor, the serial learn loop at one episode per batch, resume after a kill, budget-conditioned."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from amc.config import load_config
from amc.problem import Task, build_task
from amc.search import amc_method, amc_parallel
from amc.search.methods import run_search
from amc.search.parallel import SerialExecutor

SMOKE = Path(__file__).resolve().parents[2] / "configs" / "smoke.yaml"
PARALLEL = {
    "search.workers": 2, "search.episodes": 8, "search.round_to": 1, "agent.warmup_episodes": 2,
    "agent.lr_actor": 0.05, "agent.noise_sigma": 0.05,
}  # fmt: skip
"""One batch of warm-up and three of learning, with an actor that learns fast and explores little, so that what the
agent learned within a batch shows in the next episode's channels (with the smoke defaults it does not)."""


def _task(**overrides: object) -> Task:
    return build_task(load_config(SMOKE, overrides), progress=False, log=lambda _: None)


def _search(out: Path, resume: bool = False, **overrides: object) -> Path:
    run_search(_task(**{**PARALLEL, **overrides}), out, resume=resume, progress=False, log=lambda _: None)
    return out


def _decisions(run: Path) -> list[dict[str, str]]:
    """Every column of episodes.csv but the wall times: what must repeat exactly."""
    with (run / "episodes.csv").open() as handle:
        return [{key: value for key, value in row.items() if not key.endswith("_s")} for row in csv.DictReader(handle)]


def _best(run: Path) -> tuple[Any, Any]:
    summary = json.loads((run / "summary.json").read_text())
    return summary["best_accuracy"], json.loads((run / "best_strategy.json").read_text())["layers"]


@contextmanager
def _in_this_process(search: Any, setup: Any, payload: Any, local: Any = None) -> Iterator[SerialExecutor]:
    """open_executor's stand-in: the batch scored here, one episode after the other."""
    yield SerialExecutor(local)


@pytest.fixture(scope="module")
def straight(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-worker run on local worker processes."""
    return _search(tmp_path_factory.mktemp("parallel") / "straight")


def test_two_worker_run_repeats_itself(straight: Path, tmp_path: Path) -> None:
    again = _search(tmp_path / "again")
    assert [int(row["episode"]) for row in _decisions(straight)] == list(range(1, 9))
    assert _decisions(again) == _decisions(straight)
    assert _best(again) == _best(straight)
    assert (straight / "agent" / "agent.pt").is_file()
    assert any((straight / "tensorboard").rglob("events.out.tfevents*"))


def test_scoring_in_this_process_gives_the_worker_processes_results(
    straight: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(amc_method, "open_executor", _in_this_process)
    here = _search(tmp_path / "here")
    assert _decisions(here) == _decisions(straight)
    assert _best(here) == _best(straight)


def test_one_episode_per_batch_is_the_serial_learn_loop(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    serial = _search(tmp_path / "serial", **{"search.workers": 1})
    learn = amc_parallel.learn_in_batches

    def one_at_a_time(*args: Any) -> None:
        learn(*args[:7], 1, *args[8:])

    monkeypatch.setattr(amc_method, "open_executor", _in_this_process)
    monkeypatch.setattr(amc_method, "learn_in_batches", one_at_a_time)
    batched = _search(tmp_path / "batched")
    assert _decisions(batched) == _decisions(serial)
    assert _best(batched) == _best(serial)


def test_parallel_episodes_differ_from_serial_after_warm_up(straight: Path, tmp_path: Path) -> None:
    """The actor is fixed within a batch, so learning episodes are not the serial ones (the test above is not
    vacuous: the batch size reaches the rows)."""
    serial = _search(tmp_path / "serial", **{"search.workers": 1})
    assert _decisions(serial)[:3] == _decisions(straight)[:3]  # warm-up, then one episode of the same actor
    assert _decisions(serial)[3] != _decisions(straight)[3]  # serial trained after episode 3, the batch did not


@pytest.mark.parametrize("where", ["scoring", "checkpoint"])
def test_interrupted_parallel_run_resumes_to_the_straight_run(
    where: str, straight: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ctrl-C while batch 2 is scored, or after its rows are written but before its checkpoint: the resumed run
    redoes batch 2 and ends as the uninterrupted one."""
    target = "score_batch" if where == "scoring" else "save_agent_state"
    original = getattr(amc_parallel, target)
    calls = {"n": 0}

    def interrupt_the_second(*args: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return original(*args)

    monkeypatch.setattr(amc_parallel, target, interrupt_the_second)
    run = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        _search(run)
    assert len(_decisions(run)) == (2 if where == "scoring" else 4)
    monkeypatch.setattr(amc_parallel, target, original)
    _search(run, resume=True)
    assert _decisions(run) == _decisions(straight)
    assert _best(run) == _best(straight)


def test_budget_conditioned_run_with_workers(tmp_path: Path) -> None:
    """Each episode draws its budget from (seed, episode index), as the serial run does, and the run's best still
    meets the config's budget."""
    conditioned = {"agent.budget_range": [0.3, 0.8]}
    parallel = _search(tmp_path / "parallel", **conditioned)
    serial = _search(tmp_path / "serial", **conditioned, **{"search.workers": 1})
    budgets = [row["budget"] for row in _decisions(parallel)]
    assert budgets == [row["budget"] for row in _decisions(serial)]
    assert len(set(budgets)) == len(budgets)
    assert all(float(row["cost"]) <= float(row["budget"]) for row in _decisions(parallel))
    summary = json.loads((parallel / "summary.json").read_text())
    assert summary["conditioned"]["budget_range"] == [0.3, 0.8]
    assert summary["best_cost"] <= summary["budget"]["value"]


@pytest.mark.slow
def test_ray_actors_give_the_local_workers_results(straight: Path, tmp_path: Path) -> None:
    ray = pytest.importorskip("ray", reason="ray is not installed (pip install 'amc-toolkit[ray]')")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        on_ray = _search(tmp_path / "ray", **{"search.executor": "ray"})
    finally:
        ray.shutdown()
    assert _decisions(on_ray) == _decisions(straight)
    assert _best(on_ray) == _best(straight)


@pytest.mark.slow
def test_ray_on_a_two_node_cluster_gives_the_local_workers_results(straight: Path, tmp_path: Path) -> None:
    ray = pytest.importorskip("ray", reason="ray is not installed (pip install 'amc-toolkit[ray]')")
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
    try:
        cluster.add_node(num_cpus=1)
        cluster.wait_for_nodes()
        ray.init(address=cluster.address, log_to_driver=False)
        assert len([node for node in ray.nodes() if node["Alive"]]) == 2
        on_cluster = _search(tmp_path / "cluster", **{"search.executor": "ray"})
    finally:
        ray.shutdown()
        cluster.shutdown()
    assert _decisions(on_cluster) == _decisions(straight)
    assert _best(on_cluster) == _best(straight)
