"""INT8 latency tables: units timed as QDQ INT8 graphs, keys and fingerprints that carry the precision, refusals
when an fp32 table meets an INT8 request (and back), old files read as fp32, whole networks timed as INT8."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch

from amc.config import INT8_LUT_BACKENDS, LUT_PRECISIONS, load_config
from amc.costs.latency_tables import Grid, calibrate_overhead, load_network, open_for_build, validate_lut
from amc.costs.registry import auto_lut_path, make_cost_model
from amc.errors import UserError
from amc.graph import build_layer_table
from hwmodel.errors import HwModelError
from hwmodel.lut.backends import (
    OrtBackend,
    _float_unit,
    create_backend,
    exported_network,
    is_quantized,
    onnx_unit,
    quantized_onnx,
)
from hwmodel.lut.fingerprint import INT8_BACKENDS, PRECISIONS, TIMING_METHOD, device_fingerprint
from hwmodel.lut.model import LutCostModel, check_device, require_precision
from hwmodel.lut.table import LatencyTable, structure_key
from hwmodel.lut.timing import Measurement
from hwmodel.spec import LayerSpec

torch.set_num_threads(1)

TINY = LayerSpec("conv", 4, 8, kernel=3, padding=1, in_hw=8, fused=("bn", "relu"))
TINY_FP32_KEY = "v1|conv|i4|o8|k3x3|s1x1|p1x1|d1x1|g1|hw8x8|b1|bias0|float32|f:bn+relu|dense:1"
"""TINY's key as every LUT written before INT8 tables existed stores it."""


def int8_table(backend: str = "onnxruntime") -> LatencyTable:
    return LatencyTable.create(backend, threads=1, warmup=1, repeats=3, precision="int8")


def test_int8_unit_is_measured_under_its_own_key():
    lut = LutCostModel(int8_table())
    ms = lut.entry_ms(TINY)
    (key,) = lut.table.entries
    assert ms > 0 and lut.table.entries[key].repeats == 3
    assert key == TINY_FP32_KEY.replace("|float32|", "|int8|")
    assert lut.table.specs[key].dtype == "int8"
    assert lut.entry_ms(TINY.with_density(0.5)) == ms and len(lut.table.entries) == 1  # priced dense, a dict hit
    assert lut.entry_ms(TINY.with_bits(4, 8)) == ms  # CPU INT8 kernels run 8 bits whatever a spec narrower asks


def test_fp32_keys_are_unchanged():
    assert TINY.key() == TINY_FP32_KEY
    fp32 = LatencyTable.create("onnxruntime", 1, 1, 3)
    assert fp32.unit_spec(TINY) is TINY and fp32.precision == "fp32" and fp32.runtime == "onnxruntime"
    assert "precision_bits" not in fp32.settings and "lut_precision" not in fp32.fingerprint


def test_int8_unit_graph_is_quantized_and_computes_the_float_unit():
    """Oracle: the QDQ unit's output matches the float unit with BN folded into the conv (the graph it quantizes),
    to within INT8 rounding; and ONNX Runtime runs it as a native INT8 convolution."""
    import onnxruntime as ort

    unit = int8_table().unit_spec(TINY)
    model_bytes, example = onnx_unit(unit)
    proto = onnx.load_from_string(model_bytes)
    ops = {node.op_type for node in proto.graph.node}
    assert is_quantized(proto) and "BatchNormalization" not in ops and "QuantizeLinear" in ops
    float_model, float_example = _float_unit(TINY, fold_bn=True)
    assert np.array_equal(example, float_example)
    truth = ort.InferenceSession(float_model.SerializeToString(), providers=["CPUExecutionProvider"])
    quantized = ort.InferenceSession(model_bytes, providers=["CPUExecutionProvider"])
    want = truth.run(None, {"x": example})[0]
    got = quantized.run(None, {"x": example})[0]
    assert np.abs(got - want).max() <= 0.05 * np.abs(want).max()
    assert not np.allclose(got, want, rtol=0, atol=1e-7)  # it did round: not the float graph under another name


def test_precision_is_in_settings_fingerprint_and_file(tmp_path):
    table = int8_table()
    assert table.settings["precision_bits"] == 8 and table.precision == "int8"
    assert table.fingerprint["lut_precision"] == "int8" and table.runtime == "onnxruntime int8"
    fp32_print = device_fingerprint("onnxruntime", 1)
    assert {k: v for k, v in table.fingerprint.items() if k not in ("lut_precision", "quantization")} == fp32_print
    path = tmp_path / "int8.json"
    table.add(table.unit_spec(TINY), Measurement(0.01, 0.001, 0.009, 3))
    table.save(path)
    again = LatencyTable.load(path)
    assert again.to_dict() == table.to_dict() and again.precision == "int8"
    assert check_device(again, path, allow_foreign=False) is False  # this machine, this precision: not foreign


