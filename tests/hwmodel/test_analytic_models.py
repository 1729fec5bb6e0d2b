"""Roofline, energy and zero-skipping models: the lower-bound property, hand-computed totals, the sparse formula."""

from __future__ import annotations

import random

import pytest
import yaml

from hwmodel.counting import MacsModel
from hwmodel.energy import EYERISS, HOROWITZ_45NM, EnergyModel
from hwmodel.profiles import list_profiles, read_profile
from hwmodel.roofline import RooflineDevice, RooflineModel, layer_bytes, roofline_cost
from hwmodel.sparse import SkipSettings, SparseModel
from hwmodel.spec import LayerSpec
from hwmodel.systolic import SystolicArray, SystolicModel


def random_specs(count: int, seed: int = 0) -> list[LayerSpec]:
    rng = random.Random(seed)
    specs = []
    for _ in range(count):
        op = rng.choice(["conv", "dwconv", "linear"])
        channels = rng.choice([8, 16, 24, 64, 96, 256])
        if op == "linear":
            specs.append(LayerSpec("linear", channels, rng.choice([10, 100, 1000]), batch=rng.choice([1, 8])))
        elif op == "dwconv":
            specs.append(
                LayerSpec(
                    "dwconv",
                    channels,
                    channels,
                    kernel=3,
                    padding=1,
                    groups=channels,
                    stride=rng.choice([1, 2]),
                    in_hw=rng.choice([7, 14, 56]),
                )
            )
        else:
            specs.append(
                LayerSpec(
                    "conv",
                    channels,
                    rng.choice([16, 32, 128]),
                    kernel=rng.choice([1, 3]),
                    padding=1,
                    stride=rng.choice([1, 2]),
                    in_hw=rng.choice([7, 14, 32]),
                )
            )
    return specs


@pytest.mark.parametrize("device", ["rpi4-a72", "jetson-nano", "myriadx-vpu"])
def test_roofline_is_a_lower_bound_of_both_roofs(device):
    model = RooflineModel(RooflineDevice.named(device))
    profile = model.device
    element = profile.bytes_per_element.value if profile.bytes_per_element else 4
    for spec in random_specs(200):
        latency = model.layer_cost(spec)
        assert latency >= 2 * spec.macs / (profile.peak_gflops.value * 1e6)
        assert latency >= layer_bytes(spec, element) / (profile.bandwidth_gbs.value * 1e6)
        assert latency >= profile.layer_overhead_us.value / 1e3
        cost = model.breakdown(spec)
        assert latency == pytest.approx(max(cost.compute_ms, cost.memory_ms) + cost.overhead_ms)


def test_roofline_by_hand():
    # 115,605,504 MACs at 48 GFLOP/s: 2 * 115.6e6 / 48e9 s = 4.8169 ms (compute bound);
    # bytes = (56*56*64 + 147,456 + 28*28*256) * 4 = (200,704 + 147,456 + 200,704) * 4 = 2,195,456
    #       -> 0.1715 ms at 12.8 GB/s.
    spec = LayerSpec("conv", 64, 256, kernel=3, stride=2, padding=1, in_hw=56)
    cost = roofline_cost(spec, RooflineDevice.named("rpi4-a72"))
    assert cost.compute_ms == pytest.approx(2 * 115_605_504 / 48e9 * 1e3)
    assert cost.memory_ms == pytest.approx(2_195_456 / 12.8e9 * 1e3)
    assert cost.bound == "compute"
    assert cost.latency_ms == pytest.approx(cost.compute_ms + 0.010)


def test_roofline_never_grows_when_channels_are_removed():
    model = RooflineModel(RooflineDevice.named("rpi4-a72"))
    spec = LayerSpec("conv", 64, 128, kernel=3, padding=1, in_hw=32)
    costs = [model.layer_cost(spec.with_channels(c, 2 * c)) for c in range(8, 65, 8)]
    assert costs == sorted(costs)


