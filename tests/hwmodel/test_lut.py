"""Latency LUTs: JSON round trip, schema and device checks, on-demand measurement, overheads, dict-hit lookups."""

from __future__ import annotations

import json

import pytest
import torch

from hwmodel.errors import HwModelError
from hwmodel.lut.fidelity import fidelity_report, fit_affine
from hwmodel.lut.model import LutCostModel
from hwmodel.lut.table import LUT_SCHEMA_VERSION, LatencyTable, NetworkOverhead, structure_key
from hwmodel.lut.timing import Measurement
from hwmodel.spec import LayerSpec

torch.set_num_threads(1)

TINY = LayerSpec("conv", 4, 8, kernel=3, padding=1, in_hw=8, fused=("bn", "relu"))
TINY_LINEAR = LayerSpec("linear", 8, 4, bias=True)


def table_with(entries: dict[LayerSpec, float], backend: str = "torch") -> LatencyTable:
    table = LatencyTable.create(backend, threads=1, warmup=1, repeats=3)
    for spec, ms in entries.items():
        table.add(spec, Measurement(ms, ms / 10, ms * 0.9, 3))
    return table


def test_json_round_trip(tmp_path):
    table = table_with({TINY: 0.05, TINY_LINEAR: 0.01})
    table.overheads["abc"] = NetworkOverhead("tiny", (3, 16, 16), 0.2, 5, 12.0, 2.0)
    path = tmp_path / "lut.json"
    table.save(path)
    again = LatencyTable.load(path)
    assert again.to_dict() == table.to_dict()
    assert again.specs[TINY.key()] == TINY
    assert [p.name for p in tmp_path.iterdir()] == ["lut.json"]  # the temporary file was renamed, not left behind


def test_future_schema_version_is_rejected(tmp_path):
    path = tmp_path / "future.json"
    data = table_with({TINY: 0.05}).to_dict()
    data["schema_version"] = LUT_SCHEMA_VERSION + 1
    path.write_text(json.dumps(data))
    with pytest.raises(HwModelError) as caught:
        LatencyTable.load(path)
    assert str(path) in caught.value.problem and "schema_version" in caught.value.problem
    assert "upgrade amc" in caught.value.fix


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda d: d.update(schema="something-else"), "schema"),
        (lambda d: d.update(spec_key_version=0), "spec_key_version"),
        (lambda d: d.update(backend="tvm"), "backend"),
        (lambda d: d.update(settings={"repeats": "many"}), "settings"),
        (lambda d: next(iter(d["entries"].values())).update(median_ms=-1), "median_ms"),
        (lambda d: next(iter(d["entries"].values())).pop("spec"), "entries."),
    ],
)
def test_malformed_lut_names_file_and_field(tmp_path, mutate, field):
    data = table_with({TINY: 0.05}).to_dict()
    mutate(data)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data))
    with pytest.raises(HwModelError) as caught:
        LatencyTable.load(path)
    assert str(path) in caught.value.problem and field in caught.value.problem and caught.value.fix


def test_not_json_is_a_clear_error(tmp_path):
    path = tmp_path / "lut.json"
    path.write_text("{not json")
    with pytest.raises(HwModelError, match="not readable JSON"):
        LatencyTable.load(path)


def test_lut_from_another_device_is_refused_or_warned(tmp_path):
    table = table_with({TINY: 0.05})
    table.fingerprint["cpu_model"] = "Some Other CPU"
    path = tmp_path / "foreign.json"
    table.save(path)
    with pytest.raises(HwModelError) as caught:
        LutCostModel.open(path)
    assert "cpu_model" in caught.value.problem and "Some Other CPU" in caught.value.problem
    assert "--allow-foreign-lut" in caught.value.fix
    with pytest.warns(RuntimeWarning, match="another device"):
        foreign = LutCostModel.open(path, allow_foreign=True)
    assert foreign.layer_cost(TINY) == 0.05
    with pytest.raises(HwModelError, match="another device"):
        foreign.layer_cost(TINY_LINEAR)  # cannot be measured here


