"""Lottery tickets (amc.lottery): exact rewinding, masks held by SGD with momentum and weight decay, the
sparsity schedule 1-(1-p)^r, resume == uninterrupted, and bad settings refused by `amc lottery` with exit 2."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch

from amc.cli.main import main
from amc.errors import UserError
from amc.lottery import LotterySettings, full_masks, prunable, prune_global, rewind_, run_lottery, sparsity
from amc.lottery.imp import Segment, train_masked
from amc.models import create_model
from amc.training.loop import TrainSettings

ROOT = Path(__file__).resolve().parents[1]
TRAIN = TrainSettings(epochs=2, batch_size=32, lr=0.05, weight_decay=5e-4, augment=False, seed=0)
STEPS = 4


def tiny(bundle) -> torch.nn.Module:  # type: ignore[no-untyped-def]
    torch.manual_seed(0)
    return create_model("tiny", in_channels=bundle.input_size[0], num_classes=bundle.num_classes)


def settings(rounds: int, **changes: object) -> LotterySettings:
    base = {"rounds": rounds, "rate": 0.5, "rewind_epoch": 1, "epochs": 2, "control": True,
            "max_steps_per_epoch": STEPS, "test_images": 64, "val_images": 64}  # fmt: skip
    return LotterySettings(**{**base, **changes})  # type: ignore[arg-type]


def test_global_pruning_removes_the_smallest_survivors() -> None:
    model = create_model("tiny", in_channels=3, num_classes=10)
    masks = prune_global(model, full_masks(model), 0.3)
    weights = prunable(model)
    pruned = torch.cat([weights[name].detach().abs()[~mask] for name, mask in masks.items()])
    kept = torch.cat([weights[name].detach().abs()[mask] for name, mask in masks.items()])
    total = pruned.numel() + kept.numel()
    assert pruned.numel() == round(0.3 * total)
    assert pruned.max() <= kept.min()


def test_sparsity_after_r_rounds_is_one_minus_keep_to_the_r() -> None:
    model = create_model("tiny", in_channels=3, num_classes=10)
    masks = full_masks(model)
    total = sum(mask.numel() for mask in masks.values())
    for r in range(1, 6):
        masks = prune_global(model, masks, 0.2)
        assert abs(sparsity(masks) - (1 - 0.8**r)) <= r / total  # one weight of rounding per round at most


def test_rewinding_restores_the_iteration_k_weights_exactly(synthetic_bundle, tmp_path: Path) -> None:
    model = tiny(synthetic_bundle)
    result = run_lottery(model, synthetic_bundle, TRAIN, settings(1), tmp_path, log=lambda _: None)
    rewound = torch.load(tmp_path / "rewind.pt", weights_only=True)
    # an independent run of only epochs 0..k-1 of the same schedule gives the kept weights
    alone = copy.deepcopy(model)
    train_masked(alone, full_masks(alone), synthetic_bundle.train, TRAIN, Segment(0, 1, 2, STEPS), augment=False)
    for name, value in alone.state_dict().items():
        assert torch.equal(rewound[name], value), name
    # rewinding the trained ticket gives the survivors exactly those values and the pruned weights zero
    ticket = result.ticket
    rewind_(ticket, rewound, result.masks)
    for name, weight in prunable(ticket).items():
        mask = result.masks[name]
        assert torch.equal(weight[mask], rewound[name][mask]), name
        assert torch.count_nonzero(weight[~mask]) == 0, name
    assert sparsity(result.masks) == pytest.approx(0.5, abs=1e-3)


def test_masks_survive_sgd_with_momentum_and_weight_decay(synthetic_bundle) -> None:
    model = tiny(synthetic_bundle)
    masks = prune_global(model, full_masks(model), 0.6)
    before = copy.deepcopy(prunable(model))
    train_masked(model, masks, synthetic_bundle.train, TRAIN, Segment(0, 2, 2, STEPS), augment=False)
    for name, weight in prunable(model).items():
        assert torch.count_nonzero(weight[~masks[name]]) == 0, name
        assert not torch.equal(weight[masks[name]], before[name][masks[name]]), f"{name} did not train"


def test_resume_equals_uninterrupted(synthetic_bundle, tmp_path: Path) -> None:
    model = tiny(synthetic_bundle)
    whole = run_lottery(model, synthetic_bundle, TRAIN, settings(2), tmp_path / "a", log=lambda _: None)
    run_lottery(model, synthetic_bundle, TRAIN, settings(1), tmp_path / "b", log=lambda _: None)
    resumed = run_lottery(model, synthetic_bundle, TRAIN, settings(2), tmp_path / "b", resume=True,
                          log=lambda _: None)  # fmt: skip
    assert resumed.rows == whole.rows
    assert (tmp_path / "a" / "lottery.csv").read_text() == (tmp_path / "b" / "lottery.csv").read_text()
    a = torch.load(tmp_path / "a" / "round_2.pt", weights_only=True)
    b = torch.load(tmp_path / "b" / "round_2.pt", weights_only=True)
    for part in ("masks", "ticket", "reinit"):
        for name, value in a[part].items():
            assert torch.equal(value, b[part][name]), (part, name)
    assert [row.sparsity for row in whole.rows] == pytest.approx([0.0, 0.5, 0.75], abs=1e-3)
    with pytest.raises(UserError, match="lottery.rate"):
        run_lottery(model, synthetic_bundle, TRAIN, settings(2, rate=0.3), tmp_path / "b", resume=True)
    with pytest.raises(UserError, match="--resume"):
        run_lottery(model, synthetic_bundle, TRAIN, settings(2), tmp_path / "b")


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--rounds", "0"], "--rounds is 0"),
        (["--rounds", "2", "--rate", "1.0"], "--rate is 1.0"),
        (["--rounds", "2", "--rate", "0"], "--rate is 0"),
        (["--rounds", "2", "--rewind-epoch", "2"], "rewind epoch beyond training"),
        (["--rounds", "2", "--rewind-epoch", "-1"], "rewind epoch beyond training"),
    ],
)
def test_bad_settings_exit_2_before_training(
    flags: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "run"
    code = main(["lottery", "--config", str(ROOT / "configs" / "smoke.yaml"), "--epochs", "2", "--out", str(out),
                 *flags])  # fmt: skip
    assert code == 2
    assert message in capsys.readouterr().err.replace("\n  ", " ")
    assert not out.exists()


def test_an_unwritable_out_folder_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    code = main(["lottery", "--config", str(ROOT / "configs" / "smoke.yaml"), "--rounds", "1", "--out",
                 str(blocker / "run")])  # fmt: skip
    assert code == 2
    assert "cannot be created" in capsys.readouterr().err.replace("\n  ", " ")
