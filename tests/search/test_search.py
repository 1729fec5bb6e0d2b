"""`amc search` end to end on the smoke config: outputs, reproducibility, resume after a kill, bad configs."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from amc.cli.main import main
from amc.config import load_config
from amc.problem import build_task
from amc.pruning import Strategy
from amc.search.methods import run_search

SMOKE = "configs/smoke.yaml"


def rows(run: Path) -> list[dict[str, str]]:
    with (run / "episodes.csv").open() as handle:
        return list(csv.DictReader(handle))


def decisions(run: Path) -> list[tuple]:
    """Everything but wall times: what must repeat exactly for the same seed."""
    return [tuple(value for key, value in row.items() if not key.endswith("_s")) for row in rows(run)]


def test_search_writes_the_run_folder(tmp_path: Path) -> None:
    run = tmp_path / "run"
    assert main(["search", "--config", SMOKE, "--out", str(run), "--no-progress"]) == 0
    for name in (
        "config.yaml",
        "episodes.csv",
        "best_strategy.json",
        "best_schedule.yaml",
        "summary.json",
        "agent/agent.pt",
        "plots/search_progress.png",
        "plots/best_keep_ratios.png",
    ):
        assert (run / name).is_file(), name
    assert any((run / "tensorboard").rglob("events.out.tfevents*"))
    assert [int(row["episode"]) for row in rows(run)] == list(range(1, 7))
    summary = json.loads((run / "summary.json").read_text())
    best = Strategy.load(run / "best_strategy.json")
    assert best.metadata.cost <= summary["budget"]["value"]
    assert summary["best_accuracy"] == max(float(row["accuracy"]) for row in rows(run))
    assert summary["best_latency_ms"] > 0 and summary["dense_latency_ms"] > 0
    assert load_config(run / "config.yaml").search.episodes == 6


def test_same_seed_same_search(tmp_path: Path) -> None:
    for name in ("a", "b"):
        assert main(["search", "--config", SMOKE, "--out", str(tmp_path / name), "--no-progress"]) == 0
    assert decisions(tmp_path / "a") == decisions(tmp_path / "b")


def test_interrupted_search_resumes_without_duplicates(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    straight = tmp_path / "straight"
    main(["search", "--config", SMOKE, "--out", str(straight), "--no-progress"])

    from amc.problem import ChannelProblem

    score = ChannelProblem.score
    calls = {"n": 0}

    def interrupt_in_episode_four(self, *args, **kwargs):  # the 4th episode is in flight when "Ctrl-C" arrives
        calls["n"] += 1
        if calls["n"] == 4:
            raise KeyboardInterrupt
        return score(self, *args, **kwargs)

    monkeypatch.setattr(ChannelProblem, "score", interrupt_in_episode_four)
    run = tmp_path / "run"
    task = build_task(load_config(SMOKE), progress=False, log=lambda _: None)
    with pytest.raises(KeyboardInterrupt):
        run_search(task, run, progress=False, log=lambda _: None)
    assert len(rows(run)) == 3
    monkeypatch.setattr(ChannelProblem, "score", score)
    assert main(["search", "--config", SMOKE, "--out", str(run), "--resume", "--no-progress"]) == 0
    assert [int(row["episode"]) for row in rows(run)] == list(range(1, 7))
    assert decisions(run) == decisions(straight)  # resuming changes nothing


def test_kill_then_resume_from_the_command_line(tmp_path: Path) -> None:
    run = tmp_path / "run"
    command = [sys.executable, "-m", "amc.cli.main", "search", "--config", SMOKE, "--out", str(run), "--no-progress"]
    process = subprocess.Popen(
        [*command, "--episodes", "400"],
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.time() + 120
    while time.time() < deadline and (not (run / "episodes.csv").exists() or len(rows(run)) < 3):
        time.sleep(0.2)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    assert "Traceback" not in stderr
    done = len(rows(run))
    assert 3 <= done < 400
    result = subprocess.run(
        [*command, "--resume", "--episodes", str(done + 2)], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    episodes = [int(row["episode"]) for row in rows(run)]
    assert episodes == list(range(1, done + 3))


def test_existing_run_folder_needs_resume(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    run = tmp_path / "run"
    main(["search", "--config", SMOKE, "--out", str(run), "--no-progress", "--episodes", "1"])
    assert main(["search", "--config", SMOKE, "--out", str(run), "--no-progress"]) == 2
    assert "--resume" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("search:\n  episodes: [1\n", "not valid YAML at line"),
        ("search:\n  epsiodes: 3\n", "search.epsiodes"),
        ("budget:\n  ratio: 0.001\n", "cannot be met"),
        ("search:\n  method: annealing\n", "search.method"),
        ("agent:\n  algorithm: ppo\n", "agent.algorithm"),
        ("model:\n  name: resnet21\n", "unknown model"),
    ],
)
def test_bad_configs_exit_2_with_a_clear_message(tmp_path: Path, capsys: pytest.CaptureFixture, text: str,
                                                 message: str) -> None:  # fmt: skip
    smoke = Path(SMOKE).read_text()
    path = tmp_path / "bad.yaml"
    path.write_text(smoke + "\n" + text if "[1" not in text else text)
    code = main(["search", "--config", str(path), "--out", str(tmp_path / "run"), "--no-progress"])
    err = " ".join(capsys.readouterr().err.split())
    assert code == 2 and message in err and "Traceback" not in err


def test_learned_policy_runs_greedily_on_a_new_budget(tmp_path: Path) -> None:
    run = tmp_path / "run"
    main(["search", "--config", SMOKE, "--out", str(run), "--no-progress"])
    greedy = tmp_path / "greedy"
    code = main(
        [
            "search",
            "--config",
            SMOKE,
            "--out",
            str(greedy),
            "--no-progress",
            "--episodes",
            "2",
            "--policy",
            str(run / "agent" / "agent.pt"),
            "--budget",
            "0.7",
        ]
    )
    assert code == 0
    first, second = rows(greedy)
    assert first["accuracy"] == second["accuracy"] and first["cost"] == second["cost"]  # no exploration
    assert float(first["budget"]) == pytest.approx(
        0.7 * json.loads((run / "summary.json").read_text())["budget"]["dense_cost"]
    )
