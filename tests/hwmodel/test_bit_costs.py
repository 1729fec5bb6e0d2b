"""Cost models that know bits: size, energy, roofline and the bit-serial accelerators.

Float specs must price exactly as before bits existed (values recorded from the code before the change); prices
never fall as bits grow; sizes, MAC energies and cycle counts are checked against hand computation.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
import yaml

from amc.cli.main import main
from amc.config import load_config
from amc.errors import UserError
from hwmodel.bitserial import BitSerialArray, BitSerialEnergy, bitserial_cost, bitserial_energy_mj, integer_bits
from hwmodel.energy import HOROWITZ_45NM, EnergyModel, int_mac_pj
from hwmodel.errors import HwModelError
from hwmodel.profiles import list_profiles, read_profile
from hwmodel.registry import check_cost_model, create_cost_model, list_cost_models
from hwmodel.roofline import RooflineDevice, RooflineModel, layer_bytes, roofline_cost
from hwmodel.spec import LayerSpec
from hwmodel.systolic import SystolicArray

SPECS = {
    "conv3x3": LayerSpec("conv", 16, 32, kernel=3, padding=1, in_hw=32, bias=True),
    "dw_s2": LayerSpec("dwconv", 32, 32, kernel=3, stride=2, padding=1, groups=32, in_hw=16),
    "linear": LayerSpec("linear", 64, 10, bias=True),
    "gconv_b4": LayerSpec("gconv", 64, 128, kernel=3, padding=1, groups=4, in_hw=8, batch=4),
    "pw_fp16": LayerSpec("conv", 128, 256, in_hw=14, dtype="float16"),
}

# Printed by the cost models before they knew bits (same specs, shipped profiles and presets).
BEFORE_BITS = {
    ("energy:horowitz45", ()): {
        "conv3x3": 0.0719060992, "dw_s2": 0.006983283200000001, "linear": 0.000465394,
        "gconv_b4": 0.0807534592, "pw_fp16": 0.12035297280000001,
    },
    ("energy:eyeriss", ()): {
        "conv3x3": 0.18873630720000004, "dw_s2": 0.010775628800000003, "linear": 0.0006942504000000001,
        "gconv_b4": 0.20145438720000003, "pw_fp16": 0.28990627840000005,
    },
    ("energy:horowitz45", (("array", "tpu-v1"),)): {
        "conv3x3": 0.07119185920000001, "dw_s2": 0.006981843200000001, "linear": 0.000465394,
        "gconv_b4": 0.0801083392, "pw_fp16": 0.11849185280000002,
    },
    ("roofline:rpi4-a72", ()): {
        "conv3x3": 0.206608, "dw_s2": 0.01329, "linear": 0.010226250000000001, "gconv_b4": 0.206608,
        "pw_fp16": 0.2776053333333333,
    },
    ("roofline:nvidia-h100-sxm", ()): {
        "conv3x3": 0.005032114626865672, "dw_s2": 0.005006285373134328, "linear": 0.005000432238805971,
        "gconv_b4": 0.005040348656716418, "pw_fp16": 0.00506449671641791,
    },
    ("roofline:jetson-nano", ()): {
        "conv3x3": 0.029994033898305086, "dw_s2": 0.0108225, "linear": 0.0100565625,
        "gconv_b4": 0.029994033898305086, "pw_fp16": 0.03721410169491526,
    },
}  # fmt: skip

# A tiny conv: M = 8*8 = 64 output pixels, N = 32 filters, K = 3*3*16 = 144.
TINY = LayerSpec("conv", 16, 32, kernel=3, padding=1, in_hw=8, bias=True)
BISMO_LIKE = BitSerialArray("bismo-like", 8, 8, 256, 1, "temporal", 200.0, 1e6)
FUSION_LIKE = BitSerialArray("fusion-like", 32, 16, 16, 2, "spatial", 500.0, 1e6)

ROOFLINE_INT = """kind: roofline
description: a device with integer peaks
peak_gflops: {value: 100, source: test, derived: true}
peak_int8_gops: {value: 400, source: test, derived: true}
peak_int4_gops: {value: 800, source: test, derived: true}
bandwidth_gbs: {value: 1000, source: test, derived: true}
layer_overhead_us: {value: 1, source: test, derived: true}
"""
BITSERIAL = {
    "kind": "bitserial",
    "description": "test array",
    **{
        field: {"value": value, "source": "test", "derived": True}
        for field, value in {"rows": 4, "cols": 4, "depth": 16, "brick_bits": 2, "clock_mhz": 100,
                             "bandwidth_gbs": 10}.items()
    },
    "fusion": "spatial",
}  # fmt: skip


def bitserial_profile(tmp_path: Path, **changes: object) -> Path:
    data = dict(BITSERIAL)
    for field, value in changes.items():
        data[field] = value if field == "fusion" else {"value": value, "source": "test", "derived": True}
    path = tmp_path / "array.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def bit_aware_models(tmp_path: Path) -> list:
    path = tmp_path / "int-device.yaml"
    path.write_text(ROOFLINE_INT)
    names = ["size", "energy:horowitz45", "energy:eyeriss", "bitserial:bismo-edge", "bitserial:bitfusion",
             "bitserial-energy:bitfusion", f"roofline:{path}"]  # fmt: skip
    return [create_cost_model(name) for name in names]


@pytest.mark.parametrize(("name", "options"), list(BEFORE_BITS))
def test_float_specs_price_exactly_as_before_bits(name, options):
    model = create_cost_model(name, **dict(options))
    for key, spec in SPECS.items():
        assert model.layer_cost(spec) == BEFORE_BITS[(name, options)][key], key
        assert model.layer_cost(spec.with_bits(32, 32)) == BEFORE_BITS[(name, options)][key], key


def test_macs_and_params_stay_bit_blind():
    for name in ("macs", "params"):
        model = create_cost_model(name)
        prices = {model.layer_cost(TINY.with_bits(w, a)) for w, a in [(32, 32), (8, 8), (2, 4), (8, 32)]}
        assert len(prices) == 1, name


def test_size_is_weight_bytes_at_their_bits_by_hand():
    size = create_cost_model("size")
    assert (size.metric, size.unit) == ("size", "bytes")
    assert size.layer_cost(TINY) == 4608 * 4 + 32 * 4  # float32 weights and bias
    assert size.layer_cost(TINY.with_bits(4, 8)) == 4608 * 4 / 8 + 32 * 4  # 4-bit weights, 32-bit bias
    assert size.layer_cost(TINY.with_bits(8, 2)) == 4608 + 128  # activation bits store nothing
    linear = LayerSpec("linear", 64, 10, bias=True).with_bits(2, 8)
    depthwise = LayerSpec("dwconv", 32, 32, kernel=3, groups=32, in_hw=8).with_bits(3, 8)
    assert size.layer_cost(linear) == 640 * 2 / 8 + 40
    assert size.layer_cost(depthwise) == 288 * 3 / 8
    assert size.network_cost([linear, depthwise]) == 160 + 40 + 108


@pytest.mark.parametrize("index", range(7))
def test_every_bit_aware_price_is_monotone_in_bits(tmp_path, index):
    model = bit_aware_models(tmp_path)[index]
    for spec in (TINY, SPECS["dw_s2"], SPECS["linear"], SPECS["gconv_b4"]):
        price = {(w, a): model.layer_cost(spec.with_bits(w, a)) for w, a in itertools.product(range(2, 9), repeat=2)}
        for w, a in price:
            if w < 8:
                assert price[(w, a)] <= price[(w + 1, a)], (model.name, spec.op, w, a)
            if a < 8:
                assert price[(w, a)] <= price[(w, a + 1)], (model.name, spec.op, w, a)
        assert price[(2, 2)] < price[(8, 8)] <= model.layer_cost(spec), (model.name, spec.op)


def test_cache_keys_include_bits(tmp_path):
    """A model asked at one width and then another never answers from the first one's cache entry."""
    for model in bit_aware_models(tmp_path):
        first = model.layer_cost(TINY.with_bits(8, 8))
        assert model.layer_cost(TINY.with_bits(2, 2)) < first
        assert model.layer_cost(TINY.with_bits(8, 8)) == first
    assert TINY.with_bits(8, 8).key() != TINY.with_bits(2, 2).key() != TINY.key()


