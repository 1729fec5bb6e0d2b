"""A zero-skipping accelerator (EIE, SCNN, SmartSkip-style) wrapped around any dense cost model.

t = t_dense * ((1 - f) + f * rho / eta)   (DESIGN.md §3)

rho: density of what is skipped (weight density, times activation density when activations are skipped too);
f: share of the dense cost spent in the skippable compute; eta <= 1: index overhead and load imbalance.
A layer with nothing to skip (rho = 1) runs in dense mode at t_dense: the hardware does not pay index overhead
on dense data. Such hardware rewards fine-grained sparsity; CPUs and GPUs reward only removed channels, which is
why no other model here looks at `weight_density`.

Each sparsity pattern (LayerSpec.sparsity_pattern) may be skipped differently (`PatternSkip`): its own eta (coarser
patterns need fewer indices and balance better, Mao et al. 2017), the densities the hardware can use (a 2:4
sparse tensor core gains at density 1/2 and no more), and whether only whole SIMD-width vectors of zeros are
skipped (a CPU, in Scalpel's spirit: a zero group narrower than the SIMD width saves nothing). A profile under
configs/devices/sparse/ sets these with sources; `sparse@<profile>:<base>` names it. Without a profile every
pattern is skipped at the one `efficiency`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from hwmodel.base import CachedCostModel, CostModel
from hwmodel.errors import HwModelError
from hwmodel.profiles import devices_dir
from hwmodel.spec import SPARSITY_PATTERNS, LayerSpec

SKIPPED_PATTERNS = SPARSITY_PATTERNS[1:]
"""Every pattern but dense."""
PROFILE_FOLDER = "sparse"
PROFILE_SUFFIX = ".yml"
"""Zero-skipping profiles (kind: sparse) are `<name>.yml` in this folder of the devices folder: apart from the
roofline/systolic profiles (`*.yaml` there), which hwmodel.profiles reads."""


def group_length(pattern: str, spec: LayerSpec) -> int:
    """Consecutive weights one zero group of `pattern` covers in a filter's flattened (C_in/groups, kh, kw) row:
    the reduction axis of an im2col GEMM, which is what a SIMD unit runs along."""
    kh, kw = spec.kernel
    lengths = {"element": 1, "nm": 1, "vector": kw, "kernel": kh * kw, "filter": spec.weight_count // spec.out_channels}
    return lengths[pattern]


def simd_share(length: int, simd_width: int) -> float:
    """Share of a zero group of `length` weights that fills whole SIMD vectors (groups laid out aligned, as
    Scalpel's SIMD-aware pruning does): 0 for a group narrower than the vector."""
    return (length // simd_width) * simd_width / length


@dataclass(frozen=True)
class PatternSkip:
    """How the hardware skips one sparsity pattern."""

    efficiency: float = 1.0
    """eta for this pattern (index overhead and load imbalance)."""
    min_density: float = 0.0
    """The hardware gains nothing below this density (2:4 hardware runs a 1:4 layer as 2:4)."""
    max_density: float = 1.0
    """Above this density the layer runs dense (sparse kernels lose to dense ones; 2:4 hardware cannot run 3:4)."""
    simd: bool = False
    """Only whole SIMD-width vectors of zeros are skipped: eta is scaled by `simd_share`."""

    def __post_init__(self) -> None:
        if not (0.0 < self.efficiency <= 1.0 and 0.0 <= self.min_density <= self.max_density <= 1.0):
            raise HwModelError(
                f"sparse pattern settings {self} are out of range.",
                fix="use 0 < efficiency <= 1 and 0 <= min_density <= max_density <= 1.",
            )


@dataclass(frozen=True)
class SkipSettings:
    """f, eta, and the activation density when activations are skipped too (None: weights only)."""

    skip_fraction: float = 1.0
    efficiency: float = 1.0
    activation_density: float | None = None
    patterns: Mapping[str, PatternSkip] | None = None
    """How each pattern is skipped; a pattern not named runs dense, and so does a layer whose weight density is
    not below its eta (there the sparse kernels would be slower). None: every pattern at `efficiency`."""
    simd_width: int = 1
    """Weights per SIMD vector, for patterns skipped `simd` only."""
    profile: str = ""
    """The profile these settings were read from (it names the cost model)."""

    def __post_init__(self) -> None:
        checks = {
            "skip_fraction": 0.0 <= self.skip_fraction <= 1.0,
            "efficiency": 0.0 < self.efficiency <= 1.0,
            "activation_density": self.activation_density is None or 0.0 < self.activation_density <= 1.0,
            "patterns": self.patterns is None or set(self.patterns) <= set(SKIPPED_PATTERNS),
            "simd_width": isinstance(self.simd_width, int) and self.simd_width >= 1,
        }
        for field, ok in checks.items():
            if not ok:
                raise HwModelError(
                    f"sparse cost model: {field}={getattr(self, field)!r} is out of range.",
                    fix="use 0 <= skip_fraction <= 1, 0 < efficiency <= 1, 0 < activation_density <= 1, "
                    f"patterns among {', '.join(SKIPPED_PATTERNS)}, simd_width a whole number >= 1.",
                )

    def rule(self, pattern: str) -> PatternSkip | None:
        """How `pattern` is skipped, or None where its zeros are not skipped at all."""
        if pattern == "dense":
            return None
        if self.patterns is None:
            return PatternSkip(self.efficiency)
        return self.patterns.get(pattern)

    def weights_and_efficiency(self, spec: LayerSpec) -> tuple[float, float]:
        """(weight density the hardware skips at, eta): (1, `efficiency`) where it runs the weights dense."""
        rule = self.rule(spec.sparsity_pattern)
        if rule is None or spec.weight_density > rule.max_density:
            return 1.0, self.efficiency
        share = simd_share(group_length(spec.sparsity_pattern, spec), self.simd_width) if rule.simd else 1.0
        weights, efficiency = max(spec.weight_density, rule.min_density), rule.efficiency * share
        if efficiency == 0.0 or (self.patterns is not None and weights >= efficiency):
            return 1.0, self.efficiency  # a profiled runtime keeps its dense kernels where sparse ones would lose
        return weights, efficiency

    def density(self, spec: LayerSpec) -> float:
        weights, _ = self.weights_and_efficiency(spec)
        return weights * (self.activation_density if self.activation_density is not None else 1.0)

    def factor(self, spec: LayerSpec) -> float:
        """t / t_dense for this layer."""
        _, efficiency = self.weights_and_efficiency(spec)
        rho = self.density(spec)
        if rho >= 1.0:
            return 1.0
        return (1.0 - self.skip_fraction) + self.skip_fraction * rho / efficiency


class SparseModel(CachedCostModel):
    """`sparse:<base>`: the base model's cost scaled by the zero-skipping factor; same metric and unit."""

    def __init__(self, base: CostModel, settings: SkipSettings) -> None:
        kind = f"sparse@{settings.profile}" if settings.profile else "sparse"
        super().__init__(f"{kind}:{base.name}", base.metric)
        self.base = base
        self.settings = settings

    def _price(self, spec: LayerSpec) -> float:
        return self.base.layer_cost(spec) * self.settings.factor(spec)

    def layer_cost(self, spec: LayerSpec) -> float:
        """Not memoised again here: the base memoises its price, which may change (a bound LUT's scale re-fitted)."""
        return self._price(spec)

    def network_overhead(self, specs: Sequence[LayerSpec]) -> float:
        """The base model's per-network overhead (e.g. a calibrated LUT's offset): skipping zeros does not touch it."""
        return self.base.network_overhead(specs)

    def bind(self, specs: Sequence[LayerSpec]) -> SparseModel:
        """The same wrapper over the base model bound to the network (itself if the base does not care)."""
        base = self.base.bind(specs)
        return self if base is self.base else SparseModel(base, self.settings)


def skip_profiles_dir() -> Path:
    return devices_dir() / PROFILE_FOLDER


def _number(raw: Any, where: str) -> float:
    """The value of a `{value, source, derived}` field (every number of a profile says where it comes from)."""
    if not isinstance(raw, dict) or not {"value", "source", "derived"} <= set(raw):
        raise HwModelError(
            f"{where} is {raw!r}.", fix="write it as `{value: <number>, source: <text>, derived: <bool>}`."
        )
    value = raw["value"]
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise HwModelError(f"{where}.value is {value!r}, not a number.", fix="set it to a finite number.")
    return float(value)


def _pattern(raw: Any, where: str) -> PatternSkip:
    if not isinstance(raw, dict):
        raise HwModelError(f"{where} is {raw!r}, not a mapping.", fix="see configs/devices/sparse/ for examples.")
    unknown = sorted(set(raw) - {"efficiency", "min_density", "max_density", "simd"})
    if unknown or not isinstance(raw.get("simd", False), bool):
        raise HwModelError(
            f"{where} has unknown field(s) {unknown} or a simd that is not true/false.",
            fix="use efficiency, min_density, max_density ({value, source, derived} each) and simd: true|false.",
        )
    numbers = {
        key: _number(raw[key], f"{where}.{key}") for key in ("efficiency", "min_density", "max_density") if key in raw
    }
    return PatternSkip(**numbers, simd=bool(raw.get("simd", False)))


def read_skip_profile(name: str) -> SkipSettings:
    """The skip settings of profile `name` (a file stem in configs/devices/sparse, or a path to a .yaml/.yml file)."""
    path = Path(name) if name.endswith((".yaml", ".yml")) else skip_profiles_dir() / f"{name}{PROFILE_SUFFIX}"
    if not path.is_file():
        known = ", ".join(profile for profile, _ in list_skip_profiles()) or "(none found)"
        raise HwModelError(f"unknown zero-skipping profile {name!r} (no file {path}).", fix=f"use one of {known}.")
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as error:
        raise HwModelError(
            f"cannot read zero-skipping profile {path}: {error}.", fix="check the YAML syntax."
        ) from None
    if not isinstance(data, dict) or data.get("kind") != "sparse" or not isinstance(data.get("patterns"), dict):
        raise HwModelError(
            f"{path} is not a zero-skipping profile (kind: sparse, with patterns:).",
            fix="see configs/devices/sparse/ for examples.",
        )
    where = f"zero-skipping profile {path}"
    patterns = {str(key): _pattern(value, f"{where}: patterns.{key}") for key, value in data["patterns"].items()}
    simd = _number(data["simd_width"], f"{where}: simd_width") if "simd_width" in data else 1.0
    if simd != int(simd):
        raise HwModelError(f"{where}: simd_width {simd} is not a whole number.", fix="set it to a whole number >= 1.")
    return SkipSettings(
        skip_fraction=_number(data["skip_fraction"], f"{where}: skip_fraction") if "skip_fraction" in data else 1.0,
        efficiency=_number(data["efficiency"], f"{where}: efficiency") if "efficiency" in data else 1.0,
        patterns=patterns,
        simd_width=int(simd),
        profile=name,
    )


def list_skip_profiles() -> list[tuple[str, str]]:
    """(name, description) of every zero-skipping profile in the devices folder."""
    folder = skip_profiles_dir()
    if not folder.is_dir():
        return []
    rows = []
    for path in sorted(folder.glob(f"*{PROFILE_SUFFIX}")):
        data = yaml.safe_load(path.read_text())
        rows.append((path.stem, str(data.get("description", "")) if isinstance(data, dict) else ""))
    return rows
