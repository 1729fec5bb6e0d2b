"""Cost models by name: every listed name creates a model that meets the protocol; bad names explain the fix."""

from __future__ import annotations

import subprocess
import sys

import pytest

from hwmodel.base import CostModel
from hwmodel.errors import HwModelError
from hwmodel.registry import check_cost_model, create_cost_model, list_cost_models
from hwmodel.spec import LayerSpec

SPEC = LayerSpec("conv", 16, 32, kernel=3, padding=1, in_hw=16, fused=("bn", "relu"))
UNITS = {"latency": "ms", "energy": "mJ", "macs": "MACs", "params": "params", "size": "bytes"}


def listed_names() -> list[str]:
    return [name for name, _ in list_cost_models() if "<" not in name]


def test_listing_covers_every_kind():
    names = [name for name, _ in list_cost_models()]
    for expected in (
        "macs",
        "params",
        "lut:<file>",
        "roofline:rpi4-a72",
        "roofline:jetson-nano",
        "roofline:myriadx-vpu",
        "roofline:local-cpu",
        "systolic:scalesim-32x32",
        "sparse:<base>",
        "energy:horowitz45",
        "energy:eyeriss",
    ):
        assert expected in names
    assert all(description for _, description in list_cost_models())


@pytest.mark.parametrize("name", listed_names())
def test_every_listed_model_prices_a_layer(name):
    model = create_cost_model(name)
    assert isinstance(model, CostModel)
    assert model.name == name and model.unit == UNITS[model.metric]
    cost = model.layer_cost(SPEC)
    assert cost > 0 and model.layer_cost(SPEC) == cost
    assert model.network_cost([SPEC, SPEC]) == pytest.approx(2 * cost)
    assert model.network_overhead([SPEC, SPEC]) == 0.0  # no calibrated per-network constant
    assert model.bind([SPEC, SPEC]) is model  # prices do not depend on the network


def test_macs_and_params_are_the_spec_counts():
    assert create_cost_model("macs").layer_cost(SPEC) == SPEC.macs
    assert create_cost_model("params").layer_cost(SPEC) == SPEC.params


def test_options_reach_the_model():
    ws = create_cost_model("systolic:scalesim-32x32", dataflow="ws")
    assert ws.array.dataflow == "ws"  # type: ignore[attr-defined]
    sparse = create_cost_model("sparse:systolic:tpu-v1", skip_fraction=0.5, dataflow="os")
    assert sparse.name == "sparse:systolic:tpu-v1" and sparse.base.array.dataflow == "os"  # type: ignore[attr-defined]
    energy = create_cost_model("energy:eyeriss", array="eyeriss-12x14", unit_pj=1.0)
    assert energy.table.unit_pj == 1.0 and energy.systolic.array.rows == 12  # type: ignore[attr-defined]


BAD_NAMES = [
    ("flops", {}, "unknown cost model"),
    ("roofline:no-such-device", {}, "no-such-device"),
    ("roofline:", {}, "needs a name"),
    ("roofline:scalesim-32x32", {}, "systolic profile"),
    ("systolic:rpi4-a72", {}, "roofline profile"),
    ("systolic:scalesim-32x32", {"dataflow": "rs"}, "dataflow"),
    ("energy:joules", {}, "unknown energy preset"),
    ("macs", {"dataflow": "os"}, "takes no option"),
    ("sparse:macs", {"efficiency": 2.0}, "efficiency"),
    ("lut:/no/such/file.json", {}, "does not exist"),
]


@pytest.mark.parametrize(("name", "options", "mentions"), BAD_NAMES)
def test_bad_names_raise_with_a_fix(name, options, mentions):
    with pytest.raises(HwModelError) as caught:
        create_cost_model(name, **options)
    assert mentions in caught.value.problem
    assert caught.value.fix


@pytest.mark.parametrize(("name", "options", "mentions"), BAD_NAMES)
def test_check_refuses_what_create_refuses(name, options, mentions):
    with pytest.raises(HwModelError) as caught:
        check_cost_model(name, **options)
    assert mentions in caught.value.problem
    assert caught.value.fix


def test_check_accepts_what_create_builds_without_reading_a_lut(tmp_path):
    for name in listed_names():
        check_cost_model(name)
    check_cost_model("sparse:systolic:tpu-v1", skip_fraction=0.5, dataflow="os")
    (tmp_path / "table.json").write_text("not read")
    check_cost_model(f"lut:{tmp_path / 'table.json'}", allow_foreign=True)


@pytest.mark.parametrize(
    ("name", "suggestion"),
    [("mac", "macs"), ("rooflin:rpi4-a72", "roofline:rpi4-a72"), ("roofline:rpi4-a27", "rpi4-a72"),
     ("systolic:scalesim-32x23", "scalesim-32x32"), ("energy:eyeris", "eyeriss")],
)  # fmt: skip
def test_a_close_name_is_suggested(name, suggestion):
    with pytest.raises(HwModelError, match=f"Did you mean '{suggestion}'\\?"):
        check_cost_model(name)


def test_devices_folder_can_be_overridden(tmp_path, monkeypatch):
    (tmp_path / "mine.yaml").write_text(
        "kind: roofline\ndescription: a test device\n"
        "peak_gflops: {value: 10, source: test, derived: true}\n"
        "bandwidth_gbs: {value: 1, source: test, derived: true}\n"
        "layer_overhead_us: {value: 0.5, source: test, derived: true}\n"
    )
    (tmp_path / "broken.yaml").write_text("kind: roofline\ndescription: broken\npeak_gflops: 10\n")
    monkeypatch.setenv("AMC_DEVICES_DIR", str(tmp_path))
    assert "roofline:mine" in [name for name, _ in list_cost_models()]
    assert create_cost_model("roofline:mine").layer_cost(LayerSpec("linear", 1, 1)) > 0
    with pytest.raises(HwModelError) as caught:
        create_cost_model("roofline:broken")
    assert (
        "broken.yaml" in caught.value.problem
        and "bandwidth_gbs" in caught.value.problem
        or "peak_gflops" in (caught.value.problem)
    )


def test_package_exports_the_required_api_without_torch():
    # A fresh interpreter, so the check sees the installed package (and proves pricing needs no torch).
    code = (
        "import sys, hwmodel; "
        "assert all(hasattr(hwmodel, n) for n in ('CostModel', 'create_cost_model', 'list_cost_models', "
        "'HwModelError', 'LayerSpec')); "
        "hwmodel.create_cost_model('roofline:rpi4-a72').layer_cost(hwmodel.LayerSpec('linear', 8, 8)); "
        "assert 'torch' not in sys.modules, 'hwmodel imported torch'"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd="/")
    error = HwModelError("problem text")
    assert (error.problem, error.fix) == ("problem text", "")