def test_integer_mac_energy_from_horowitz_8_bit_points():
    assert int_mac_pj(8, 8) == pytest.approx(0.2 + 0.03)  # published 8-bit mult + add
    assert int_mac_pj(4, 8) == pytest.approx(0.1 + 0.03)  # multiplier halves, the adder keeps the wider width
    assert int_mac_pj(2, 2) == pytest.approx(0.2 / 16 + 0.03 / 4)
    # Independent check of the scaling laws: Horowitz's published 32-bit int mult 3.1 pJ + add 0.1 pJ.
    assert int_mac_pj(32, 32) == pytest.approx(3.1 + 0.1, rel=0.05)


def test_energy_breakdown_by_hand_at_8_bits():
    """OS array with room for everything: each operand is read from DRAM once, each term scales by its bits."""
    model = EnergyModel(HOROWITZ_45NM, SystolicArray("big", 4, 4, "os", 1000.0, 1e6, 1e6, 1e6, 2))
    spec = LayerSpec("conv", 2, 5, kernel=3, in_hw=6)  # M = 16, N = 5, K = 18, 1,440 MACs
    full, quantized = model.breakdown(spec), model.breakdown(spec.with_bits(8, 8))
    assert quantized.mac_mj == pytest.approx(1440 * 0.23e-9)
    assert full.mac_mj == pytest.approx(1440 * 4.6e-9)
    for term in ("register_mj", "array_mj", "sram_mj", "dram_mj"):
        assert getattr(quantized, term) == pytest.approx(getattr(full, term) / 4), term  # 8 of 32 bits moved
    mixed = model.breakdown(spec.with_bits(8, 32))  # weight-only: computes in float, moves 8-bit weights
    assert mixed.mac_mj == full.mac_mj and mixed.sram_mj < full.sram_mj


