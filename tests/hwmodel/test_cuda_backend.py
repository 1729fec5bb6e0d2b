"""The torch-cuda LUT backend without a GPU: its fingerprint from stand-in `torch.cuda` functions, its clear
error where CUDA is absent, its event timing with fake events, and the batch a LUT records."""

from __future__ import annotations

import contextlib
import json
import subprocess
from pathlib import Path

import pytest
import torch

import hwmodel.lut.cuda as cuda
import hwmodel.lut.fingerprint as fingerprint
from amc.cli.main import main
from amc.config import load_config
from amc.costs.latency_tables import load_network, open_for_build
from amc.errors import UserError
from amc.optional import check_config
from hwmodel.errors import HwModelError
from hwmodel.lut import LatencyTable, LutCostModel, device_fingerprint
from hwmodel.lut.backends import create_backend
from hwmodel.spec import LayerSpec

SPEC = LayerSpec("conv", 4, 8, (3, 3), (1, 1), (1, 1), (1, 1), 1, (6, 6), batch=2, fused=("bn", "relu"))


@pytest.fixture
def fake_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    """torch.cuda as an H200 would answer it (the GPU itself is never touched)."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda index=0: f"NVIDIA H200 #{index}")
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda index=0: (9, 0))
    monkeypatch.setattr(torch.version, "cuda", "12.8")
    monkeypatch.setattr(torch.backends.cudnn, "is_available", lambda: True)
    monkeypatch.setattr(torch.backends.cudnn, "version", lambda: 91002)
    monkeypatch.setattr(fingerprint, "gpu_driver_version", lambda: "570.86.15")


@pytest.fixture
def no_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 0)


def test_the_fingerprint_names_gpu_driver_libraries_settings_and_batch(fake_gpu: None) -> None:
    found = device_fingerprint("torch-cuda", 1, 32, cudnn_benchmark=False, device_index=1)
    assert found["backend"] == "torch-cuda" and found["provider"] == "eager-cuda"
    assert found["gpu_name"] == "NVIDIA H200 #1" and found["compute_capability"] == "9.0"
    assert found["gpu_driver"] == "570.86.15" and found["cuda_runtime"] == "12.8" and found["cudnn"] == "91002"
    assert found["cudnn_benchmark"] == "off" and found["device_index"] == "1" and found["batch"] == "32"
    assert found["torch"] == torch.__version__ and found["cudnn_tf32"] in ("on", "off")
    assert all(isinstance(value, str) for value in found.values())
    assert device_fingerprint("torch-cuda", 1)["batch"] == "1"


def test_cpu_fingerprints_are_unchanged_by_the_batch() -> None:
    """Existing CPU LUT files still match: the batch is not part of a CPU fingerprint."""
    assert device_fingerprint("torch", 1, 32) == device_fingerprint("torch", 1)
    assert "batch" not in device_fingerprint("torch", 1)


def test_the_driver_version_degrades_to_unknown(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fingerprint.shutil, "which", lambda name: None)
    assert fingerprint.gpu_driver_version() == "unknown"
    monkeypatch.setattr(fingerprint.shutil, "which", lambda name: "/usr/bin/nvidia-smi")
    answer = subprocess.CompletedProcess([], 0, stdout="570.86.15\n570.86.15\n", stderr="")
    monkeypatch.setattr(fingerprint.subprocess, "run", lambda *args, **kwargs: answer)
    assert fingerprint.gpu_driver_version() == "570.86.15"

    def broken(*args: object, **kwargs: object) -> None:
        raise subprocess.CalledProcessError(9, "nvidia-smi")

    monkeypatch.setattr(fingerprint.subprocess, "run", broken)
    assert fingerprint.gpu_driver_version() == "unknown"


def test_without_cuda_the_backend_and_the_table_refuse_in_one_paragraph(no_gpu: None) -> None:
    for attempt in (lambda: create_backend("torch-cuda"), lambda: LatencyTable.create("torch-cuda", 1, 1, 3)):
        with pytest.raises(HwModelError, match="needs a CUDA GPU; torch sees none") as caught:
            attempt()
        assert "--backend torch" in caught.value.fix and "GPU machine" in caught.value.fix
        assert "\n" not in str(caught.value)


def test_a_cpu_only_torch_build_is_named(no_gpu: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.version, "cuda", None)
    with pytest.raises(HwModelError, match="CPU-only build"):
        fingerprint.require_cuda()


def test_a_gpu_index_past_the_last_gpu_is_refused(fake_gpu: None) -> None:
    with pytest.raises(HwModelError, match="asked for GPU 5, but torch sees 2"):
        fingerprint.require_cuda(5)


def test_cpu_backends_take_no_cuda_options() -> None:
    with pytest.raises(HwModelError, match="takes no option"):
        create_backend("torch", cudnn_benchmark=True)


class FakeEvent:
    """Stands in for torch.cuda.Event: `record` reads a clock that the timed call advances."""

    clock = 0.0

    def __init__(self) -> None:
        self.at: float | None = None

    def record(self) -> None:
        self.at = FakeEvent.clock

    def synchronize(self) -> None:
        assert self.at is not None

    def elapsed_time(self, end_event: cuda.TimingEvent) -> float:
        assert isinstance(end_event, FakeEvent) and self.at is not None and end_event.at is not None
        return end_event.at - self.at


def test_event_timing_warms_up_synchronizes_and_times_each_call() -> None:
    calls: list[str] = []
    durations = iter([9.0, 9.0, 1.0, 2.0, 3.0, 4.0, 50.0])

    def run() -> None:
        calls.append("run")
        FakeEvent.clock += next(durations)

    found = cuda.time_with_events(run, 2, 5, FakeEvent, lambda: calls.append("sync"))
    assert calls[:3] == ["run", "run", "sync"] and calls.count("run") == 7
    assert found.median_ms == 3.0 and found.min_ms == 1.0 and found.repeats == 5 and found.iqr_ms > 0
    with pytest.raises(ValueError):
        cuda.time_with_events(run, 0, 0, FakeEvent, lambda: None)


def test_the_backend_times_units_and_networks_through_its_event_timer(
    fake_gpu: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The whole timing path on the CPU: the GPU replaced by the CPU device, CUDA events by fake ones."""
    synced: list[int] = []
    monkeypatch.setattr(cuda, "cuda_event", FakeEvent)
    monkeypatch.setattr(torch.cuda, "synchronize", lambda: synced.append(1))
    monkeypatch.setattr(torch.cuda, "device", lambda device: contextlib.nullcontext())
    backend = create_backend("torch-cuda", threads=1, warmup=0, repeats=4, cudnn_benchmark=False)
    assert isinstance(backend, cuda.TorchCudaBackend) and backend.device == torch.device("cuda", 0)
    backend.device = torch.device("cpu")  # type: ignore[attr-defined]
    before = torch.backends.cudnn.benchmark
    measured = backend.measure_layer(SPEC)
    assert measured.repeats == 4 and measured.median_ms >= 0 and synced
    assert torch.backends.cudnn.benchmark == before  # restored after timing
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU())
    assert len(backend.measure_networks([model, model], (2, 3, 8, 8), rounds=2)) == 2
    assert next(model.parameters()).device.type == "cpu"  # the caller's model is untouched


