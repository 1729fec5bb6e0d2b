"""Device profiles: YAML files under configs/devices/, one device or preset each, every number with its source.

A profile names its `kind` (roofline, systolic or bitserial) and gives each number as `{value, source, derived}`,
so a reader can tell a datasheet figure from one we worked out or measured. `roofline:<name>`, `systolic:<name>` and
`bitserial:<name>` find `<name>.yaml` here (or take a path to a .yaml file).

How the device is deployed is described the same way, each field optional (`Deployment`, defaults in brackets):
`runtime` (free text: onnxruntime, openvino, torch, torch-cuda, tensorrt, tflite, ... [unspecified]),
`precision` (one of PRECISIONS [fp32]), `batch` [1] and `channel_alignment`, the multiple a layer's channel
count should be for the device's kernels to run at full width (8 for fp16 tensor cores, 16 for int8) [none:
`search.round_to: auto` then keeps the default grid of 8].
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from hwmodel.errors import HwModelError, did_you_mean

DEVICES_ENV = "AMC_DEVICES_DIR"
"""Environment variable naming another folder of device profiles (default: the repository's configs/devices)."""

KINDS = ("roofline", "systolic", "bitserial")
PRECISIONS = ("fp32", "tf32", "fp16", "bf16", "int16", "int8")
"""`precision`: the arithmetic the device runs a network in."""


@dataclass(frozen=True)
class Quantity:
    """One number of a profile, with where it comes from and whether it was derived (vs. read off a datasheet)."""

    value: float
    source: str
    derived: bool

    def to_dict(self) -> dict[str, object]:
        return {"value": self.value, "source": self.source, "derived": self.derived}


@dataclass(frozen=True)
class Fact:
    """One text field of a profile (a runtime, a precision), with its source, like `Quantity`."""

    value: str
    source: str
    derived: bool


@dataclass(frozen=True)
class Deployment:
    """How the device runs a network: what a LUT for it should be built with and what grid a search should use.

    `channel_alignment` None: the profile does not say (a search with `round_to: auto` uses its default grid).
    """

    runtime: Fact
    precision: Fact
    batch: Quantity
    channel_alignment: Quantity | None

    @property
    def alignment(self) -> int | None:
        """The channel alignment as a whole number, or None."""
        return int(self.channel_alignment.value) if self.channel_alignment else None


DEFAULT_SOURCE = "not in the profile: default"


@dataclass(frozen=True)
class Profile:
    """A parsed profile file: its name (the file stem), kind, description, and the fields its model reads."""

    name: str
    kind: str
    description: str
    path: Path
    fields: dict[str, Any]

    def quantity(self, field: str) -> Quantity:
        """The `{value, source, derived}` field `field`, validated."""
        raw = self.fields.get(field)
        if not isinstance(raw, dict) or not {"value", "source", "derived"} <= set(raw):
            raise HwModelError(
                f"device profile {self.path}: field {field!r} is {raw!r}.",
                fix=f"write it as `{field}: {{value: <number>, source: <text>, derived: <true|false>}}`.",
            )
        value = raw["value"]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < math.inf:
            raise HwModelError(
                f"device profile {self.path}: {field}.value is {value!r}, not a positive finite number.",
                fix=f"set {field}.value to a positive finite number.",
            )
        return Quantity(float(value), str(raw["source"]), bool(raw["derived"]))

    def fact(self, field: str, default: str, choices: tuple[str, ...] = ()) -> Fact:
        """The `{value, source, derived}` text field `field` (one of `choices` if given), or `default` if absent."""
        raw = self.fields.get(field)
        if raw is None:
            return Fact(default, DEFAULT_SOURCE, True)
        if not isinstance(raw, dict) or not {"value", "source", "derived"} <= set(raw):
            raise HwModelError(
                f"device profile {self.path}: field {field!r} is {raw!r}.",
                fix=f"write it as `{field}: {{value: <text>, source: <text>, derived: <true|false>}}`.",
            )
        value = str(raw["value"]).strip()
        if not value or (choices and value not in choices):
            allowed = f"one of {', '.join(choices)}" if choices else "a non-empty name"
            raise HwModelError(
                f"device profile {self.path}: {field}.value is {raw['value']!r}.",
                fix=f"set {field}.value to {allowed}.",
            )
        return Fact(value, str(raw["source"]), bool(raw["derived"]))

    def whole(self, field: str) -> Quantity | None:
        """The quantity `field` if the profile has it, checked to be a whole number (a batch, an alignment)."""
        if field not in self.fields:
            return None
        found = self.quantity(field)
        if found.value != int(found.value):
            raise HwModelError(
                f"device profile {self.path}: {field}.value is {found.value!r}, not a whole number.",
                fix=f"set {field}.value to a whole number >= 1.",
            )
        return found

    def deployment(self) -> Deployment:
        """The optional deployment fields, validated, with their defaults where absent (see the module doc)."""
        return Deployment(
            self.fact("runtime", "unspecified"),
            self.fact("precision", "fp32", PRECISIONS),
            self.whole("batch") or Quantity(1.0, DEFAULT_SOURCE, True),
            self.whole("channel_alignment"),
        )

    def text(self, field: str, choices: tuple[str, ...]) -> str:
        value = self.fields.get(field)
        if value not in choices:
            raise HwModelError(
                f"device profile {self.path}: field {field!r} is {value!r}.", fix=f"use one of {', '.join(choices)}."
            )
        return str(value)


def devices_dir() -> Path:
    """Where named profiles live: $AMC_DEVICES_DIR, else configs/devices beside the package."""
    override = os.environ.get(DEVICES_ENV)
    return Path(override) if override else Path(__file__).resolve().parent.parent / "configs" / "devices"


def read_profile(path: Path) -> Profile:
    """Parse one profile file; any problem names the file and the field."""
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as error:
        raise HwModelError(
            f"cannot read device profile {path}: {error}.", fix="check the path and the YAML syntax."
        ) from None
    if not isinstance(data, dict):
        raise HwModelError(f"device profile {path} is not a YAML mapping.", fix="see configs/devices/ for examples.")
    kind = data.get("kind")
    if kind not in KINDS:
        raise HwModelError(
            f"device profile {path}: kind is {kind!r}.", fix=f"set `kind:` to one of {', '.join(KINDS)}."
        )
    profile = Profile(path.stem, kind, str(data.get("description", "")), path, data)
    profile.deployment()  # a malformed runtime, precision, batch or alignment names its file now
    return profile


def list_profiles() -> list[Profile]:
    """Every profile in the devices folder, sorted by name (unreadable files raise, naming the file)."""
    folder = devices_dir()
    if not folder.is_dir():
        return []
    return sorted((read_profile(path) for path in folder.glob("*.yaml")), key=lambda profile: profile.name)


def find_profile(name: str, kind: str) -> Profile:
    """The profile `name` (a file stem in the devices folder, or a path to a .yaml file) of kind `kind`."""
    looks_like_path = name.endswith((".yaml", ".yml")) or os.sep in name
    path = Path(name) if looks_like_path else devices_dir() / f"{name}.yaml"
    if not path.is_file():
        known = [profile.name for profile in list_profiles() if profile.kind == kind]
        raise HwModelError(
            f"unknown {kind} device {name!r} (no file {path}).{did_you_mean(name, known)}",
            fix=f"use one of {', '.join(known) or '(none found)'}, a path to a profile .yaml, "
            "or see `amc list devices`.",
        )
    profile = read_profile(path)
    if profile.kind != kind:
        raise HwModelError(
            f"device profile {path} is a {profile.kind} profile, not {kind}.",
            fix=f"name it as `{profile.kind}:{name}`.",
        )
    return profile


def device_alignment(cost_model: str) -> int | None:
    """The channel alignment of the device profile a cost-model name prices with (roofline:<device>,
    systolic:<preset>, either under sparse:), or None when it names none or the profile does not say."""
    name = cost_model
    while name.startswith("sparse:"):
        name = name.removeprefix("sparse:").strip()
    kind, _, argument = name.partition(":")
    if kind not in KINDS or not argument.strip():
        return None
    return find_profile(argument.strip(), kind).deployment().alignment
