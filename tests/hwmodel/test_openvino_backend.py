"""The OpenVINO LUT backend: layers and whole networks timed by OpenVINO's CPU plugin, its fingerprint, and the
error when the `openvino` extra is missing."""

from __future__ import annotations

import sys
from datetime import timedelta
from types import SimpleNamespace

import pytest
import torch

from amc.cli.main import main
from amc.models import create_model
from hwmodel.errors import HwModelError
from hwmodel.lut.backends import create_backend, onnx_unit, openvino_reorders_ms
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


class _ProfiledRequest:
    """A stand-in for an OpenVINO request: per call, 5 ms the first time and 1 ms after in a Reorder, 2 ms in a
    Convolution; its profile holds each node's mean since the first call, to the microsecond, as the plugin's."""

    def __init__(self) -> None:
        self.calls, self.totals = 0, {"Reorder": 0.0, "Convolution": 0.0}

    def infer(self) -> None:
        self.calls += 1
        self.totals["Reorder"] += 5.0 if self.calls == 1 else 1.0
        self.totals["Convolution"] += 2.0

    def get_profiling_info(self) -> list[SimpleNamespace]:
        return [
            SimpleNamespace(node_type=kind, real_time=timedelta(milliseconds=round(total / self.calls, 3)))
            for kind, total in self.totals.items()
        ]


def test_reorder_time_per_call_comes_from_the_counters_steady_state():
    assert openvino_reorders_ms(_ProfiledRequest(), warmup=10, calls=30) == pytest.approx(1.0, abs=1e-3)


def test_a_unit_entry_leaves_out_its_layout_reorders():
    """A 1x1 conv on a large map timed alone spends much of its call converting layouts at its borders (Reorders
    OpenVINO does not run between layers inside a network): the entry must be well below the unit's wall time."""
    backend = create_backend("openvino", threads=1, warmup=3, repeats=15)
    spec = LayerSpec("conv", 16, 96, in_hw=(112, 112))
    entry = backend.measure_layer(spec).median_ms
    wall = backend._timer(*onnx_unit(spec))(15).median_ms
    assert 0 < entry < 0.9 * wall


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
