"""Nothing silently wrong: one writer per run folder / checkpoint / LUT, resumes that refuse changed settings,
torn or half-written run folders repaired on resume, lazy random trials, no stub folders blocking a rerun."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch

from amc.cli.main import main
from amc.config import load_config
from amc.errors import UserError
from amc.locks import file_lock_path, folder_lock_path, lock_file, lock_folder
from amc.problem import build_task
from amc.resume import changed_settings
from amc.search.methods import run_search
from amc.search.run_folder import HISTORY, recorded_rows

SMOKE = "configs/smoke.yaml"
RANDOM = {"search.method": "random", "search.episodes": 4}
QUIET = {"progress": False, "log": lambda _: None}


def search(out: Path, resume: Any = False, log: Any = lambda _: None, **overrides: Any) -> None:
    """A random search (4 trials unless overridden) on the smoke config in `out`."""
    task = build_task(load_config(SMOKE, {**RANDOM, **overrides}), progress=False, log=lambda _: None)
    run_search(task, out, resume=resume, progress=False, log=log)


def decisions(run: Path) -> list[dict[str, str]]:
    """The rows without wall times: what must repeat exactly for the same seed."""
    return [{key: value for key, value in row.items() if not key.endswith("_s")} for row in recorded_rows(run)]


def best(run: Path) -> dict:
    return json.loads((run / "best_strategy.json").read_text())["layers"]


# ----------------------------------------------------------------- one writer at a time


def hold_in_child(target: str, kind: str = "folder") -> subprocess.Popen:
    """A second process holding the lock of `target` until killed."""
    take = f"lock_folder(Path({target!r}))" if kind == "folder" else f"lock_file(Path({target!r}))"
    code = (
        "import sys, time; from pathlib import Path; from amc.locks import lock_file, lock_folder\n"
        f"with {take}:\n    print('held', flush=True); time.sleep(600)\n"
    )
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None and child.stdout.readline().strip() == "held"
    return child


def test_second_search_on_a_folder_is_refused_naming_the_holder_and_runs_after_kill_9(tmp_path: Path) -> None:
    run = tmp_path / "run"
    child = hold_in_child(str(run))
    try:
        with pytest.raises(UserError) as refused:
            search(run)
        assert f"PID {child.pid}" in str(refused.value) and str(run) in str(refused.value)
        assert not (run / "episodes.csv").exists()  # refused before writing anything
    finally:
        child.send_signal(signal.SIGKILL)  # the OS drops a killed holder's lock: no stale lock to clear by hand
        child.wait()
    search(run)
    assert len(recorded_rows(run)) == 4


def test_second_writer_on_the_cli_exits_2_with_one_paragraph(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    run = tmp_path / "run"
    with lock_folder(run):
        code = main(["search", "--config", SMOKE, "--method", "random", "--episodes", "1", "--out", str(run),
                     "--no-progress"])  # fmt: skip
    assert code == 2
    err = capsys.readouterr().err
    assert f"PID {os.getpid()}" in err and "Traceback" not in err


def test_lock_is_released_on_exception_and_ctrl_c(tmp_path: Path) -> None:
    for error in (RuntimeError, KeyboardInterrupt):
        with pytest.raises(error), lock_folder(tmp_path):
            raise error
        with lock_folder(tmp_path):  # taken again at once
            assert f"pid {os.getpid()}" in folder_lock_path(tmp_path).read_text()
    assert folder_lock_path(tmp_path).read_text() == ""  # emptied on release: it never names a dead holder


def test_training_checkpoint_and_lut_are_locked(tmp_path: Path) -> None:
    from amc.training.loop import TrainSettings, train

    state = tmp_path / "model.state.pt"
    no_data: Any = []  # never read: the lock is refused first
    child = hold_in_child(str(state), kind="file")
    try:
        with pytest.raises(UserError, match=f"PID {child.pid}"):
            train(torch.nn.Linear(2, 2), no_data, no_data, TrainSettings(epochs=1), state_path=state, progress=False)
    finally:
        child.kill()
        child.wait()
    assert file_lock_path(state).name == "model.state.pt.lock"

    from amc.costs.latency_tables import Grid, Network, build_lut
    from amc.graph import build_layer_table
    from amc.models import create_model

    model = create_model("tiny", in_channels=3, num_classes=10)
    table = build_layer_table(model, (3, 16, 16))
    lut = tmp_path / "tiny.json"
    with lock_file(lut), pytest.raises(UserError, match=f"PID {os.getpid()}"):
        build_lut(Network("tiny", model, table, (3, 16, 16)), lut, grid=Grid(4, 0.2), progress=False,
                  log=lambda _: None)  # fmt: skip


# ----------------------------------------------------------------- resumes refuse changed settings


def test_resume_with_another_budget_or_method_is_refused_naming_each_key(tmp_path: Path) -> None:
    run = tmp_path / "run"
    search(run, **{"search.episodes": 2})
    with pytest.raises(UserError) as refused:
        search(run, resume=True, **{"budget.ratio": 0.6, "search.method": "uniform"})
    text = str(refused.value)
    assert "budget.ratio: 0.5 then, 0.6 now" in text
    assert "search.method: 'random' then, 'uniform' now" in text
    assert "another --out" in text
    assert len(recorded_rows(run)) == 2  # nothing touched
    search(run, resume=True, **{"search.episodes": 3, "search.workers": 2})  # more episodes, more workers: fine
    assert [row["episode"] for row in recorded_rows(run)] == ["1", "2", "3"]


def _train_tiny(state: Path, log: Callable[[str], None] = lambda _: None, **changes: object) -> None:
    """One epoch of the smoke model into `state` (TrainSettings fields in `changes` override the defaults here)."""
    from amc.training.base_model import build_model, load_data
    from amc.training.loop import TrainSettings, train

    config = load_config(SMOKE)
    bundle = load_data(config)
    settings = TrainSettings(**{"epochs": 1, "batch_size": 64, "lr": 0.05, "augment": False, **changes})
    train(build_model(config, bundle), bundle.train, bundle.search_val, settings, state, progress=False, log=log,
          val_images=64)  # fmt: skip


def test_train_resume_with_another_lr_is_refused(tmp_path: Path) -> None:
    state = tmp_path / "model.state.pt"
    _train_tiny(state)
    with pytest.raises(UserError, match=r"lr: 0\.05 then, 0\.01 now"):
        _train_tiny(state, lr=0.01)
    lines: list[str] = []
    _train_tiny(state, log=lines.append)
    assert any("resuming" in line for line in lines)  # the same settings resume


def test_unfinished_training_refuses_other_epochs(tmp_path: Path) -> None:
    state = tmp_path / "model.state.pt"
    _train_tiny(state)
    saved = torch.load(state, weights_only=True)
    saved["settings"]["epochs"] = 3  # as a 3-epoch run killed after its first epoch leaves it
    torch.save(saved, state)
    with pytest.raises(UserError, match="epochs: 3 then, 2 now"):
        _train_tiny(state, epochs=2)


def test_changed_settings_names_nested_and_missing_keys() -> None:
    stored = {"a": {"b": 1, "c": [1, 2]}, "d": 1}
    assert changed_settings(stored, {"a": {"b": 2, "c": (1, 2)}, "e": 0}, ignore=("x",)) == [
        ("a.b", 1, 2), ("d", 1, "<unset>"), ("e", "<unset>", 0),
    ]  # fmt: skip
    assert changed_settings(stored, {"a": {"b": 9, "c": [1, 2]}, "d": 1}, ignore=("a",)) == []


# ----------------------------------------------------------------- resume of empty, foreign and stub folders


def test_resume_of_an_empty_folder_says_so_and_of_a_foreign_one_is_refused(tmp_path: Path) -> None:
    lines: list[str] = []
    search(tmp_path / "new", resume=True, log=lines.append, **{"search.episodes": 1})
    assert any("nothing to resume" in line for line in lines)
    foreign = tmp_path / "photos"
    foreign.mkdir()
    (foreign / "holiday.jpg").write_text("not a run")
    with pytest.raises(UserError, match="not an amc run folder"):
        search(foreign, resume=True)
    assert sorted(path.name for path in foreign.iterdir() if not path.name.startswith(".")) == ["holiday.jpg"]


def test_an_early_error_leaves_no_folder_that_blocks_the_corrected_command(tmp_path: Path) -> None:
    run = tmp_path / "run"
    base = ["search", "--config", SMOKE, "--method", "random", "--episodes", "1", "--out", str(run), "--no-progress"]
    assert main([*base, "--workers", "0"]) == 2
    # what an error after the folder was opened leaves: the config and a header, no episode
    run.mkdir(exist_ok=True)
    shutil.copy(SMOKE, run / "config.yaml")
    (run / "episodes.csv").write_text("episode,reward\n")
    assert main([*base, "--workers", "1"]) == 0
    assert len(recorded_rows(run)) == 1


# ----------------------------------------------------------------- kills between writes


def test_torn_last_line_is_dropped_on_resume(tmp_path: Path) -> None:
    straight, run = tmp_path / "straight", tmp_path / "run"
    search(straight)
    search(run, **{"search.episodes": 3})
    text = (run / "episodes.csv").read_text()
    (run / "episodes.csv").write_text(text[: len(text) - 40])  # killed while writing row 3
    assert len(recorded_rows(run)) == 2
    search(run, resume=True)
    assert decisions(run) == decisions(straight)  # row 3 redone once, not read as finished nor duplicated
    assert best(run) == best(straight)


def _best_position(run: Path) -> int:
    rows = recorded_rows(run)
    return max(range(len(rows)), key=lambda i: float(rows[i]["reward"])) + 1


@pytest.mark.parametrize("kill", ["after the row, before best_strategy.json", "after the archive, before the row"])
def test_kill_between_row_and_best_resumes_consistent(tmp_path: Path, kill: str) -> None:
    straight, run = tmp_path / "straight", tmp_path / "run"
    # its best is row 2, after an earlier best in row 1; re-ranking off: the result is the best row's own strategy
    seed = {"experiment.seed": 3, "search.rerank_top": 0}
    search(straight, **{"search.episodes": 6}, **seed)
    position = _best_position(straight)
    assert position == 2
    shutil.copytree(straight, run)
    text = (run / "episodes.csv").read_text().splitlines(keepends=True)
    earlier = sorted(
        int(p.name.split("-")[0]) for p in (run / HISTORY).iterdir() if int(p.name.split("-")[0]) < position
    )
    kept = position if kill.startswith("after the row") else position - 1
    (run / "episodes.csv").write_text("".join(text[: 1 + kept]))  # the rows the kill left
    for path in (run / HISTORY).iterdir():  # archives of later bests were never written
        if int(path.name.split("-")[0]) > position:
            path.unlink()
    if earlier:  # best_strategy.json still holds the previous best, or nothing before the first one
        shutil.copy(run / HISTORY / f"{earlier[-1]}-best_strategy.json", run / "best_strategy.json")
    else:
        (run / "best_strategy.json").unlink()
    episodes = max(kept, 1)  # resume, running at most the lost row again: the best must match the rows
    search(run, resume=True, **{"search.episodes": episodes}, **seed)
    rows = recorded_rows(run)
    assert len(rows) == episodes
    best_reward = max(float(row["reward"]) for row in rows) if rows else None
    if kill.startswith("after the row"):
        assert best(run) == best(straight)  # the best row's own strategy, not the stale file
    else:
        assert not (run / HISTORY / f"{position}-best_strategy.json").exists()  # the archive of a lost row
        assert best(run) == json.loads((run / HISTORY / "1-best_strategy.json").read_text())["layers"]
    summary = json.loads((run / "summary.json").read_text())
    assert summary["best_episode"] == int(rows[_best_position(run) - 1]["episode"])
    assert best_reward is not None
    search(run, resume=True, **{"search.episodes": 6}, **seed)
    assert best(run) == best(straight)
    assert decisions(run) == decisions(straight)


# ----------------------------------------------------------------- a huge episode count


def test_random_search_with_1e12_episodes_starts_at_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from amc.search.baselines import random_search

    drawn = {"n": 0}
    actions = random_search.trial_actions

    def counted(seed: int, trial: int, steps: int) -> list[float]:
        drawn["n"] += 1
        if drawn["n"] > 100:
            raise AssertionError("trials are drawn ahead of scoring")
        return actions(seed, trial, steps)

    record = random_search.record
    recorded = {"n": 0}

    def stop_after_two(*args, **kwargs) -> None:
        record(*args, **kwargs)
        recorded["n"] += 1
        if recorded["n"] == 2:
            raise KeyboardInterrupt  # Ctrl-C after two trials

    monkeypatch.setattr(random_search, "trial_actions", counted)
    monkeypatch.setattr(random_search, "record", stop_after_two)
    tick = time.perf_counter()
    with pytest.raises(KeyboardInterrupt):
        search(tmp_path / "run", **{"search.episodes": 10**12})
    assert time.perf_counter() - tick < 60
    assert len(recorded_rows(tmp_path / "run")) == 2
    assert drawn["n"] <= random_search.CHUNK_PER_WORKER
