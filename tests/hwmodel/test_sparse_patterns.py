"""Zero-skipping prices per sparsity pattern, against hand-computed factors t / t_dense (MACs as t_dense).

t = t_dense * ((1 - f) + f * rho / eta); a profile sets eta per pattern, the densities the hardware can use, and
(for a CPU) that only whole SIMD vectors of zeros are skipped. Every expected number below is worked out by hand.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from amc.config import load_config
from amc.errors import UserError
from hwmodel import create_cost_model
from hwmodel.errors import HwModelError
from hwmodel.registry import check_cost_model, list_cost_models
from hwmodel.sparse import PatternSkip, SkipSettings, SparseModel, group_length, read_skip_profile, simd_share
from hwmodel.spec import SPARSITY_PATTERNS, LayerSpec

CONV = LayerSpec("conv", 16, 32, (3, 3), padding=(1, 1), in_hw=(8, 8))
"""3x3 conv: a filter row is 16 * 3 * 3 = 144 weights."""
POINTWISE = LayerSpec("conv", 16, 32, (1, 1), in_hw=(8, 8))
LINEAR = LayerSpec("linear", 64, 10)
SMOKE = Path(__file__).resolve().parents[2] / "configs" / "smoke.yaml"


def factor(model: str, spec: LayerSpec, density: float, pattern: str, **options: object) -> float:
    """t / t_dense under `model` (a sparse wrapper around MACs, so t_dense is the layer's MACs)."""
    return create_cost_model(model, **options).layer_cost(spec.with_density(density, pattern)) / spec.macs


def test_patterns_and_keys() -> None:
    assert SPARSITY_PATTERNS == ("dense", "element", "vector", "kernel", "filter", "nm")
    assert CONV.with_density(0.5).key().endswith("|element:0.5000")  # element keys as before
    assert CONV.with_density(0.5, "kernel").key().endswith("|kernel:0.5000")
    assert CONV.with_density(1.0, "nm") == CONV and CONV.key().endswith("|dense:1")
    with pytest.raises(ValueError, match="sparsity_pattern"):
        CONV.with_density(0.5, "row")


def test_group_lengths_and_simd_share() -> None:
    assert [group_length(p, CONV) for p in ("element", "vector", "kernel", "filter", "nm")] == [1, 3, 9, 144, 1]
    assert [group_length(p, LINEAR) for p in ("vector", "kernel", "filter")] == [1, 1, 64]
    assert simd_share(9, 8) == pytest.approx(8 / 9) and simd_share(3, 8) == 0.0
    assert simd_share(16, 8) == 1.0 and simd_share(20, 8) == pytest.approx(16 / 20) and simd_share(1, 1) == 1.0


@pytest.mark.parametrize("pattern", ["element", "vector", "kernel", "filter", "nm"])
def test_without_a_profile_every_pattern_is_skipped_at_the_one_eta(pattern: str) -> None:
    # f = 0.8, eta = 0.5, rho = 0.25: 0.2 + 0.8 * 0.25 / 0.5 = 0.6 (the formula of sparse:<base> as before).
    assert factor("sparse:macs", CONV, 0.25, pattern, skip_fraction=0.8, efficiency=0.5) == pytest.approx(0.6)


@pytest.mark.parametrize(
    ("pattern", "density", "expected"),
    [
        ("element", 0.25, 0.25 / 0.5),  # eta 0.5
        ("vector", 0.25, 0.25 / 0.8),  # eta 0.8
        ("kernel", 0.25, 0.25),  # eta 1
        ("filter", 0.25, 0.25),
        ("nm", 0.5, 0.5 / 0.9),  # eta 0.9
        ("element", 0.6, 1.0),  # rho >= eta: sparse kernels would lose, so the layer runs dense
        ("vector", 0.8, 1.0),
    ],
)
def test_scnn_profile_rewards_coarser_patterns(pattern: str, density: float, expected: float) -> None:
    assert factor("sparse@scnn-mao:macs", CONV, density, pattern) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("pattern", "density", "expected"),
    [
        ("nm", 0.5, 0.5),  # 2:4: 2x math throughput
        ("nm", 0.25, 0.5),  # 1:4 runs as 2:4: no faster
        ("nm", 0.75, 1.0),  # 3:4 is not 2:4: dense
        ("element", 0.25, 1.0),  # masks that are not 2:4 run dense on a GPU
        ("kernel", 0.25, 1.0),
        ("filter", 0.25, 1.0),
    ],
)
def test_ampere_sparse_tensor_cores_speed_up_two_four_only(pattern: str, density: float, expected: float) -> None:
    assert factor("sparse@ampere-sparse-tensor-core:macs", CONV, density, pattern) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("spec", "pattern", "density", "expected"),
    [
        (CONV, "vector", 0.5, 1.0),  # 1 x 3 rows are narrower than 8 lanes: nothing skipped
        (CONV, "kernel", 0.5, 0.5 / (8 / 9)),  # a 3 x 3 kernel fills one 8-lane vector: eta 8/9
        (CONV, "kernel", 0.95, 1.0),  # 0.95 >= 8/9: dense kernels are faster
        (CONV, "filter", 0.5, 0.5),  # 144 = 18 whole vectors
        (POINTWISE, "kernel", 0.5, 1.0),  # a 1 x 1 kernel is one weight
        (POINTWISE, "filter", 0.5, 0.5),  # 16 inputs = 2 whole vectors
        (LINEAR, "filter", 0.3, 0.3),
        (CONV, "element", 0.1, 0.1 / 0.2),  # scattered zeros pay only below density 0.2 (eta 0.2)
        (CONV, "element", 0.5, 1.0),
        (CONV, "nm", 0.5, 1.0),  # no N:M hardware on x86: as element
    ],
)
def test_simd_cpu_profile_gains_only_from_whole_vectors(
    spec: LayerSpec, pattern: str, density: float, expected: float
) -> None:
    assert factor("sparse@scalpel-avx2-cpu:macs", spec, density, pattern) == pytest.approx(expected)


