"""INT8 post-training quantization: the QDQ graph against an independent PyTorch simulation of it, layer-name
mapping, float32 layers, calibration inputs, sensitivity, the report's round trip, and every model we support."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
import torch.nn.functional as F
from onnx import helper, numpy_helper
from torch import nn

from amc.data import load_dataset
from amc.errors import UserError
from amc.models import create_model, model_info
from amc.models.registry import _ZOO
from amc.models.tiny import TinyResNet
from amc.quantize.calibration import calibration_batches, check_calibration_images
from amc.quantize.ptq import (
    Comparison,
    Figures,
    PtqSettings,
    QuantizeReport,
    TimingSettings,
    export_float,
    fp32_nodes,
    layer_names,
    layer_nodes,
    ort_scores,
    quantize_file,
    quantize_network,
    session,
    unquantized,
)
from amc.quantize.sensitivity import auto_fp32, layer_sensitivity

SIZE = (3, 16, 16)
QUICK = TimingSettings(threads=1, batch=4, repeats=2)
LOGIT_STEPS_ASYMMETRIC = 2.5
"""Max |logit| difference between ONNX Runtime's INT8 kernels and the fake-quant simulation, in logit quantization
steps, with unsigned (asymmetric) activations. Measured on the trained tiny CNN, 512 test images, on an AVX2 CPU:
2.0 steps (0.084 at a step of 0.042; 22% of logits differ, top-1 agreement 99.4-99.8%), per-tensor and
per-channel alike: ORT's u8s8 kernels there (VPMADDUBSW) saturate 16-bit pair sums, as its documentation warns.
With signed symmetric activations and per-channel weights the two agree to float rounding (2.3e-7)."""


@pytest.fixture(scope="module")
def bundle():
    return load_dataset("synthetic", search_val_size=256)


@pytest.fixture(scope="module")
def trained(bundle) -> nn.Module:
    """The tiny CNN after a few hundred SGD steps on synthetic data: ranges and logits of a real network."""
    from amc.data import iterate_batches

    torch.manual_seed(0)
    model = TinyResNet(3, 10, width=8)
    optimiser = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    for epoch in range(2):
        for images, labels in iterate_batches(bundle.train, 64, shuffle=True, seed=epoch):
            optimiser.zero_grad()
            F.cross_entropy(model(images), labels).backward()
            optimiser.step()
    return model.eval()


@pytest.fixture(scope="module")
def qdq_files(trained, bundle, tmp_path_factory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("qdq")
    float_path = export_float(trained, folder / "model.onnx", SIZE)
    batches = calibration_batches(bundle.train, 256)
    return float_path, quantize_file(float_path, folder / "model.int8.onnx", batches, PtqSettings(256))


# -- the oracle: a PyTorch fake-quant interpreter of the QDQ graph, reading its own scales and zero points ----------


def _fake_quant_run(model: onnx.ModelProto, x: torch.Tensor) -> torch.Tensor:
    """Run the QDQ graph op by op in float64 PyTorch: QuantizeLinear rounds half to even and saturates to its
    zero point's type, DequantizeLinear maps back, every other op computes in float (ONNX semantics)."""
    graph = model.graph
    env: dict[str, torch.Tensor] = {init.name: torch.from_numpy(numpy_helper.to_array(init).copy())
                                    for init in graph.initializer}  # fmt: skip
    env[graph.input[0].name] = x.double()
    for node in graph.node:
        ins = [env[name] if name else None for name in node.input]
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        env[node.output[0]] = _op(node.op_type, ins, attrs)
    return env[graph.output[0].name]


def _per_axis(value: torch.Tensor, like: torch.Tensor, axis: int) -> torch.Tensor:
    if value.numel() == 1:
        return value.double().reshape(())
    shape = [1] * like.dim()
    shape[axis] = -1
    return value.double().reshape(shape)


