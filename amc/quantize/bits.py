"""LayerBits: weight and activation bit-widths per layer, the hand-off of a mixed-precision decision.

Like `Strategy` and `LayerDensities` it is keyed by the module's qualified name, checked against a layer table
before use, and written as versioned JSON (never pickled). Absent layers stay at full precision (32 bits).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from amc.errors import UserError
from amc.graph import LayerTable
from amc.io import atomic_write_text, json_text
from hwmodel.spec import FULL_PRECISION_BITS, QUANTIZED_BITS, LayerSpec

BITS_TYPE = "amc.LayerBits"
BITS_VERSION = 1
BITS_FIX = f"use whole bit-widths {QUANTIZED_BITS.start}-{QUANTIZED_BITS.stop - 1}, or {FULL_PRECISION_BITS} for float."


def check_bits(value: Any, what: str) -> int:
    """A bit-width as an int, or a UserError naming `what` (bool, float, NaN and out-of-range refused)."""
    if (
        isinstance(value, bool)
        or not isinstance(value, int)
        or (value != FULL_PRECISION_BITS and value not in QUANTIZED_BITS)
    ):
        raise UserError(f"{what}: bit-width {value!r} is not allowed.", fix=BITS_FIX)
    return int(value)


@dataclass(frozen=True)
class LayerBits:
    """Bits of each layer's weights and of its input activations; layers absent from a map are full precision."""

    weights: Mapping[str, int] = field(default_factory=dict)
    activations: Mapping[str, int] = field(default_factory=dict)
    model: str = ""

    def __post_init__(self) -> None:
        for kind, bits in (("weights", self.weights), ("activations", self.activations)):
            for name, value in bits.items():
                check_bits(value, f"layer {name!r} {kind}")

    def weight_bits(self, name: str) -> int:
        return self.weights.get(name, FULL_PRECISION_BITS)

    def activation_bits(self, name: str) -> int:
        return self.activations.get(name, FULL_PRECISION_BITS)

    def specs(self, table: LayerTable, kept: Mapping[int, int] | None = None) -> list[LayerSpec]:
        """The table's LayerSpecs (thinned to `kept` if given) carrying these bit-widths."""
        self.check(table)
        return [
            spec.with_bits(self.weight_bits(layer.name), self.activation_bits(layer.name))
            for layer, spec in zip(table.layers, table.specs(kept))
        ]

    def check(self, table: LayerTable) -> None:
        names = {layer.name for layer in table.layers}
        for name in (*self.weights, *self.activations):
            if name not in names:
                raise UserError(
                    f"layer {name!r} of the bit-widths is not a conv/linear layer of {table.model_name}.",
                    fix=f"see `amc inspect {table.model_name}` for layer names.",
                )

    def to_dict(self) -> dict[str, Any]:
        return {
            "_type": BITS_TYPE,
            "_version": BITS_VERSION,
            "model": self.model,
            "weights": dict(self.weights),
            "activations": dict(self.activations),
        }

    @classmethod
    def from_dict(cls, data: Any, source: str = "bit-widths") -> LayerBits:
        if not isinstance(data, dict) or data.get("_type") != BITS_TYPE:
            raise UserError(
                f"{source} is not an amc bit-widths object (_type {BITS_TYPE!r}).", fix="pass a file written by amc."
            )
        version = data.get("_version")
        if not isinstance(version, int) or not 1 <= version <= BITS_VERSION:
            raise UserError(
                f"{source} has format version {version!r}; this amc reads 1..{BITS_VERSION}.", fix="upgrade amc."
            )
        maps: dict[str, dict[str, int]] = {}
        for key in ("weights", "activations"):
            value = data.get(key, {})
            if not isinstance(value, dict):
                raise UserError(
                    f"{source}: key {key!r} must map layer names to bit-widths.", fix="regenerate the file."
                )
            maps[key] = {str(name): check_bits(bits, f"{source} {key} {name!r}") for name, bits in value.items()}
        return cls(maps["weights"], maps["activations"], str(data.get("model", "")))

    def save(self, path: str | Path) -> None:
        atomic_write_text(Path(path), json_text(self.to_dict(), path))

    @classmethod
    def load(cls, path: str | Path) -> LayerBits:
        path = Path(path)
        try:
            data = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as error:
            raise UserError(f"cannot read bit-widths {path}: {error}.", fix="regenerate the file.") from None
        return cls.from_dict(data, f"bit-widths {path}")
