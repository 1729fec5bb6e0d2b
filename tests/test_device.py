"""experiment.device / --device and experiment.amp / --amp: checked before any work, plumbed to every network step,
and CPU results bit-identical to a run that never named a device. CPU only: CUDA is faked where a test needs torch
to see GPUs."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml
from torch import nn

import amc
from amc.config import load_config
from amc.device import autocast, check_compute, resolve_device
from amc.errors import UserError

SMOKE = str(Path(__file__).resolve().parent.parent / "configs" / "smoke.yaml")
no_cuda = pytest.mark.skipif(torch.cuda.is_available(), reason="checks what happens on a machine without CUDA")


@pytest.fixture
def fake_gpus(monkeypatch: pytest.MonkeyPatch) -> None:
    """torch sees two CUDA devices (nothing runs on them)."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: True)


# ----------------------------------------------------------------- resolving names


def test_cpu_and_auto_resolve_to_the_cpu_without_cuda(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto") == torch.device("cpu")


def test_resolve_device_refuses_a_name_it_does_not_know() -> None:
    with pytest.raises(UserError, match="'cuda:x' is not cpu, cuda, cuda:N or auto"):
        resolve_device("cuda:x")


@pytest.mark.usefixtures("fake_gpus")
def test_cuda_names_resolve_to_an_indexed_gpu() -> None:
    assert resolve_device("auto") == torch.device("cuda", 0)
    assert resolve_device("cuda") == torch.device("cuda", 0)
    assert resolve_device("cuda:1") == torch.device("cuda", 1)
    with pytest.raises(UserError) as error:
        resolve_device("cuda:3")
    assert "'cuda:3'" in error.value.problem and "2 CUDA device(s): cuda:0 to cuda:1" in error.value.problem
    assert "--device cpu" in error.value.fix


@pytest.mark.parametrize("name", ["cuda", "cuda:0", "cuda:3"])
def test_cuda_without_cuda_is_a_user_error_with_the_fix(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(UserError) as error:
        resolve_device(name)
    assert f"experiment.device is {name!r}" in error.value.problem and "sees no CUDA device" in error.value.problem
    assert "--device cpu" in error.value.fix and "CUDA build" in error.value.fix


# ----------------------------------------------------------------- the config


@pytest.mark.parametrize("value", ["tpu", "gpu", "cuda:-1", "cuda:x", "CPU", "cuda:", ""])
def test_a_bad_device_name_is_refused_on_load(tmp_path: Path, value: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump({"experiment": {"device": value}}))
    with pytest.raises(UserError) as error:
        load_config(path)
    assert str(path) in error.value.problem
    assert "experiment.device" in error.value.problem and repr(value) in error.value.problem
    assert "cpu, cuda, cuda:0 or auto" in error.value.fix


@pytest.mark.parametrize("value", ["cpu", "cuda", "cuda:0", "cuda:12", "auto"])
def test_good_device_names_load(value: str) -> None:
    config = load_config(None, {"experiment.device": value, "experiment.amp": True})
    assert config.experiment.device == value and config.experiment.amp is True


def test_defaults_are_cpu_float32_contiguous() -> None:
    experiment = load_config(None).experiment
    assert (experiment.device, experiment.amp, experiment.channels_last) == ("cpu", False, False)


def test_check_compute_records_the_resolved_device(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert check_compute(load_config(None, {"experiment.device": "auto"})).experiment.device == "cpu"


@pytest.mark.parametrize("device", ["cpu", "auto"])
def test_amp_on_the_cpu_is_refused(monkeypatch: pytest.MonkeyPatch, device: str) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(UserError) as error:
        check_compute(load_config(None, {"experiment.device": device, "experiment.amp": True}))
    assert "experiment.amp is true, but the device is cpu" in error.value.problem
    assert "drop --amp" in error.value.fix


@pytest.mark.usefixtures("fake_gpus")
@pytest.mark.parametrize("overrides", [{"search.workers": 2}, {"search.executor": "ray"}])
def test_a_gpu_with_worker_processes_is_refused(overrides: dict[str, Any]) -> None:
    with pytest.raises(UserError) as error:
        check_compute(load_config(None, {"experiment.device": "cuda", **overrides}))
    assert "experiment.device is cuda:0" in error.value.problem and "search.workers=1" in error.value.fix


@pytest.mark.usefixtures("fake_gpus")
def test_a_gpu_config_resolves_with_amp() -> None:
    config = check_compute(load_config(None, {"experiment.device": "cuda", "experiment.amp": True}))
    assert config.experiment.device == "cuda:0" and config.experiment.amp


# ----------------------------------------------------------------- the command line


@no_cuda
def test_the_amc_command_exits_2_without_a_traceback(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "amc.cli.main", "search", "--config", SMOKE, "--device", "cuda", "--out",
         str(tmp_path / "run")], capture_output=True, text=True, timeout=300,
        env={**os.environ, "AMC_CACHE": str(tmp_path / "cache")},
    )  # fmt: skip
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert " ".join(result.stderr.split()).startswith("amc: error: experiment.device is 'cuda', but this torch")
    assert not (tmp_path / "run").exists() and not (tmp_path / "cache").exists()


@no_cuda
@pytest.mark.parametrize(
    ("command", "flags", "message"),
    [
        ("search", ["--device", "cuda"], "experiment.device is 'cuda', but this torch"),
        ("search", ["--device", "cuda:3"], "sees no CUDA device"),
        ("train", ["--device", "cuda"], "sees no CUDA device"),
        ("evaluate", ["--device", "cuda:1"], "experiment.device is 'cuda:1'"),
        ("demo", ["--device", "cuda"], "sees no CUDA device"),
        ("search", ["--amp"], "experiment.amp is true, but the device is cpu"),
        ("search", ["--device", "tpu"], "experiment.device is 'tpu', which is not cpu, cuda"),
    ],
)
def test_an_unusable_device_exits_2_before_any_work(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture,
    command: str,
    flags: list[str],
    message: str,
) -> None:
    from amc.cli.main import main

    cache, out = tmp_path / "cache", tmp_path / "run"
    cache.mkdir()
    monkeypatch.setenv("AMC_CACHE", str(cache))
    strategy = tmp_path / "strategy.json"  # evaluate's source must exist; it is read after the config is checked
    strategy.write_text("{}")
    target = [str(strategy)] if command == "evaluate" else []
    code = main([command, *target, "--config", SMOKE, *flags, "--out", str(out), "--no-progress"])
    stderr = capsys.readouterr().err
    text = " ".join(stderr.split())
    assert code == 2, stderr
    assert text.startswith("amc: error: ") and message in text and "Fix:" in text
    assert stderr.count("amc: error:") == 1 and "\n\n" not in stderr.strip()  # one paragraph
    assert not out.exists() and not any(cache.iterdir())  # no run folder, no checkpoint, no data cache


@pytest.mark.parametrize("command", ["train", "search", "demo", "evaluate"])
def test_every_network_command_takes_device_and_amp(capsys: pytest.CaptureFixture, command: str) -> None:
    from amc.cli.main import main

    with pytest.raises(SystemExit):
        main([command, "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "--device DEVICE" in text and "cuda:N, or auto" in text
    assert "--amp" in text and "refused on the CPU" in text


# ----------------------------------------------------------------- plumbing


def test_moving_a_cpu_tensor_to_the_cpu_is_the_tensor_itself() -> None:
    """Why CPU results stay bit-identical: every `.to(device)` on the CPU path is a no-op returning the input."""
    tensor = torch.randn(2, 3)
    assert tensor.to(torch.device("cpu")) is tensor and tensor.cpu() is tensor
    assert isinstance(autocast(torch.device("cpu"), False), nullcontext)


class Recorder:
    """Stands in for amc.device.autocast: records (device, amp) of every forward pass it wraps."""

    def __init__(self) -> None:
        self.calls: list[tuple[torch.device, bool]] = []

    def __call__(self, device: torch.device, amp: bool) -> nullcontext[None]:
        self.calls.append((device, amp))
        return nullcontext()


def test_training_and_testing_pass_device_and_amp_to_every_forward(
    monkeypatch: pytest.MonkeyPatch, synthetic_bundle: Any
) -> None:
    from amc.models import create_model
    from amc.training import loop

    recorder = Recorder()
    monkeypatch.setattr(loop, "autocast", recorder)
    model = create_model("tiny", in_channels=synthetic_bundle.input_size[0], num_classes=synthetic_bundle.num_classes)
    settings = loop.TrainSettings(epochs=1, batch_size=128, augment=False)
    loop.train(model, synthetic_bundle.train, synthetic_bundle.search_val, settings, progress=False,
               log=lambda _: None, val_images=64, amp=True)  # fmt: skip
    loop.accuracy_on(model, synthetic_bundle.test, limit=64, amp=True)
    assert len(recorder.calls) > 3 and set(recorder.calls) == {(torch.device("cpu"), True)}


def test_netadapt_finetune_and_scoring_pass_amp(monkeypatch: pytest.MonkeyPatch, synthetic_bundle: Any) -> None:
    from amc.models import create_model
    from amc.problem import SearchValScorer, scoring
    from amc.search import netadapt

    recorder = Recorder()
    monkeypatch.setattr(netadapt, "autocast", recorder)
    monkeypatch.setattr(scoring, "autocast", recorder)
    model = create_model("tiny", in_channels=synthetic_bundle.input_size[0], num_classes=synthetic_bundle.num_classes)
    netadapt.finetune_(model, synthetic_bundle.train, 3, 0.01, 0.0, 16, seed=0, amp=True)
    scorer = SearchValScorer.from_datasets(synthetic_bundle.train, synthetic_bundle.search_val, 64, 32,
                                           device=torch.device("cpu"), amp=True)  # fmt: skip
    scorer(model)
    assert recorder.calls == [(torch.device("cpu"), True)] * 4


def test_build_task_moves_model_and_scoring_data_once(monkeypatch: pytest.MonkeyPatch) -> None:
    from amc.problem import factory
    from amc.problem.scoring import SearchValScorer

    moved: list[tuple[nn.Module, torch.device]] = []
    drawn: list[torch.device | None] = []
    real_move, real_draw = factory.to_device, SearchValScorer.from_datasets

    def move(model: nn.Module, device: torch.device, channels_last: bool = False) -> nn.Module:
        moved.append((model, device))
        return real_move(model, device, channels_last)

    def draw(*args: Any, **kwargs: Any) -> SearchValScorer:
        drawn.append(args[7])  # device, after (train, search_val, eval, bn, adaptive_bn, batch_size, seed)
        return real_draw(*args, **kwargs)

    monkeypatch.setattr(factory, "to_device", move)
    monkeypatch.setattr(factory.SearchValScorer, "from_datasets", draw)
    task = factory.build_task(load_config(SMOKE, {"experiment.device": "cpu"}), progress=False, log=lambda _: None)
    assert moved == [(task.problem.model, torch.device("cpu"))] and drawn == [torch.device("cpu")]
    assert task.config.experiment.device == "cpu"
    scorer = task.problem.scorer
    assert isinstance(scorer, SearchValScorer)
    assert {images.device for images, _ in scorer.val_batches} == {torch.device("cpu")}


# ----------------------------------------------------------------- resuming


def test_resume_with_another_device_is_refused(tmp_path: Path) -> None:
    from amc.problem import build_task
    from amc.search.methods import check_resume, run_search

    quiet: dict[str, Any] = {"progress": False, "log": lambda _: None}
    task = build_task(load_config(SMOKE, {"search.method": "uniform"}), **quiet)
    run_search(task, tmp_path / "run", **quiet)
    experiment = dataclasses.replace(task.config.experiment, device="cuda:0", amp=True)
    on_gpu = dataclasses.replace(task, config=dataclasses.replace(task.config, experiment=experiment))
    with pytest.raises(UserError) as error:
        check_resume(on_gpu, tmp_path / "run")
    assert "experiment.device: 'cpu' then, 'cuda:0' now" in error.value.problem
    assert "experiment.amp: False then, True now" in error.value.problem
    # a run folder written before these settings existed ran on the CPU in float32: it resumes
    stored = yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())
    for key in ("device", "amp", "channels_last"):
        del stored["experiment"][key]
    (tmp_path / "run" / "config.yaml").write_text(yaml.safe_dump(stored))
    check_resume(task, tmp_path / "run", log=lambda _: None)


# ----------------------------------------------------------------- CPU results do not change


class UserNet(nn.Module):
    """A user's own residual network (not in the zoo)."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(1, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16), nn.ReLU())
        self.body = nn.Sequential(nn.Conv2d(16, 24, 3, padding=1, bias=False), nn.BatchNorm2d(24), nn.ReLU(),
                                  nn.Conv2d(24, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16))  # fmt: skip
        self.head = nn.Linear(16, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        return self.head(torch.relu(x + self.body(x)).mean((2, 3)))


def _api_run(tmp_path: Path, **device: str) -> tuple[list[float], dict[str, torch.Tensor]]:
    """A seeded AMC search through the public API (lstsq refit, BN re-estimation, scoring), then the best applied."""
    torch.manual_seed(0)
    generator = torch.Generator().manual_seed(0)
    images = torch.randn(96, 1, 10, 10, generator=generator)
    labels = (images[:, 0].mean((1, 2)) > 0).long()
    loader = [(images[i : i + 32], labels[i : i + 32]) for i in range(0, 96, 32)]

    def score(model: nn.Module) -> float:
        with torch.no_grad():
            return sum((model(x).argmax(1) == y).sum().item() for x, y in loader) / 96

    task = amc.prepare(UserNet().eval(), (1, 10, 10), score, cost_model="macs", budget=0.5, calibration=loader,
                       calibration_images=64, settings={"search.episodes": 4, "agent.warmup_episodes": 2,
                                                        "search.round_to": 4}, **device)  # fmt: skip
    result = amc.search_strategy(task, tmp_path / str(device), progress=False, log=lambda _: None)
    accuracies = [float(row["accuracy"]) for row in _rows(tmp_path / str(device))]
    return accuracies, amc.apply(task, result.best).state_dict()


def _rows(run: Path) -> list[dict[str, str]]:
    from amc.search.run_folder import recorded_rows

    return recorded_rows(run)


def test_api_search_on_cpu_is_bit_identical_with_and_without_device(tmp_path: Path) -> None:
    plain_acc, plain_weights = _api_run(tmp_path)
    cpu_acc, cpu_weights = _api_run(tmp_path, device="cpu")
    assert plain_acc == cpu_acc and len(plain_acc) == 4
    assert plain_weights.keys() == cpu_weights.keys()
    assert all(torch.equal(plain_weights[key], cpu_weights[key]) for key in plain_weights)


def test_training_and_netadapt_on_cpu_are_bit_identical_with_and_without_device(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Base-model training, NetAdapt's short-term fine-tune and scoring: a default config and experiment.device cpu
    give the same weights and the same episodes, bit for bit."""
    from amc.problem import build_task
    from amc.search.methods import run_search

    netadapt = {"search.method": "netadapt", "search.netadapt.step": 0.3, "search.netadapt.finetune_steps": 3}
    runs = []
    for name, device in (("plain", {}), ("cpu", {"experiment.device": "cpu"})):
        monkeypatch.setenv("AMC_CACHE", str(tmp_path / f"cache-{name}"))  # the base model is trained each time
        task = build_task(load_config(SMOKE, {**netadapt, **device}), progress=False, log=lambda _: None)
        run_search(task, tmp_path / name, progress=False, log=lambda _: None)
        base = {key: value.clone() for key, value in task.problem.model.state_dict().items()}
        rows = [{k: v for k, v in row.items() if not k.endswith("_s")} for row in _rows(tmp_path / name)]
        runs.append((base, rows))
    (plain_base, plain_rows), (cpu_base, cpu_rows) = runs
    assert all(torch.equal(plain_base[key], cpu_base[key]) for key in plain_base)
    assert plain_rows == cpu_rows and len(plain_rows) >= 2