def test_pattern_skip_floors_and_caps_the_density() -> None:
    settings = SkipSettings(0.5, patterns={"nm": PatternSkip(0.8, min_density=0.4, max_density=0.6)})
    model = SparseModel(create_cost_model("macs"), settings)
    # density 0.3 is floored at 0.4: 0.5 + 0.5 * 0.4 / 0.8 = 0.75; 0.7 is above the cap: dense.
    assert model.layer_cost(CONV.with_density(0.3, "nm")) == pytest.approx(0.75 * CONV.macs)
    assert model.layer_cost(CONV.with_density(0.7, "nm")) == CONV.macs
    assert model.layer_cost(CONV.with_density(0.3, "kernel")) == CONV.macs  # not in the profile: dense


def test_profile_options_override_and_names() -> None:
    # skip_fraction 0.5 over scnn-mao's kernel eta 1: 0.5 + 0.5 * 0.25 = 0.625.
    assert factor("sparse@scnn-mao:macs", CONV, 0.25, "kernel", skip_fraction=0.5) == pytest.approx(0.625)
    assert factor("sparse:macs", CONV, 0.25, "kernel", profile="scnn-mao") == pytest.approx(0.25)
    assert (
        create_cost_model("sparse@scnn-mao:systolic:scalesim-32x32").name == "sparse@scnn-mao:systolic:scalesim-32x32"
    )
    check_cost_model("sparse@ampere-sparse-tensor-core:roofline:nvidia-a100")
    names = [name for name, _ in list_cost_models()]
    assert {
        "sparse@scnn-mao:<base>",
        "sparse@ampere-sparse-tensor-core:<base>",
        "sparse@scalpel-avx2-cpu:<base>",
    } <= set(names)
    assert load_config(SMOKE, {"cost.model": "sparse@scalpel-avx2-cpu:macs"}).cost.model.startswith("sparse@")


def test_every_shipped_profile_names_a_source_for_each_number() -> None:
    for name in ("scnn-mao", "ampere-sparse-tensor-core", "scalpel-avx2-cpu"):
        settings = read_skip_profile(name)
        assert settings.profile == name and settings.patterns
    assert read_skip_profile("scalpel-avx2-cpu").simd_width == 8


PROFILE = """kind: sparse
patterns:
  kernel:
    efficiency: {value: 0.5, source: test, derived: true}
"""


@pytest.mark.parametrize(
    ("text", "match"),
    [
        (PROFILE.replace("kind: sparse", "kind: roofline"), "not a zero-skipping profile"),
        (PROFILE.replace("0.5", "1.5"), "out of range"),
        (PROFILE.replace("0.5", "0"), "out of range"),
        (PROFILE.replace("0.5", ".nan"), "not a number"),
        (PROFILE.replace("{value: 0.5, source: test, derived: true}", "0.5"), "efficiency is 0.5"),
        (PROFILE.replace("  kernel:", "  row:"), "out of range"),
        (PROFILE + "    speed: {value: 2, source: x, derived: true}\n", "unknown field"),
        (PROFILE + "simd_width: {value: 2.5, source: x, derived: true}\n", "whole number"),
        ("kind: [", "cannot read"),
    ],
)
def test_bad_profiles_are_refused_naming_the_file(tmp_path: Path, text: str, match: str) -> None:
    path = tmp_path / "bad.yml"
    path.write_text(text)
    with pytest.raises(HwModelError, match=match):
        create_cost_model("sparse:macs", profile=str(path))


def test_unknown_profile_lists_the_known_ones() -> None:
    with pytest.raises(HwModelError, match="scnn-mao"):
        create_cost_model("sparse@nope:macs")
    with pytest.raises(UserError, match="nope"):
        load_config(SMOKE, {"cost.model": "sparse@nope:macs"})
