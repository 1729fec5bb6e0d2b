"""Training: it learns, it checkpoints every epoch, and a killed run resumes instead of restarting."""

from __future__ import annotations

from pathlib import Path

import torch

from amc.models import create_model
from amc.training.checkpoints import load_weights, save_checkpoint
from amc.training.loop import TrainSettings, accuracy_on, train


def test_training_learns_the_synthetic_task(synthetic_bundle) -> None:
    torch.manual_seed(0)
    model = create_model("tiny")
    before = accuracy_on(model, synthetic_bundle.search_val).top1
    result = train(
        model,
        synthetic_bundle.train,
        synthetic_bundle.search_val,
        TrainSettings(epochs=2, lr=0.05),
        progress=False,
        log=lambda _: None,
    )
    assert result.epochs[-1].val_top1 > max(0.5, before + 0.2)


def test_resume_continues_after_the_last_finished_epoch(synthetic_bundle, tmp_path: Path) -> None:
    state = tmp_path / "run.state.pt"
    settings = TrainSettings(epochs=2, lr=0.05)
    torch.manual_seed(0)
    straight = create_model("tiny")
    train(straight, synthetic_bundle.train, synthetic_bundle.search_val, settings, progress=False, log=lambda _: None)

    torch.manual_seed(0)
    interrupted = create_model("tiny")
    train(
        interrupted,
        synthetic_bundle.train,
        synthetic_bundle.search_val,
        TrainSettings(epochs=1, lr=0.05),
        state_path=state,
        progress=False,
        log=lambda _: None,
    )
    saved = torch.load(state, weights_only=True)
    assert saved["epoch"] == 1
    # a new process picks the run up from the state file and trains only the missing epoch
    resumed = create_model("tiny")
    messages: list[str] = []
    result = train(
        resumed,
        synthetic_bundle.train,
        synthetic_bundle.search_val,
        settings,
        state_path=state,
        progress=False,
        log=messages.append,
    )
    assert any("resuming" in message for message in messages)
    assert [record.epoch for record in result.epochs] == [1, 2]


def test_checkpoint_round_trip_is_weights_only(tmp_path: Path) -> None:
    model = create_model("tiny")
    save_checkpoint(tmp_path / "m.pt", model, {"model": "tiny", "test_top1": 0.5})
    fresh = create_model("tiny")
    meta = load_weights(fresh, tmp_path / "m.pt")
    assert meta["test_top1"] == 0.5
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), fresh.state_dict().values()))