def test_old_lut_json_loads_as_fp32(tmp_path):
    """A file as written before INT8 tables existed: no precision anywhere; it loads as fp32 and writes back as is."""
    old = LatencyTable.create("onnxruntime", 1, 1, 3)
    old.add(TINY, Measurement(0.02, 0.002, 0.018, 3))
    data = old.to_dict()
    assert "precision_bits" not in json.dumps(data) and "lut_precision" not in json.dumps(data)
    path = tmp_path / "old.json"
    path.write_text(json.dumps(data))
    table = LatencyTable.load(path)
    assert table.precision == "fp32" and table.to_dict() == data
    assert LutCostModel(table).entry_ms(TINY) == 0.02  # the old row prices the float layer, nothing re-measured


@pytest.mark.parametrize(
    ("backend", "bits", "entry_dtype", "field"),
    [
        ("onnxruntime", 16, "int8", "precision_bits"),
        ("torch", 8, "int8", "precision_bits"),
        ("onnxruntime", 8, "float32", "dtype"),
    ],
)
def test_bad_precision_in_a_file_is_refused(tmp_path, backend, bits, entry_dtype, field):
    table = LatencyTable.create(backend, 1, 1, 3)
    spec = LayerSpec.from_dict({**TINY.to_dict(), "dtype": entry_dtype})
    table.add(spec, Measurement(0.02, 0.002, 0.018, 3))
    data = table.to_dict()
    data["settings"]["precision_bits"] = bits  # type: ignore[index]
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data))
    with pytest.raises(HwModelError) as caught:
        LatencyTable.load(path)
    assert str(path) in caught.value.problem and field in caught.value.problem


def test_fp32_and_int8_tables_are_never_mixed(tmp_path):
    fp32 = LatencyTable.create("onnxruntime", 1, 1, 3)
    with pytest.raises(HwModelError, match="--precision int8"):
        require_precision(fp32, "fp32.json", "int8")
    with pytest.raises(HwModelError, match="--precision fp32"):
        require_precision(int8_table(), "int8.json", "fp32")
    with pytest.raises(HwModelError, match="fp32 latency table cannot price the int8 layer"):
        fp32.unit_spec(int8_table().unit_spec(TINY))
    path = tmp_path / "fp32.json"
    fp32.save(path)
    with pytest.raises(HwModelError, match="as fp32, but int8"):  # resuming a build at the other precision
        open_for_build(path, "onnxruntime", 1, 1, 3, 30.0, precision="int8")
    config = load_config(None, {"cost.model": f"lut:{path}", "cost.precision": "int8", "model.name": "tiny"})
    network = load_network("tiny")
    with pytest.raises(HwModelError, match="build an int8 LUT"):
        make_cost_model(config, network.model, network.table, progress=False)


@pytest.mark.parametrize("backend", ["torch", "torch-cuda"])
def test_int8_is_refused_on_backends_without_qdq_graphs(backend):
    with pytest.raises(HwModelError, match="cannot time INT8") as caught:
        LatencyTable.create(backend, 1, 1, 3, precision="int8")
    assert "onnxruntime" in caught.value.fix
    with pytest.raises(HwModelError, match="cannot time INT8"):
        create_backend(backend, precision="int8")
    with pytest.raises(HwModelError, match="times float32 layers only"):
        create_backend("torch").measure_layer(int8_table().unit_spec(TINY))


def test_whole_network_int8_timing():
    network = load_network("tiny")
    shape = (1, *network.input_size)
    model_bytes, example = exported_network(network.model, shape, 1)
    quantized = quantized_onnx(model_bytes, [example])
    assert is_quantized(onnx.load_from_string(quantized)) and not is_quantized(onnx.load_from_string(model_bytes))
    assert quantized_onnx(quantized, [example]) == onnx.load_from_string(quantized).SerializeToString()  # as is
    backend = OrtBackend(1, warmup=1, repeats=3, precision="int8")
    (measured,) = backend.measure_networks([network.model], shape, rounds=1)
    assert measured.median_ms > 0 and measured.repeats == 3


def test_openvino_times_int8_units_and_networks():
    pytest.importorskip("openvino")
    network = load_network("tiny")
    backend = create_backend("openvino", 1, 1, 3, precision="int8")
    assert backend.measure_layer(int8_table("openvino").unit_spec(TINY)).median_ms > 0
    with pytest.raises(HwModelError, match="times int8 layers only"):
        backend.measure_layer(TINY)  # a float unit on an INT8 backend: the table would hold the wrong number
    (measured,) = backend.measure_networks([network.model], (1, *network.input_size), rounds=1)
    assert measured.median_ms > 0


def test_validate_an_int8_lut_against_int8_networks():
    network = load_network("tiny")
    lut = LutCostModel(int8_table())
    stored = calibrate_overhead(lut, network, 2, Grid(), progress=False, rounds=1)
    assert stored.samples == 2 and structure_key(network.table.specs()) in lut.table.overheads
    found = validate_lut(lut, network, 3, Grid(), progress=False, rounds=1, calibrate=2)
    assert found.report.n == 3 and found.fit is not None and found.stored is not None
    assert lut.table.entries and all("|int8|" in key for key in lut.table.entries)


