"""Schedules that run: AGP ramps reach their scheduled sparsity each epoch, masks hold through optimiser steps,
thinning removes channels at its epoch, a killed run resumes to the same weights, bad input is refused."""

from __future__ import annotations

import json
import warnings
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset

import amc.training.loop
from amc.cli.finetune_cmd import job_settings, loop_trainer
from amc.errors import UserError
from amc.graph import build_layer_table
from amc.models import create_model
from amc.schedule import DistillerScheduleWarning, load_schedule, parse_distiller
from amc.schedule.runner import _Runner, read_progress, run_schedule
from amc.schedule.timeline import agp_sparsity
from amc.training.loop import TrainSettings, accuracy_on

DATA = Path(__file__).parents[1] / "data"
SETTINGS = TrainSettings(epochs=5, batch_size=16, lr=0.05, augment=False)

AGP = """
pruners:
  agp:
    class: AutomatedGradualPruner
    initial_sparsity: 0.10
    final_sparsity: 0.60
    weights: [module.conv1.weight, module.down.0.weight]
policies:
  - pruner: {instance_name: agp}
    starting_epoch: 0
    ending_epoch: 6
    frequency: 2
"""

THIN = """
pruners:
  filters:
    class: L1RankedStructureParameterPruner
    group_type: Filters
    desired_sparsity: 0.5
    weights: [module.conv1.weight]
extensions:
  thin:
    class: FilterRemover
    thinning_func_str: remove_filters
    arch: tiny
    dataset: synthetic
policies:
  - pruner: {instance_name: filters}
    epochs: [1]
  - extension: {instance_name: thin}
    epochs: [1]
"""

MIXED = (
    THIN.replace(
        "  filters:",
        "  agp:\n    class: AutomatedGradualPruner\n    initial_sparsity: 0.1\n    final_sparsity: 0.5\n"
        "    weights: [module.down.0.weight]\n  filters:",
    )
    + "  - pruner: {instance_name: agp}\n    starting_epoch: 0\n    ending_epoch: 4\n    frequency: 1\n"
)
"""Element-wise AGP on one layer every epoch 0..2, filters of another pruned and thinned at epoch 1."""


def _tiny():
    torch.manual_seed(0)
    model = create_model("tiny")
    return model, build_layer_table(model, (3, 16, 16), "tiny")


def _read(text: str, table):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DistillerScheduleWarning)
        return parse_distiller(text, table, "s.yaml")


def _train(model, table, schedule, train_set, val_set, settings: TrainSettings, out: Path, steps: int, score=None):
    trainer = loop_trainer(train_set, val_set, settings, max_steps_per_epoch=steps, val_images=64, progress=False,
                           log=lambda _: None)  # fmt: skip
    return run_schedule(model, table, schedule, out, trainer, settings.epochs, job_settings(settings, steps), score)


def _run(text: str, bundle, out: Path, settings: TrainSettings = SETTINGS, score=None):
    model, table = _tiny()
    schedule = _read(text, table)
    return _train(model, table, schedule, bundle.train, bundle.search_val, settings, out, 3, score), table