def test_roofline_bytes_and_integer_peaks_by_hand(tmp_path):
    path = tmp_path / "int-device.yaml"
    path.write_text(ROOFLINE_INT)
    device = RooflineDevice.from_profile(read_profile(path))
    eight = TINY.with_bits(8, 8)
    # input 16*8*8 = 1,024 and output 32*8*8 = 2,048 activations at 1 byte, 4,608 weights at 1 byte, int32 bias
    assert layer_bytes(eight, 4) == 1024 + 2048 + 4608 + 32 * 4
    assert layer_bytes(TINY.with_bits(4, 32), 4) == (1024 + 2048) * 4 + 4608 / 2 + 128
    macs = TINY.macs
    assert roofline_cost(TINY, device).compute_ms == pytest.approx(2 * macs / 100e6)
    assert roofline_cost(eight, device).compute_ms == pytest.approx(2 * macs / 400e6)
    assert roofline_cost(TINY.with_bits(4, 4), device).compute_ms == pytest.approx(2 * macs / 800e6)
    assert roofline_cost(TINY.with_bits(2, 8), device).compute_ms == pytest.approx(2 * macs / 400e6)
    assert roofline_cost(TINY.with_bits(8, 32), device).compute_ms == pytest.approx(2 * macs / 100e6)
    no_int = RooflineModel(RooflineDevice.named("rpi4-a72"))  # no integer peak: compute as float, fewer bytes
    assert no_int.breakdown(eight).compute_ms == no_int.breakdown(TINY).compute_ms
    assert no_int.breakdown(eight).memory_ms < no_int.breakdown(TINY).memory_ms


@pytest.mark.parametrize(
    ("bits", "bismo", "fusion"),
    [
        ((8, 8), 8 * 8 * 4 * 8 * 1, 144 * 1 * 4),  # BISMO: w*a * ceil(32/8) * ceil(64/8) * ceil(144/256)
        ((4, 8), 4 * 8 * 4 * 8 * 1, 72 * 1 * 4),  # Fusion: 8 bricks -> 2 MACs a unit: ceil(144/2) * 1 * ceil(64/16)
        ((2, 2), 2 * 2 * 4 * 8 * 1, 9 * 1 * 4),  # 1 brick -> 16 MACs a unit: ceil(144/16) * 1 * 4
    ],
)
def test_bitserial_cycles_by_hand(bits, bismo, fusion):
    spec = TINY.with_bits(*bits)
    assert bitserial_cost(spec, BISMO_LIKE).cycles == bismo
    assert bitserial_cost(spec, FUSION_LIKE).cycles == fusion


def test_bitserial_grouped_layers_run_one_gemm_per_group():
    depthwise = LayerSpec("dwconv", 32, 32, kernel=3, padding=1, groups=32, in_hw=8).with_bits(4, 4)
    # per channel: M = 64, N = 1, K = 9; BISMO: 16 bit pairs * 1 * ceil(64/8) * 1, times 32 channels
    assert bitserial_cost(depthwise, BISMO_LIKE).cycles == 32 * 16 * 8
    # Fusion: 4 bricks -> 4 MACs a unit: ceil(9/4) * 1 * ceil(64/16), times 32 channels
    assert bitserial_cost(depthwise, FUSION_LIKE).cycles == 32 * 3 * 4


def test_bitfusion_runs_8_bit_16x_slower_than_2_bit():
    big = LayerSpec("conv", 64, 64, kernel=3, padding=1, in_hw=32)  # compute bound at both widths
    model = create_cost_model("bitserial:bitfusion")
    assert model.breakdown(big.with_bits(2, 2)).compute_ms > model.breakdown(big.with_bits(2, 2)).memory_ms
    assert model.layer_cost(big.with_bits(8, 8)) == pytest.approx(16 * model.layer_cost(big.with_bits(2, 2)))
    bismo = create_cost_model("bitserial:bismo-edge")
    assert bismo.layer_cost(big.with_bits(8, 8)) == pytest.approx(16 * bismo.layer_cost(big.with_bits(2, 2)))


