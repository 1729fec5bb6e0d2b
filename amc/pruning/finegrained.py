"""Fine-grained (element-wise) pruning for zero-skipping accelerators: magnitude masks, kept as masks.

CPUs and GPUs gain nothing from scattered zeros, so nothing is thinned here: each layer keeps its shape, its
smallest-magnitude weights are masked (torch.nn.utils.prune, so masks survive fine-tuning), and what the cost
model needs is each layer's weight density, handed over as `LayerDensities` -> `LayerSpec.with_density`.
Coarser groups (rows, kernels, filters, N:M; amc.pruning.granularity) are masked the same way; `LayerDensities`
then names its `MaskPattern`, and the specs carry it as their sparsity pattern.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from torch import Tensor, nn
from torch.nn.utils import prune

from amc.errors import UserError
from amc.graph import LayerTable
from amc.io import atomic_write_text, json_text
from amc.pruning.granularity import NM, MaskPattern
from hwmodel.spec import LayerSpec

DENSITIES_TYPE = "amc.LayerDensities"
DENSITIES_VERSION = 2
"""2 added `granularity` (and `nm`); element-wise densities are still written as version 1, which older amc reads."""


DENSITY_FIX = "use a weight density in (0, 1] (1 - sparsity; NaN and Infinity are refused)."


@dataclass(frozen=True)
class LayerDensities:
    """Weight density (share of non-zero weights, 1 - sparsity) per layer name; absent layers are dense."""

    densities: Mapping[str, float] = field(default_factory=dict)
    model: str = ""
    pattern: MaskPattern = field(default_factory=MaskPattern)
    """Which groups of weights the masks zero (element-wise by default)."""

    def __post_init__(self) -> None:
        for name, density in self.densities.items():
            if not 0.0 < density <= 1.0 or math.isnan(density):
                raise UserError(f"layer {name!r}: weight density {density} is outside (0, 1].", fix=DENSITY_FIX)

    def sparsity(self, name: str) -> float:
        return 1.0 - self.densities.get(name, 1.0)

    def specs(self, table: LayerTable, kept: Mapping[int, int] | None = None) -> list[LayerSpec]:
        """The table's LayerSpecs (thinned to `kept` if given) carrying these densities."""
        self.check(table)
        return [
            spec.with_density(self.densities[layer.name], self.pattern.granularity)
            if layer.name in self.densities
            else spec
            for layer, spec in zip(table.layers, table.specs(kept))
        ]

    def check(self, table: LayerTable) -> None:
        names = {layer.name for layer in table.layers}
        for name in self.densities:
            if name not in names:
                raise UserError(
                    f"layer {name!r} of the densities is not a conv/linear layer of {table.model_name}.",
                    fix=f"see `amc inspect {table.model_name}` for layer names.",
                )

    def to_dict(self) -> dict[str, Any]:
        element = self.pattern == MaskPattern()
        return {
            "_type": DENSITIES_TYPE,
            "_version": 1 if element else DENSITIES_VERSION,
            "model": self.model,
            "densities": dict(self.densities),
            **({} if element else self.pattern.to_dict()),
        }

    @classmethod
    def from_dict(cls, data: Any, source: str = "densities") -> LayerDensities:
        if not isinstance(data, dict) or data.get("_type") != DENSITIES_TYPE:
            raise UserError(
                f"{source} is not an amc densities object (_type {DENSITIES_TYPE!r}).",
                fix="pass a file written by amc.",
            )
        version = data.get("_version")
        if not isinstance(version, int) or not 1 <= version <= DENSITIES_VERSION:
            raise UserError(
                f"{source} has format version {version!r}; this amc reads 1..{DENSITIES_VERSION}.", fix="upgrade amc."
            )
        densities = data.get("densities")
        if not isinstance(densities, dict):
            raise UserError(f"{source}: key 'densities' must map layer names to numbers.", fix="regenerate the file.")
        bad = [(k, v) for k, v in densities.items() if isinstance(v, bool) or not isinstance(v, (int, float))]
        if bad:
            raise UserError(f"{source}: layer {bad[0][0]!r} has density {bad[0][1]!r}, not a number.", fix=DENSITY_FIX)
        try:
            pattern = _pattern(data)
            return cls({str(k): float(v) for k, v in densities.items()}, str(data.get("model", "")), pattern)
        except UserError as error:
            raise UserError(f"{source}: {error.problem}", fix=error.fix) from None

    def save(self, path: str | Path) -> None:
        atomic_write_text(Path(path), json_text(self.to_dict(), path))

    @classmethod
    def load(cls, path: str | Path) -> LayerDensities:
        path = Path(path)
        try:
            data = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as error:
            raise UserError(f"cannot read densities {path}: {error}.", fix="regenerate the file.") from None
        return cls.from_dict(data, f"densities {path}")