def _op(op: str, ins: list, attrs: dict) -> torch.Tensor:
    if op == "QuantizeLinear":
        x, scale, zero = ins
        info = torch.iinfo(zero.dtype)
        axis = attrs.get("axis", 1)
        q = torch.round(x / _per_axis(scale, x, axis)) + _per_axis(zero, x, axis)
        return q.clamp(info.min, info.max)  # the integer values, kept as float64
    if op == "DequantizeLinear":
        q, scale, zero = ins
        axis = attrs.get("axis", 1)
        zero = zero if zero is not None else torch.zeros((), dtype=torch.int32)
        return (q.double() - _per_axis(zero, q, axis)) * _per_axis(scale, q, axis)
    if op == "Conv":
        x, w, b = (*ins, None)[:3]
        pads = attrs.get("pads", [0, 0, 0, 0])
        assert pads[:2] == pads[2:], "asymmetric padding is not simulated"
        return F.conv2d(x, w.double(), None if b is None else b.double(), attrs.get("strides", [1, 1]),
                        pads[:2], attrs.get("dilations", [1, 1]), attrs.get("group", 1))  # fmt: skip
    if op == "Gemm":
        x, w, b = ins
        w = w.double().T if attrs.get("transB", 0) else w.double()
        return attrs.get("alpha", 1.0) * x @ w + attrs.get("beta", 1.0) * b.double()
    if op == "Relu":
        return F.relu(ins[0])
    if op == "Add":
        return ins[0] + ins[1]
    if op == "GlobalAveragePool":
        return ins[0].mean(dim=(2, 3), keepdim=True)
    if op == "Flatten":
        return ins[0].flatten(attrs.get("axis", 1))
    if op == "Identity":
        return ins[0]
    raise AssertionError(f"the simulation does not know {op}")


def _output_step(model: onnx.ModelProto) -> float:
    """The logits' quantization step: the scale of the DequantizeLinear writing the graph output."""
    output = model.graph.output[0].name
    node = next(node for node in model.graph.node if output in node.output)
    scale = next(init for init in model.graph.initializer if init.name == node.input[1])
    return float(numpy_helper.to_array(scale))


@pytest.mark.parametrize(
    ("per_channel", "symmetric", "steps"),
    [(False, False, LOGIT_STEPS_ASYMMETRIC), (True, False, LOGIT_STEPS_ASYMMETRIC), (True, True, 1e-4)],
)
def test_ort_int8_matches_a_fake_quant_simulation_of_its_own_scales(
    per_channel: bool, symmetric: bool, steps: float, qdq_files, bundle, tmp_path
) -> None:
    float_path, _ = qdq_files
    settings = PtqSettings(256, per_channel=per_channel, symmetric_activations=symmetric)
    int8_path = quantize_file(float_path, tmp_path / "q.onnx", calibration_batches(bundle.train, 256), settings)
    model = onnx.load(str(int8_path))
    images = torch.stack([bundle.test[i][0] for i in range(512)])
    got = session(int8_path).run(None, {"input": images.numpy()})[0]
    simulated = _fake_quant_run(model, images).numpy()
    float_logits = session(float_path).run(None, {"input": images.numpy()})[0]
    step = _output_step(model)
    diff = np.abs(got - simulated).max()
    agree = (got.argmax(1) == simulated.argmax(1)).mean()
    assert diff <= steps * step, f"ORT INT8 vs simulation max |diff| {diff:.4f} = {diff / step:.2f} steps"
    assert agree >= 0.99, f"top-1 agreement {agree:.3f}"
    assert np.abs(float_logits - simulated).max() > step  # the simulation quantizes: it is not the float network


def test_every_conv_and_linear_node_reads_int8_weights(qdq_files) -> None:
    _, int8_path = qdq_files
    model = onnx.load(str(int8_path))
    kinds = {init.name: init.data_type for init in model.graph.initializer}
    quantized_weights = [node.input[0] for node in model.graph.node if node.op_type == "DequantizeLinear"]
    assert sum(kinds.get(name) == onnx.TensorProto.INT8 for name in quantized_weights) == 5  # 4 convs + fc
    assert unquantized(int8_path) == ()