def test_float_operands_are_priced_at_the_8_bit_fallback():
    for name in ("bitserial:bismo-edge", "bitserial:bitfusion", "bitserial-energy:bitfusion"):
        model = create_cost_model(name)
        assert model.layer_cost(TINY) == model.layer_cost(TINY.with_bits(8, 8)), name
        assert model.layer_cost(TINY.with_bits(32, 4)) == model.layer_cost(TINY.with_bits(8, 4)), name
    assert integer_bits(TINY.with_bits(3, 32)) == TINY.with_bits(3, 8)


def test_bitserial_energy_by_hand():
    array = BitSerialArray("e", 32, 16, 16, 2, "spatial", 500.0, 1e6, BitSerialEnergy(0.01, 0.1, 1.0))
    model = create_cost_model("bitserial-energy:bitfusion")
    assert (model.metric, model.unit) == ("energy", "mJ")
    spec = TINY.with_bits(4, 8)  # 8 bricks per MAC; 1,024 + 2,048 bytes of activations, 2,304 of weights, 128 bias
    expected = (TINY.macs * 8 * 0.01 + (1024 + 2048 + 2304 + 128) * 8 * (0.1 + 1.0)) * 1e-9
    assert bitserial_energy_mj(spec, array) == pytest.approx(expected)


def test_registry_names_resolve_and_are_listed():
    listed = {name for name, _ in list_cost_models()}
    expected = {"size": ("size", "bytes"), "bitserial:bismo-edge": ("latency", "ms"),
                "bitserial:bitfusion": ("latency", "ms"), "bitserial-energy:bitfusion": ("energy", "mJ")}  # fmt: skip
    for name, (metric, unit) in expected.items():
        check_cost_model(name)
        model = create_cost_model(name)
        assert (model.name, model.metric, model.unit) == (name, metric, unit) and name in listed
    assert "bitserial-energy:bismo-edge" not in listed  # an FPGA overlay without energies
    sparse = create_cost_model("sparse:bitserial:bitfusion")
    assert sparse.layer_cost(TINY.with_bits(4, 4)) == create_cost_model("bitserial:bitfusion").layer_cost(
        TINY.with_bits(4, 4)
    )


def test_a_config_may_budget_size_and_bitserial(tmp_path):
    for name in ("size", "bitserial:bitfusion", "bitserial-energy:bitfusion"):
        assert load_config(overrides={"cost.model": name}).cost.model == name
    with pytest.raises(UserError, match="no per-operation energies"):
        load_config(overrides={"cost.model": "bitserial-energy:bismo-edge"})


def test_amc_list_devices_shows_the_bitserial_profiles(capsys):
    assert main(["list", "devices"]) == 0
    out = capsys.readouterr().out
    assert "bitserial:bitfusion" in out and "bitserial:bismo-edge" in out and "\nsize " in out


def test_every_shipped_bitserial_profile_gives_each_number_a_source():
    profiles = [profile for profile in list_profiles() if profile.kind == "bitserial"]
    assert {"bismo-edge", "bitfusion"} <= {profile.name for profile in profiles}
    for profile in profiles:
        data = yaml.safe_load(profile.path.read_text())
        for value in (value for value in data.values() if isinstance(value, dict)):
            assert set(value) == {"value", "source", "derived"} and value["source"], profile.path
        BitSerialArray.from_profile(profile)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"rows": -1}, "rows.value is -1, not a positive finite number"),
        ({"depth": 2.5}, "depth.value is 2.5, not a whole number"),
        ({"clock_mhz": float("nan")}, "clock_mhz.value is nan"),
        ({"bandwidth_gbs": "fast"}, "bandwidth_gbs.value is 'fast'"),
        ({"fusion": "diagonal"}, "'fusion' is 'diagonal'"),
        ({"brick_bits": 9}, "brick_bits in 1-8"),
        ({"depth": 8}, "cannot fuse an 8x8-bit MAC"),
        ({"brick_energy_pj": 0.1}, "but not buffer_energy_pj_per_bit, dram_energy_pj_per_bit"),
    ],
)
def test_bad_bitserial_profiles_are_refused_with_the_field(tmp_path, changes, message):
    path = bitserial_profile(tmp_path, **changes)
    with pytest.raises(HwModelError, match=message.replace("(", r"\(").replace(".", r"\.")):
        create_cost_model(f"bitserial:{path}")


def test_a_missing_field_and_bad_integer_peaks_are_refused(tmp_path):
    data = dict(BITSERIAL)
    del data["depth"]
    path = tmp_path / "no-depth.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(HwModelError, match="'depth' is None"):
        create_cost_model(f"bitserial:{path}")
    roofline = tmp_path / "bad-int.yaml"
    roofline.write_text(ROOFLINE_INT.replace("value: 400", "value: 0"))
    with pytest.raises(HwModelError, match="peak_int8_gops.value is 0"):
        create_cost_model(f"roofline:{roofline}")
    with pytest.raises(HwModelError, match="no per-operation energies"):
        create_cost_model("bitserial-energy:bismo-edge")
