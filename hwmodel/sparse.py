"""A zero-skipping accelerator (EIE, SCNN, SmartSkip-style) wrapped around any dense cost model.

t = t_dense * ((1 - f) + f * rho / eta)   (DESIGN.md §3)

rho: density of what is skipped (weight density, times activation density when activations are skipped too);
f: share of the dense cost spent in the skippable compute; eta <= 1: index overhead and load imbalance.
A layer with nothing to skip (rho = 1) runs in dense mode at t_dense: the hardware does not pay index overhead
on dense data. Such hardware rewards fine-grained sparsity; CPUs and GPUs reward only removed channels, which is
why no other model here looks at `weight_density`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from hwmodel.base import CachedCostModel, CostModel
from hwmodel.errors import HwModelError
from hwmodel.spec import LayerSpec


@dataclass(frozen=True)
class SkipSettings:
    """f, eta, and the activation density when activations are skipped too (None: weights only)."""

    skip_fraction: float = 1.0
    efficiency: float = 1.0
    activation_density: float | None = None

    def __post_init__(self) -> None:
        checks = {
            "skip_fraction": 0.0 <= self.skip_fraction <= 1.0,
            "efficiency": 0.0 < self.efficiency <= 1.0,
            "activation_density": self.activation_density is None or 0.0 < self.activation_density <= 1.0,
        }
        for field, ok in checks.items():
            if not ok:
                raise HwModelError(
                    f"sparse cost model: {field}={getattr(self, field)!r} is out of range.",
                    fix="use 0 <= skip_fraction <= 1, 0 < efficiency <= 1, 0 < activation_density <= 1.",
                )

    def density(self, spec: LayerSpec) -> float:
        weights = spec.weight_density if spec.sparsity_pattern != "dense" else 1.0
        return weights * (self.activation_density if self.activation_density is not None else 1.0)

    def factor(self, spec: LayerSpec) -> float:
        """t / t_dense for this layer."""
        rho = self.density(spec)
        if rho >= 1.0:
            return 1.0
        return (1.0 - self.skip_fraction) + self.skip_fraction * rho / self.efficiency


class SparseModel(CachedCostModel):
    """`sparse:<base>`: the base model's cost scaled by the zero-skipping factor; same metric and unit."""

    def __init__(self, base: CostModel, settings: SkipSettings) -> None:
        super().__init__(f"sparse:{base.name}", base.metric)
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