def test_lookups_are_dict_hits(tmp_path):
    path = tmp_path / "lut.json"
    table_with({TINY: 0.05, TINY_LINEAR: 0.01}).save(path)
    lut = LutCostModel.open(path)
    path.unlink()  # no file I/O after loading
    assert lut.network_cost([TINY, TINY_LINEAR, TINY]) == pytest.approx(0.11)
    assert lut.layer_cost(TINY.with_density(0.5)) == 0.05  # a CPU prices the dense layer
    assert lut._shared.backend is None and lut.measured_on_demand == 0


@pytest.mark.parametrize("backend", ["torch", "onnxruntime", "openvino"])
def test_missing_entries_are_measured_on_demand(tmp_path, backend):
    path = tmp_path / "lut.json"
    lut = LutCostModel(table_with({}, backend), path, repeats=3, warmup=1)
    first = lut.layer_cost(TINY)
    assert first > 0 and lut.measured_on_demand == 1
    assert lut.layer_cost(TINY) == first and lut.measured_on_demand == 1
    lut.layer_cost(TINY_LINEAR)
    lut.flush()
    saved = LatencyTable.load(path)
    assert set(saved.entries) == {TINY.key(), TINY_LINEAR.key()}
    assert saved.entries[TINY.key()].repeats == 3


def test_on_demand_can_be_switched_off():
    lut = LutCostModel(table_with({}), measure_missing=False)
    with pytest.raises(HwModelError, match="no entry"):
        lut.layer_cost(TINY)


def test_overhead_applies_to_every_variant_of_its_network_only():
    network = [TINY, LayerSpec("conv", 8, 8, kernel=3, padding=1, in_hw=8, fused=("bn",))]
    variant = [TINY.with_channels(4, 4), network[1].with_channels(4, 8)]
    other = [TINY]
    lut = LutCostModel(table_with({spec: 0.01 for spec in network + variant}))
    assert structure_key(network) == structure_key(variant) != structure_key(other)
    lut.set_overhead(network, NetworkOverhead("two-layer", (4, 8, 8), 0.5, 3, 10.0, 1.0))
    assert lut.network_cost(variant) == pytest.approx(0.02 + 0.5)
    assert lut.network_cost(other) == pytest.approx(0.01)


def test_a_scaled_network_is_priced_only_through_a_model_bound_to_it():
    network = [TINY, TINY_LINEAR]
    lut = LutCostModel(table_with({TINY: 0.01, TINY_LINEAR: 0.03}))
    lut.set_overhead(network, NetworkOverhead("net", (4, 8, 8), 0.5, 5, 10.0, 1.0, scale=1.5))
    with pytest.raises(HwModelError, match="bind"):
        lut.network_cost(network)
    bound = lut.bind(network)
    assert bound.layer_cost(TINY) == pytest.approx(0.015) and bound.entry_ms(TINY) == 0.01
    assert bound.network_cost(network) == pytest.approx(1.5 * 0.04 + 0.5)
    other = bound.bind([TINY])  # another network: entries as timed, no scale
    assert other.layer_cost(TINY) == 0.01


def test_fidelity_report_and_offset():
    measured = [1.0, 2.0, 3.0, 4.0]
    predicted = [1.05, 1.9, 3.1, 4.36]
    report = fidelity_report(predicted, measured, macs=[4, 3, 2, 1])
    assert report.mape == pytest.approx((5 + 5 + 10 / 3 + 9) / 4)
    assert report.within_10pct == 1.0
    assert report.spearman == pytest.approx(1.0) and report.macs_spearman == pytest.approx(-1.0)
    assert set(report.to_dict()) >= {"mape", "within_10pct", "spearman", "kendall", "macs_spearman", "n"}


def test_affine_fit_is_robust_to_one_disturbed_run_and_clips_the_scale():
    predicted = [1.0, 2.0, 3.0, 4.0, 5.0]
    measured = [1.2 * p + 0.3 for p in predicted]
    measured[2] += 2.0  # one run caught in a slow spell
    scale, offset = fit_affine(predicted, measured)
    assert scale == pytest.approx(1.2) and offset == pytest.approx(0.3)
    assert fit_affine([1.0, 2.0], [1.0, 9.0])[0] == 2.0  # an implausible slope is clipped
    assert fit_affine([1.0, 1.0], [1.5, 1.7]) == pytest.approx((1.0, 0.6))  # no spread: offset only