def test_agp_ramp_hits_its_scheduled_sparsity_each_epoch(synthetic_bundle, tmp_path: Path) -> None:
    test = synthetic_bundle.test
    run, table = _run(AGP, synthetic_bundle, tmp_path, score=lambda model: accuracy_on(model, test, limit=64).top1)
    assert [report.epoch for report in run.epochs] == [1, 2, 3, 4, 5]
    for report in run.epochs:
        fired = 2 * ((report.epoch - 1) // 2)  # the last AGP step at or before this (0-based) epoch
        expected = agp_sparsity(0.1, 0.6, min(fired, 4), 0, 6, 2)
        for row in report.layers:
            numel = table.specs()[table.layer(row.layer).index].weight_count
            assert row.scheduled == pytest.approx(int(expected * numel) / numel)
            assert round(abs(row.actual - row.scheduled) * numel) <= 1  # within one weight, after the epoch's steps
        assert {row.layer for row in report.layers} == {"conv1", "down.0"}
        assert report.test_top1 is not None and 0 <= report.test_top1 <= 1
    final = run.model.get_submodule("conv1").weight
    assert abs(int((final == 0).sum()) - 0.6 * final.numel()) <= 1
    assert not any("_orig" in key or "_mask" in key for key in run.model.state_dict())
    assert read_progress(tmp_path / "finetune.progress.json").keys() == {1, 2, 3, 4, 5}


def test_masks_hold_through_optimiser_steps(synthetic_bundle, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """After every optimiser step, every masked weight is exactly zero again, although the step itself moved
    them (momentum and weight decay): the check could fail."""
    hold = _Runner.after_step
    moved, steps = [0], [0]

    def checked(self: _Runner, model: nn.Module) -> None:
        masks = dict(self.masks)
        moved[0] += sum(int((model.get_submodule(n).weight[~m] != 0).sum()) for n, m in masks.items())
        hold(self, model)
        steps[0] += 1
        assert all(bool((model.get_submodule(n).weight[~m] == 0).all()) for n, m in masks.items())

    monkeypatch.setattr(_Runner, "after_step", checked)
    run, _ = _run(AGP, synthetic_bundle, tmp_path, TrainSettings(epochs=5, batch_size=16, lr=0.5, augment=False))
    assert steps[0] >= 15 and moved[0] > 0
    weight = run.model.get_submodule("down.0").weight
    assert abs(int((weight == 0).sum()) - 0.6 * weight.numel()) <= 1


def test_thinning_step_removes_channels_at_its_epoch(synthetic_bundle, tmp_path: Path) -> None:
    run, table = _run(THIN, synthetic_bundle, tmp_path, SETTINGS)
    channels = [report.channels for report in run.epochs]
    assert channels[0] == sum(spec.out_channels for spec in table.specs())
    assert channels[1] == channels[0] - 8 and channels[1:] == [channels[1]] * 4  # conv1's 16 filters -> 8
    assert run.model.get_submodule("conv1").out_channels == 8
    assert run.model.get_submodule("conv2").in_channels == 8
    assert run.model(torch.randn(2, 3, 16, 16)).shape == (2, 10)


def test_interrupted_run_resumes_to_the_same_weights(synthetic_bundle, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    text = MIXED
    straight, _ = _run(text, synthetic_bundle, tmp_path / "straight")
    run_epoch, calls = amc.training.loop._run_epoch, {"n": 0}

    def killed_in_third_epoch(*args, **kwargs):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return run_epoch(*args, **kwargs)

    monkeypatch.setattr(amc.training.loop, "_run_epoch", killed_in_third_epoch)
    with pytest.raises(KeyboardInterrupt):
        _run(text, synthetic_bundle, tmp_path / "resumed")
    monkeypatch.setattr(amc.training.loop, "_run_epoch", run_epoch)
    resumed, _ = _run(text, synthetic_bundle, tmp_path / "resumed")
    expected, got = straight.model.state_dict(), resumed.model.state_dict()
    assert expected.keys() == got.keys()
    assert all(torch.equal(expected[key], got[key]) for key in expected)
    assert [r.channels for r in resumed.epochs] == [r.channels for r in straight.epochs]
    with pytest.raises(UserError, match="other settings"):
        _run(text, synthetic_bundle, tmp_path / "resumed", TrainSettings(epochs=5, batch_size=16, lr=0.01))


def test_bad_schedules_and_runs_are_refused(synthetic_bundle, tmp_path: Path) -> None:
    _, table = _tiny()
    with pytest.raises(UserError, match="at least 5"):
        _run(AGP, synthetic_bundle, tmp_path, TrainSettings(epochs=4, batch_size=16))
    bad = {
        "ending_epoch: 6\n    frequency: 2": ("ending_epoch: 1\n    frequency: 1", "no span"),
        "starting_epoch: 0\n    ending_epoch: 6": ("starting_epoch: 6\n    ending_epoch: 2", "starting < ending"),
        "final_sparsity: 0.60": ("final_sparsity: 0.10", "greater than initial_sparsity"),
        "frequency: 2": ("frequency: 0", "frequency 0 must be in 1..6"),
    }  # the reader refuses these before anything trains
    for old, (new, message) in bad.items():
        with pytest.raises(UserError, match=message):
            _read(AGP.replace(old, new), table)


def _images(count: int, size: int) -> TensorDataset:
    generator = torch.Generator().manual_seed(0)
    return TensorDataset(torch.randn(count, 3, size, size, generator=generator),
                         torch.randint(0, 1000, (count,), generator=generator))  # fmt: skip


def _resnet50(size: int, name: str):
    torch.manual_seed(0)
    model = create_model("torchvision:resnet50")
    table = build_layer_table(model, (3, size, size), "torchvision:resnet50")
    return model, table, load_schedule(DATA / name, table, warn=False)


def _run_resnet50(model, table, schedule, size: int, out: Path):
    settings = TrainSettings(epochs=schedule.timeline[-1].epoch + 1, batch_size=2, lr=0.001, augment=False)
    return _train(model, table, schedule, _images(4, size), _images(2, size), settings, out, 1)


def test_degirum_resnet50_schedule_first_steps_run(tmp_path: Path) -> None:
    """The first three steps of DeGirum's ResNet-50 AGP schedule on a torchvision resnet50 at 32x32 (the schedule
    names weights, not image sizes): every masked layer holds exactly its scheduled sparsity."""
    model, table, schedule = _resnet50(32, "distiller_resnet50_degirum70.yaml")
    schedule = replace(schedule, timeline=schedule.timeline[:3])
    run = _run_resnet50(model, table, schedule, 32, tmp_path)
    assert len(run.epochs) == 3 and all(report.layers for report in run.epochs)
    for report in run.epochs:
        for row in report.layers:
            numel = table.specs()[table.layer(row.layer).index].weight_count
            assert round(abs(row.actual - row.scheduled) * numel) == 0


@pytest.mark.slow
@pytest.mark.parametrize("name", ["distiller_resnet50_degirum70.yaml", "distiller_resnet50_agp.yaml"])
def test_degirum_resnet50_schedule_runs_to_the_end(name: str, tmp_path: Path) -> None:
    """The whole schedule, one step per epoch at 64x64: the final network has the schedule's channels and
    sparsity."""
    model, table, schedule = _resnet50(64, name)
    run = _run_resnet50(model, table, schedule, 64, tmp_path)
    last = run.epochs[-1]
    assert last.layers and all(abs(row.actual - row.scheduled) < 1e-3 for row in last.layers)
    kept = schedule.kept_channels(table)
    for layer, spec in zip(table.layers, table.specs(kept)):
        module = run.model.get_submodule(layer.name)
        assert (module.out_features if isinstance(module, nn.Linear) else module.out_channels) == spec.out_channels


def _cli_run(tmp_path: Path) -> tuple[Path, Path]:
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.yaml").write_text((Path(__file__).parents[2] / "configs" / "smoke.yaml").read_text())
    schedule = tmp_path / "agp.yaml"
    schedule.write_text(AGP)
    return run, schedule


def test_cli_finetune_runs_a_schedule_and_saves_the_network(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from amc.cli.main import main
    from amc.pruning.export import load_thinned

    run, schedule = _cli_run(tmp_path)
    args = ["finetune", str(run), "--schedule", str(schedule), "--max-steps-per-epoch", "2", "--no-progress"]
    assert main([*args, "--test-images", "64"]) == 0
    out = run / "finetune"
    report = json.loads((out / "finetune.json").read_text())
    assert [row["epoch"] for row in report["epochs"]] == [1, 2, 3, 4, 5]  # default: the last step (4) + 1
    assert "| 5 |" in (out / "finetune.md").read_text()
    model = load_thinned(out)
    weight = model.get_submodule("conv1").weight
    assert int((weight == 0).sum()) == int(agp_sparsity(0.1, 0.6, 4, 0, 6, 2) * weight.numel())
    assert main(args) == 0  # finished: the same command resumes from the last checkpoint, trains nothing
    assert "resuming from" in capsys.readouterr().out


def test_cli_finetune_refuses_bad_input_in_one_paragraph(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from amc.cli.main import main

    run, schedule = _cli_run(tmp_path)
    blocker = tmp_path / "file"
    blocker.write_text("x")
    cases = {
        ("--out", str(blocker)): "is an existing file",
        ("--out", str(blocker / "sub")): "cannot be created",
        ("--epochs", "3"): "its last step fires at epoch 4",
        ("--epochs", "0"): "--epochs is 0",
        ("--lr", "nan"): "--lr is nan",
    }
    for extra, message in cases.items():
        assert main(["finetune", str(run), "--schedule", str(schedule), "--no-progress", *extra]) == 2
        err = capsys.readouterr().err
        assert message in err.replace("\n  ", " ") and "Traceback" not in err
    assert main(["finetune", str(tmp_path), "--schedule", str(schedule)]) == 2
    assert "neither a model folder" in capsys.readouterr().err


def test_cli_finetune_starts_from_a_pruned_model_folder(tmp_path: Path) -> None:
    """A MODEL_DIR (architecture.json + model.pt) is fine-tuned in its thinned shapes; data from --config."""
    from amc.cli.main import main
    from amc.pruning import thin
    from amc.pruning.export import load_thinned, save_thinned

    model, table = _tiny()
    thinned = thin(model, table, {table.group_of("conv1").index: 8})
    save_thinned(thinned, tmp_path / "pruned", "tiny", 3, 10)
    schedule = tmp_path / "agp.yaml"
    schedule.write_text(AGP)
    config = Path(__file__).parents[2] / "configs" / "smoke.yaml"
    args = ["finetune", str(tmp_path / "pruned"), "--schedule", str(schedule), "--config", str(config)]
    assert main([*args, "--max-steps-per-epoch", "1", "--no-progress", "--out", str(tmp_path / "out")]) == 0
    result = load_thinned(tmp_path / "out")
    assert result.get_submodule("conv1").out_channels == 8
    weight = result.get_submodule("conv1").weight
    assert int((weight == 0).sum()) == int(agp_sparsity(0.1, 0.6, 4, 0, 6, 2) * weight.numel())