def test_config_precision_is_validated(tmp_path):
    assert set(LUT_PRECISIONS) == set(PRECISIONS) and set(INT8_LUT_BACKENDS) == set(INT8_BACKENDS)
    assert load_config(None, {"model.name": None}).cost.precision == "fp32"
    ok = load_config(None, {"cost.precision": "int8", "cost.lut_backend": "openvino", "model.name": None})
    assert ok.cost.precision == "int8"
    for overrides, words in (
        ({"cost.precision": "int4"}, "cost.precision"),
        ({"cost.precision": "int8", "cost.model": "macs"}, "not a measured LUT"),
        ({"cost.precision": "int8", "cost.lut_backend": "torch"}, "cannot time INT8"),
    ):
        with pytest.raises(UserError, match=words):
            load_config(None, {"model.name": None, **overrides})


def test_auto_lut_of_int8_has_its_own_file():
    fp32 = load_config(None, {"model.name": "tiny"})
    int8 = load_config(None, {"model.name": "tiny", "cost.precision": "int8"})
    size = (3, 16, 16)
    assert Path(auto_lut_path(fp32, size)).name == f"tiny__3x16x16__onnxruntime__t1__timing{TIMING_METHOD}.json"
    assert Path(auto_lut_path(int8, size)).name == f"tiny__3x16x16__onnxruntime__int8__t1__timing{TIMING_METHOD}.json"


def test_lut_auto_int8_builds_an_int8_lut():
    network = load_network("tiny")
    config = load_config(None, {"model.name": "tiny", "cost.precision": "int8", "search.round_to": 8})
    table = build_layer_table(network.model, network.input_size, "tiny")
    lut = make_cost_model(config, network.model, table, progress=False, log=lambda _: None)
    assert isinstance(lut, LutCostModel) and lut.table.precision == "int8"
    assert all("|int8|" in key for key in lut.table.entries)
    assert lut.network_cost(table.specs()) > 0


def test_budget_checks_time_the_int8_network(monkeypatch, tmp_path):
    """`amc evaluate`'s check and the post-search check time the INT8 network when the LUT is INT8: the float ONNX
    file is quantized before it is timed, and the verdict names the precision."""
    import hwmodel.lut.backends as backends
    from amc.deliver.deployed import BudgetCheck, check_budget
    from amc.problem import Budget
    from amc.pruning import prune_network
    from amc.pruning.export import export_onnx

    network = load_network("tiny")
    pruned = prune_network(network.model, network.table, {0: 8}).model
    onnx_file = export_onnx(pruned, tmp_path / "model.onnx", network.input_size).path
    quantized: list[int] = []
    real = backends.quantized_onnx
    monkeypatch.setattr(backends, "quantized_onnx", lambda *a, **k: quantized.append(1) or real(*a, **k))
    lut = LutCostModel(int8_table())
    budget = Budget("latency", "ms", 1e-6, 2e-6, 1e-7)  # no CPU runs a network in a nanosecond
    check = check_budget(lut, budget, 5e-7, network.model, pruned, network.input_size, onnx_file, repeats=3)
    assert isinstance(check, BudgetCheck) and check.runtime == "onnxruntime int8" and not check.meets
    assert len(quantized) == 2  # dense and the deployed file, each quantized before timing
    assert lut.backend.precision == "int8"  # type: ignore[attr-defined]  # what verify_budget times networks on


def test_int8_unit_borders_are_found_and_their_round_trip_is_exact(tmp_path):
    """The optimised INT8 unit quantizes its input and dequantizes its output (what a network pays only at its
    ends): both borders are found, and the round trip they are corrected by computes what QDQ defines."""
    import onnxruntime as ort

    from hwmodel.lut.backends import int8_borders, int8_round_trip_model

    unit = int8_table().unit_spec(TINY)
    backend = OrtBackend(1, warmup=1, repeats=3, precision="int8")
    optimized = tmp_path / "unit.onnx"
    backend._session(onnx_unit(unit)[0], optimized)
    assert [shape for shape, _ in int8_borders(optimized, unit)] == [(1, 4, 8, 8), (1, 8, 8, 8)]
    x = np.linspace(-8, 8, 4 * 8 * 8, dtype=np.float32).reshape(1, 4, 8, 8)
    session = ort.InferenceSession(int8_round_trip_model(x.shape, True), providers=["CPUExecutionProvider"])
    want = (np.clip(np.round(x / 0.05) + 128, 0, 255) - 128) * 0.05  # QuantizeLinear/DequantizeLinear by the spec
    assert np.allclose(session.run(None, {"x": x})[0], want, atol=1e-6)