def test_int8_accuracy_stays_near_float32_and_the_file_shrinks(trained, bundle, tmp_path) -> None:
    result = quantize_network(trained, SIZE, bundle, tmp_path, PtqSettings(256), QUICK, val_images=256)
    assert result.fp32.test_top1 > 0.5  # the network learned something, so the comparison means something
    assert abs(result.int8.test_top1 - result.fp32.test_top1) <= 0.03
    assert result.int8.size_bytes < result.fp32.size_bytes
    assert result.test_images == len(bundle.test) and result.val_images == 256
    assert min(result.fp32.batch1_ms, result.int8.batch1_ms, result.int8.batch_ms) > 0


def test_ort_scores_agree_with_pytorch_on_the_float_file(qdq_files, trained, bundle) -> None:
    from amc.training.loop import accuracy_on

    ort = ort_scores(qdq_files[0], bundle.test)
    reference = accuracy_on(trained, bundle.test)
    assert (ort.top1, ort.top5, ort.images) == pytest.approx((reference.top1, reference.top5, reference.images))


# -- names, float32 layers --------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["tiny", "resnet20", "mobilenetv2"])
def test_every_layer_maps_to_its_own_onnx_node(name: str, tmp_path: Path) -> None:
    size = model_info(name).input_size
    model = create_model(name, in_channels=size[0], num_classes=10).eval()
    path = export_float(model, tmp_path / "m.onnx", size)
    nodes = layer_nodes(onnx.load(str(path)), layer_names(model))
    assert set(nodes) == set(layer_names(model))
    assert len(set(nodes.values())) == len(nodes)


def test_fp32_layers_stay_float_and_unknown_names_are_refused(qdq_files, bundle, tmp_path) -> None:
    float_path, _ = qdq_files
    nodes = layer_nodes(onnx.load(str(float_path)), layer_names(TinyResNet(3, 10, 8)))
    keep = fp32_nodes(["conv1", "fc"], nodes)
    assert keep == ("/conv1/Conv", "/fc/Gemm")
    path = quantize_file(float_path, tmp_path / "q.onnx", calibration_batches(bundle.train, 32), PtqSettings(32),
                         keep)  # fmt: skip
    assert unquantized(path) == ("Conv: /conv1/Conv", "Gemm: /fc/Gemm")  # their weights stay float32
    assert unquantized(path, keep) == ()  # and no other layer does
    with pytest.raises(UserError, match=r"'conv9'.*stem\.0"):
        fp32_nodes(["conv9"], nodes)


# -- inputs -------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("bad", [0, -4, math.nan, math.inf, 2.5, True, "12"])
def test_a_bad_calibration_count_is_a_user_error(bad: object) -> None:
    with pytest.raises(UserError, match="calibration"):
        check_calibration_images(bad)


def test_an_unknown_method_is_a_user_error() -> None:
    assert check_calibration_images(64.0) == 64
    with pytest.raises(UserError, match="'kmeans'.*minmax"):
        PtqSettings(64, method="kmeans")


def test_calibration_draws_the_asked_number_of_training_images(bundle) -> None:
    batches = calibration_batches(bundle.train, 70, batch_size=32)
    assert [len(batch) for batch in batches] == [32, 32, 6]
    drawn = torch.from_numpy(np.concatenate(batches)).flatten(1)
    train = bundle.train.normalise(bundle.train.images).flatten(1)
    held_out = bundle.search_val.normalise(bundle.search_val.images).flatten(1)
    for image in drawn[:5]:  # each calibration image is one of the training split's, not of search-val
        assert torch.isclose(train, image).all(dim=1).any()
        assert not torch.isclose(held_out, image).all(dim=1).any()
    assert len(calibration_batches(bundle.train, 10**9)) == math.ceil(len(bundle.train) / 32)