def test_benchmark_mode_always_warms_up_once(fake_gpu: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """cuDNN's algorithm search runs on a shape's first call: with benchmark mode on it is never timed."""
    seen: list[int] = []

    def recording(run: object, warmup: int, repeats: int, *rest: object) -> object:
        seen.append(warmup)
        return cuda.summarize([1.0])

    monkeypatch.setattr(cuda, "time_with_events", recording)
    backend = cuda.TorchCudaBackend(warmup=0, repeats=1, cudnn_benchmark=True)
    backend.device = torch.device("cpu")
    monkeypatch.setattr(torch.cuda, "device", lambda device: contextlib.nullcontext())
    backend.measure_layer(SPEC)
    assert seen == [1]


def test_a_torch_cuda_table_records_batch_and_benchmark_and_reloads(fake_gpu: None, tmp_path: Path) -> None:
    table = LatencyTable.create("torch-cuda", 1, 2, 5, 32, cudnn_benchmark=False)
    assert table.settings == {"warmup": 2, "repeats": 5, "threads": 1, "batch": 32, "cudnn_benchmark": 0,
                              "device_index": 0}  # fmt: skip
    assert table.backend_options() == {"cudnn_benchmark": False, "device_index": 0}
    path = tmp_path / "gpu.json"
    table.save(path)
    loaded = LutCostModel.open(path)  # the same (fake) GPU: not foreign
    assert not loaded.foreign and loaded.table.batch == 32 and loaded.table.fingerprint == table.fingerprint


def test_a_torch_cuda_table_opened_without_a_gpu_is_foreign(fake_gpu: None, tmp_path: Path, monkeypatch) -> None:
    path = tmp_path / "gpu.json"
    LatencyTable.create("torch-cuda", 1, 2, 5).save(path)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(HwModelError, match=r"measured on NVIDIA H200 #0, and the torch-cuda LUT backend needs"):
        LutCostModel.open(path)
    with pytest.warns(RuntimeWarning, match="without that GPU here"):
        assert LutCostModel.open(path, allow_foreign=True).foreign


def test_old_lut_files_load_at_batch_1_and_bad_batches_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "old.json"
    data = LatencyTable.create("torch", 1, 1, 3).to_dict()
    del data["settings"]["batch"]  # type: ignore[attr-defined]
    path.write_text(json.dumps(data))
    assert LatencyTable.load(path).batch == 1
    for bad in (0, "2", True):
        data["settings"]["batch"] = bad  # type: ignore[index]
        path.write_text(json.dumps(data))
        with pytest.raises(HwModelError, match=r"settings\.batch"):
            LatencyTable.load(path)
    with pytest.raises(HwModelError, match="batch"):
        LatencyTable.create("torch", 1, 1, 3, 0)


def test_a_network_and_its_specs_carry_the_batch() -> None:
    network = load_network("tiny", batch=4)
    assert network.batch == 4 and {spec.batch for spec in network.table.specs()} == {4}
    assert load_network("tiny").batch == 1


def test_resuming_a_lut_at_another_batch_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "lut.json"
    LatencyTable.create("torch", 1, 1, 3, 2).save(path)
    assert open_for_build(path, "torch", 1, 1, 3, 30.0, 2).table.batch == 2
    with pytest.raises(HwModelError, match=r"batch 2 \(asked 1\)"):
        open_for_build(path, "torch", 1, 1, 3, 30.0)


def test_lut_build_at_a_batch_and_validate_refusing_another(tmp_path: Path) -> None:
    out = tmp_path / "tiny-b2.json"
    args = ["lut", "build", "--model", "tiny", "--out", str(out), "--batch", "2", "--calibrate", "0"]
    assert main([*args, "--repeats", "2", "--warmup", "0", "--no-progress"]) == 0
    table = LatencyTable.load(out)
    assert table.batch == 2 and {spec.batch for spec in table.specs.values()} == {2}
    validate = ["lut", "validate", "--lut", str(out), "--model", "tiny", "--batch", "3", "--no-progress"]
    assert main(validate) == 2


def test_lut_build_with_torch_cuda_exits_2_without_cuda(no_gpu: None, tmp_path: Path, capsys) -> None:
    out = tmp_path / "gpu.json"
    assert main(["lut", "build", "--model", "tiny", "--backend", "torch-cuda", "--out", str(out)]) == 2
    assert "needs a CUDA GPU" in capsys.readouterr().err and not out.exists()


def test_a_config_asking_for_torch_cuda_is_refused_up_front_without_cuda(no_gpu: None) -> None:
    config = load_config(None, {"cost.lut_backend": "torch-cuda", "cost.model": "macs"})
    with pytest.raises(UserError, match="cost.lut_backend torch-cuda: the torch-cuda LUT backend needs a CUDA GPU"):
        check_config(config)


def test_a_config_asking_for_torch_cuda_passes_with_a_gpu(fake_gpu: None) -> None:
    check_config(load_config(None, {"cost.lut_backend": "torch-cuda", "cost.model": "macs"}))