def test_every_shipped_profile_gives_each_number_a_source():
    profiles = list_profiles()
    assert {"rpi4-a72", "jetson-nano", "myriadx-vpu", "local-cpu"} <= {p.name for p in profiles}
    for profile in profiles:
        data = yaml.safe_load(profile.path.read_text())
        numbers = [value for value in data.values() if isinstance(value, dict)]
        assert numbers, profile.path
        for value in numbers:
            assert set(value) == {"value", "source", "derived"} and value["source"], profile.path
        if profile.kind == "roofline":
            RooflineDevice.from_profile(read_profile(profile.path))
        elif profile.kind == "systolic":
            SystolicArray.from_profile(read_profile(profile.path))


BIG_BUFFERS = SystolicArray("test", 4, 4, "os", 1000.0, 1e6, 1e6, 1e6, 2)
LAYER_A = LayerSpec("conv", 2, 5, kernel=3, in_hw=6)  # M = 16, N = 5, K = 18


def test_energy_totals_by_hand_horowitz():
    # Layer A on a 4x4 OS array, everything fits: MACs 1440; SRAM 576 + 360 + 80 = 1016; DRAM 72 + 90 + 80 = 242.
    # pJ = 1440*4.6 (MAC) + 1440*1*1.0 (register) + 1440*2*1.0 (hops) + 1016*5 (SRAM) + 242*640 (DRAM)
    #    = 6624 + 1440 + 2880 + 5080 + 154880 = 170,904 pJ = 1.70904e-4 mJ.
    model = EnergyModel(HOROWITZ_45NM, BIG_BUFFERS)
    breakdown = model.breakdown(LAYER_A)
    assert breakdown.mac_mj == pytest.approx(6624e-9)
    assert breakdown.dram_mj == pytest.approx(154_880e-9)
    assert model.layer_cost(LAYER_A) == pytest.approx(170_904e-9)
    assert model.unit == "mJ" and model.metric == "energy"


def test_energy_totals_by_hand_eyeriss():
    # Normalised: 1440*1 + 1440*1 + 1440*2*2 + 1016*6 + 242*200 = 1440 + 1440 + 5760 + 6096 + 48400 = 63,136 MAC-units;
    # times 4.6 pJ = 290,425.6 pJ.
    model = EnergyModel(EYERISS, BIG_BUFFERS)
    assert model.layer_energy_mj(LAYER_A) == pytest.approx(290_425.6e-9)
    assert model.network_cost([LAYER_A, LAYER_A]) == pytest.approx(2 * 290_425.6e-9)
    assert model.layer_latency_ms(LAYER_A) == pytest.approx(191 / 1e6)


def test_sparse_formula():
    # t = t_dense * ((1 - f) + f * rho / eta): f = 0.8, eta = 0.5, rho = 0.25 -> 0.2 + 0.8 * 0.5 = 0.6.
    base = SystolicModel(BIG_BUFFERS)
    sparse = SparseModel(base, SkipSettings(skip_fraction=0.8, efficiency=0.5))
    dense = LAYER_A
    assert sparse.layer_cost(dense) == base.layer_cost(dense)  # nothing to skip: dense mode
    assert sparse.layer_cost(dense.with_density(0.25)) == pytest.approx(0.6 * base.layer_cost(dense))
    # Activations skipped too (density 0.5): rho = 0.25 * 0.5 -> 0.2 + 0.8 * 0.25 = 0.4.
    both = SparseModel(base, SkipSettings(0.8, 0.5, activation_density=0.5))
    assert both.layer_cost(dense.with_density(0.25)) == pytest.approx(0.4 * base.layer_cost(dense))
    assert sparse.metric == "latency" and sparse.name == "sparse:systolic:test"


def test_sparse_macs_are_ideal_macs():
    spec = LAYER_A.with_density(0.3)
    assert SparseModel(MacsModel(), SkipSettings()).layer_cost(spec) == pytest.approx(spec.ideal_macs)