def _pattern(data: dict[str, Any]) -> MaskPattern:
    """The mask pattern of a densities object (absent in version 1: element-wise)."""
    granularity = data.get("granularity", "element")
    if granularity != "nm":
        return MaskPattern(str(granularity))
    nm = data.get("nm")
    if not isinstance(nm, list) or len(nm) != 2:
        raise UserError(f"key 'nm' is {nm!r}, not [N, M].", fix="regenerate the file.")
    return MaskPattern("nm", NM(*nm))


def magnitude_masks(
    model: nn.Module,
    sparsity: float | Mapping[str, float],
    layers: Sequence[str] | None = None,
    pattern: MaskPattern | None = None,
) -> dict[str, Tensor]:
    """Boolean keep-masks of the weights of `layers` (default: every conv/linear layer; for N:M, every one with
    whole groups of M input channels): per layer, the round(sparsity * groups) groups of `pattern` (default: single
    weights) with the smallest L1 norm are masked. `sparsity` is one value or one per layer name."""
    pattern = pattern or MaskPattern()
    if layers is None:
        layers = [name for name, m in model.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
        if pattern.granularity == "nm" and not isinstance(sparsity, Mapping):
            layers = [name for name in layers if pattern.nm.eligible(cast(Tensor, model.get_submodule(name).weight))]
    per_layer = sparsity if isinstance(sparsity, Mapping) else dict.fromkeys(layers, float(sparsity))
    masks = {}
    for name, value in per_layer.items():
        try:
            weight = cast(Tensor, model.get_submodule(name).weight).detach()
        except AttributeError:
            raise UserError(f"model has no layer {name!r} with weights.", fix="check the layer name.") from None
        try:
            masks[name] = pattern.mask(weight, value)
        except UserError as error:
            raise UserError(f"layer {name!r}: {error.problem}", fix=error.fix) from None
    return masks


def apply_masks_(model: nn.Module, masks: Mapping[str, Tensor]) -> nn.Module:
    """Mask the weights in place with torch.nn.utils.prune (the mask stays applied while fine-tuning)."""
    for name, mask in masks.items():
        prune.custom_from_mask(model.get_submodule(name), "weight", mask)
    return model


def remove_masks_(model: nn.Module) -> nn.Module:
    """Bake the masks into plain weights (zeros stay zeros), giving back the module's usual state dict."""
    for module in model.modules():
        if prune.is_pruned(module) and hasattr(module, "weight_mask"):
            prune.remove(module, "weight")
    return model


def mask_densities(masks: Mapping[str, Tensor], model_name: str = "") -> LayerDensities:
    return LayerDensities({name: float(mask.float().mean()) for name, mask in masks.items()}, model_name)


def weight_densities(model: nn.Module, table: LayerTable) -> LayerDensities:
    """Measured densities (non-zero share) of the table's layers in `model`, e.g. of a sparse checkpoint."""
    densities = {}
    for layer in table.layers:
        weight = cast(Tensor, model.get_submodule(layer.name).weight).detach()
        density = float((weight != 0).float().mean())
        if density < 1.0:
            densities[layer.name] = max(density, 1.0 / weight.numel())
    return LayerDensities(densities, table.model_name)