class _Sorts(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.linalg.svdvals(x.flatten(1))


def test_a_module_the_exporter_cannot_translate_is_named(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="_Sorts cannot be exported.*aten::linalg_svdvals"):
        export_float(_Sorts(), tmp_path / "m.onnx", SIZE)


# -- sensitivity ---------------------------------------------------------------------------------------------------


def test_sensitivity_covers_each_layer_and_auto_fp32_meets_its_bound(qdq_files, trained, bundle) -> None:
    float_path, _ = qdq_files
    nodes = layer_nodes(onnx.load(str(float_path)), layer_names(trained))
    batches, settings = calibration_batches(bundle.train, 64), PtqSettings(64)
    found = layer_sensitivity(float_path, nodes, batches, settings, bundle.search_val, 128)
    assert [row.layer for row in found.layers] == list(nodes)
    assert found.val_images == 128 and all(0 <= row.only_top1 <= 1 for row in found.layers)
    # quantizing only one layer of five costs at most what quantizing all of them costs, give or take an image
    assert min(row.only_top1 for row in found.layers) >= found.int8_top1 - 2 / 128 - 0.05
    loose = auto_fp32(float_path, nodes, found, batches, settings, bundle.search_val, 100.0, 128)
    assert loose.met and loose.fp32_layers == () and len(loose.steps) == 1
    strict = auto_fp32(float_path, nodes, found, batches, settings, bundle.search_val, 0.0, 128)
    last = strict.steps[-1]
    assert strict.met == (last.val_top1 >= found.fp32_top1) and strict.fp32_layers == last.fp32_layers
    assert [len(step.fp32_layers) for step in strict.steps] == list(range(len(strict.steps)))
    with pytest.raises(UserError, match="auto-fp32"):
        auto_fp32(float_path, nodes, found, batches, settings, bundle.search_val, math.nan, 128)


# -- the report --------------------------------------------------------------------------------------------------


def _report() -> QuantizeReport:
    figures = Figures(0.9, 0.99, 0.91, 4000, 0.2, 3.0)
    comparison = Comparison(figures, Figures(0.89, 0.99, 0.9, 1200, 0.15, 1.5), "a.onnx", "a.int8.onnx",
                            ("/fc/Gemm",), (), 100, 50, QUICK)  # fmt: skip
    return QuantizeReport("tiny", "run", "synthetic", PtqSettings(64, fp32_layers=("fc",)), comparison)


def test_the_report_round_trips_and_refuses_foreign_or_future_files() -> None:
    report = _report()
    assert QuantizeReport.from_dict(report.to_dict()) == report
    assert (
        "3.33x smaller" in report.table() and "-1.00 pt" in report.table() and "kept in float32: fc" in report.table()
    )
    with pytest.raises(UserError, match="version 2"):
        QuantizeReport.from_dict({**report.to_dict(), "_version": 2})
    with pytest.raises(UserError, match="not an amc quantize report"):
        QuantizeReport.from_dict({"_type": "amc.LayerBits", "_version": 1})


# -- every model (slow) --------------------------------------------------------------------------------------------


def _settled(model: nn.Module, size: tuple[int, int, int]) -> nn.Module:
    """BatchNorm statistics estimated on random inputs: an untrained deep ResNet's activations otherwise grow
    with depth until float32 ONNX and PyTorch differ by more than the export check allows."""
    for module in model.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            module.momentum = None  # a cumulative average
    model.train()
    with torch.no_grad():
        for seed in range(2):
            model(torch.randn(8, *size, generator=torch.Generator().manual_seed(seed)))
    return model.eval()


def _quantizes(model: nn.Module, size: tuple[int, int, int], tmp_path: Path) -> None:
    model = _settled(model, size)
    path = export_float(model, tmp_path / "m.onnx", size)
    nodes = layer_nodes(onnx.load(str(path)), layer_names(model))
    assert set(nodes) == set(layer_names(model))
    rng = np.random.default_rng(0)
    batches = [rng.standard_normal((4, *size)).astype(np.float32) for _ in range(2)]
    int8 = quantize_file(path, tmp_path / "q.onnx", batches, PtqSettings(8, per_channel=True))
    assert unquantized(int8) == ()
    out = session(int8).run(None, {"input": batches[0]})[0]
    assert out.shape[0] == 4 and np.isfinite(out).all()


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(_ZOO))
def test_every_zoo_model_quantizes(name: str, tmp_path: Path) -> None:
    size = model_info(name).input_size
    _quantizes(create_model(name, in_channels=size[0], num_classes=10), size, tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["torchvision:resnet18", "torchvision:mobilenet_v3_small"])
def test_torchvision_models_quantize_at_224(name: str, tmp_path: Path) -> None:
    _quantizes(create_model(name, in_channels=3, num_classes=1000), (3, 224, 224), tmp_path)
