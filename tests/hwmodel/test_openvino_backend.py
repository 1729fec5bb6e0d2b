"""The OpenVINO LUT backend: layers and whole networks timed by OpenVINO's CPU plugin, its fingerprint, and the
error when the `openvino` extra is missing."""

from __future__ import annotations

import sys

import pytest
import torch

from amc.cli.main import main
from amc.models import create_model
from hwmodel.errors import HwModelError
from hwmodel.lut.backends import create_backend
from hwmodel.lut.fingerprint import device_fingerprint
from hwmodel.lut.table import LatencyTable
from hwmodel.spec import LayerSpec

pytest.importorskip("openvino")
torch.set_num_threads(1)

SMALL = LayerSpec("conv", 8, 8, (3, 3), (1, 1), (1, 1), in_hw=(8, 8), fused=("bn", "relu"))
LARGE = LayerSpec("conv", 64, 64, (3, 3), (1, 1), (1, 1), in_hw=(56, 56), fused=("bn", "relu"))


def test_a_larger_layer_takes_longer():
    backend = create_backend("openvino", threads=1, warmup=2, repeats=10)
    small, large = backend.measure_layer(SMALL), backend.measure_layer(LARGE)
    assert 0 < small.median_ms < large.median_ms and large.repeats == 10


def test_whole_networks_are_timed_side_by_side():
    backend = create_backend("openvino", threads=1, warmup=2, repeats=5)
    thin = create_model("tiny", in_channels=1, num_classes=10)
    wide = create_model("resnet20", in_channels=1, num_classes=10)
    times = backend.measure_networks([thin, wide], (1, 1, 28, 28), rounds=2)
    assert len(times) == 2 and 0 < times[0].median_ms < times[1].median_ms


def test_the_fingerprint_records_version_device_and_precision():
    found = device_fingerprint("openvino", 2)
    assert found["backend"] == "openvino" and found["threads"] == "2"
    assert found["provider"] == "CPU" and found["precision"] == "f32" and found["openvino"]


def test_a_missing_openvino_is_one_paragraph(monkeypatch):
    monkeypatch.setitem(sys.modules, "openvino", None)
    with pytest.raises(HwModelError, match=r"amc-toolkit\[openvino\]"):
        create_backend("openvino")


def test_lut_build_with_the_openvino_backend(tmp_path, capsys):
    out = tmp_path / "tiny-ov.json"
    args = ["lut", "build", "--model", "tiny", "--backend", "openvino", "--out", str(out), "--calibrate", "2"]
    assert main([*args, "--repeats", "3", "--warmup", "1", "--no-progress"]) == 0
    table = LatencyTable.load(out)
    assert table.backend == "openvino" and len(table.entries) == 22 and len(table.overheads) == 1
    assert "openvino, 1 thread(s)" in capsys.readouterr().out
